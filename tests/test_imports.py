"""The import graph of the project's own modules (app.py, demos/, gallery/), read from the code:
no cycle between files, arrows one way (the shared frame never imports a tab or the app, a tab
never imports another tab), and every module imports on its own."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.no_models  # reads and imports code: no model, no app


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    """module name -> file, for app.py and every file of demos/ and gallery/."""
    files = [root / "app.py", *sorted(root.glob("demos/**/*.py")), *sorted(root.glob("gallery/**/*.py"))]
    modules = {}
    for path in files:
        name = ".".join(path.relative_to(root).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    return modules


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the project modules it imports (at the top or inside a function); a module's
    own package is left out (a part importing its package's __init__ while it loads is Python's
    package protocol, not an arrow)."""
    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        graph[name] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            else:
                continue
            for target in targets:
                found = resolve(target)
                if found and found not in (name, package):
                    graph[name].add(found)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other in a loop (Tarjan's strongly connected components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def wrong_way(graph: dict[str, set[str]]) -> list[str]:
    """Arrows against the house's direction: app -> demos -> gallery."""
    def tab(module: str) -> str | None:
        parts = module.split(".")
        return ".".join(parts[:2]) if parts[0] == "demos" and len(parts) > 1 else None

    problems = []
    for module, targets in graph.items():
        for target in sorted(targets):
            if module.startswith("gallery") and (target == "app" or target.startswith("demos")):
                problems.append(f"{module} imports {target}: the shared frame knows no tab and no app")
            elif tab(module) and target == "app":
                problems.append(f"{module} imports app: a tab knows no app")
            elif tab(module) and tab(target) and tab(module) != tab(target):
                problems.append(f"{module} imports {target}: a tab imports no other tab")
    return problems


def test_the_import_graph_has_no_cycle_and_runs_one_way():
    graph = import_graph(project_modules())
    assert {"app", "gallery.ui", "demos.next_word", "demos.next_word.reveal", "demos.pretrain.training"} <= set(graph)
    assert "demos.next_word.reveal" in graph["demos.next_word"]  # the arrows are read at all
    assert cycles(graph) == []
    assert wrong_way(graph) == []


def test_the_checks_find_a_cycle_and_an_arrow_the_wrong_way(tmp_path):
    (tmp_path / "gallery").mkdir()
    (tmp_path / "demos" / "one").mkdir(parents=True)
    (tmp_path / "demos" / "two").mkdir()
    (tmp_path / "app.py").write_text("from demos import one\n")
    (tmp_path / "gallery" / "ui.py").write_text("def f():\n    from gallery import links\n")
    (tmp_path / "gallery" / "links.py").write_text("from gallery.ui import f\nimport app\n")
    (tmp_path / "demos" / "__init__.py").write_text("")
    (tmp_path / "demos" / "one" / "__init__.py").write_text("from demos.one import part\n")
    (tmp_path / "demos" / "one" / "part.py").write_text("from demos.one import x\nfrom demos.two import y\n")
    (tmp_path / "demos" / "two" / "__init__.py").write_text("from . import helper\n")
    (tmp_path / "demos" / "two" / "helper.py").write_text("")
    graph = import_graph(project_modules(tmp_path))
    assert graph["demos.two"] == {"demos.two.helper"}  # a relative import, resolved
    assert graph["demos.one.part"] == {"demos.two"}  # its own package's __init__ is no arrow
    assert cycles(graph) == [["gallery.links", "gallery.ui"]]
    assert wrong_way(graph) == [
        "demos.one.part imports demos.two: a tab imports no other tab",
        "gallery.links imports app: the shared frame knows no tab and no app",
    ]


def test_every_module_imports_on_its_own():
    """A child process per module, forked after the libraries are imported once (~10 s)."""
    names = sorted(project_modules())
    done = subprocess.run([sys.executable, "-m", "tests.support.import_alone", *names], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    failures = json.loads(done.stdout.strip().splitlines()[-1])
    assert failures == {}, "\n\n".join(f"{name}:\n{error}" for name, error in failures.items())
