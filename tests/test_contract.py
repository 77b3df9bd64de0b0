"""The contract every tab of `app.DEMOS` keeps, checked over the app as it is built:

- it is a package `demos/<tab>/` whose `__init__` declares it: TITLE, SUMMARY, FIRST_SCREEN,
  API_PREFIX and `create_demo()` (a new tab is that package, its lesson, one line in `app.DEMOS`
  and its tests: `test_a_new_tab_is_one_package_its_lesson_and_one_line_in_demos`);
- its lesson text `assets/text/<module name>.md` exists and is not empty;
- every public `api_name` is given explicitly, is unique in the whole app (gradio would silently
  rename a duplicate to `<name>_1`), and carries its owner's prefix: the tab's `API_PREFIX`, or the
  module name when it declares none (`next_word_bars`, `clip_zero_shot`, `inpaint`); an event whose
  handler lives in the shared frame (`gallery.*`, e.g. the room panel) carries that module's prefix;
- each model role the tab asks the catalogue for has Hub models, tiny test models with a builder,
  and a loader that `gallery.models` defines;
- the bad-input suite knows every kind of input component the app's API takes
  (`tests/support/bad_inputs.py` `COMPONENT_KINDS`, and its `kind_of` agrees with it).

Each check is a function returning its problems in words; the tests at the end show that each one
finds a deliberately broken case, so a passing contract means something.
"""

from __future__ import annotations

import importlib
import inspect
import shutil
import sys
from collections import Counter
from dataclasses import dataclass, replace

import gradio as gr
import pytest

import app as gallery_app
from gallery import catalog, gradio_compat, models, ui
from tests.support import bad_inputs, tiny_models


@dataclass(frozen=True)
class Event:
    api_name: str | None  # as the code asked for it (before gradio makes it unique)
    handler_module: str  # where the handler is defined
    tab: str | None  # the app.DEMOS module being built when it was declared (None: the app shell)


@dataclass
class BuiltApp:
    blocks: gr.Blocks
    events: list[Event]
    roles: dict[str, set[str]]  # tab module -> the roles it asked the catalogue about


def _handler_module(fn) -> str:
    return getattr(inspect.unwrap(fn), "__module__", "") or ""


def build_recorded(monkeypatch, build=None) -> BuiltApp:
    """Build the app as app.py does, recording every event as declared and every role each tab
    asks the catalogue about. Tabs are built without ui.build_tab's safety net, so a tab that
    fails to build fails here."""
    events: list[Event] = []
    roles: dict[str, set[str]] = {}
    building: list[str | None] = [None]

    def record(fn, name, visibility):
        ours = fn is not None and not _handler_module(fn).startswith("gradio")  # (not gr.Examples' own)
        if ours and name is not False and visibility != "private":
            events.append(Event(name, _handler_module(fn), building[0]))

    def build_tab(module_name: str) -> None:
        building[0] = module_name
        roles.setdefault(module_name, set())
        try:
            importlib.import_module(module_name).create_demo()
        finally:
            building[0] = None

    real_all_models = catalog.all_models

    def all_models(role: str):
        if building[0] is not None:
            roles[building[0]].add(role)
        return real_all_models(role)

    monkeypatch.setattr(ui, "build_tab", build_tab)
    monkeypatch.setattr(catalog, "all_models", all_models)
    with gradio_compat.declared_events(record):
        blocks = (build or gallery_app.build_app)()
    return BuiltApp(blocks, events, roles)


# --- the checks -----------------------------------------------------------------------------------
DECLARATION = {"TITLE": str, "SUMMARY": str, "FIRST_SCREEN": dict, "API_PREFIX": str}


def declaration_problems(module_name: str) -> list[str]:
    """A tab is a package of demos/ whose __init__ declares it: TITLE, SUMMARY, FIRST_SCREEN
    ({"inputs": [elem ids], "button": elem id, "result": elem id}), API_PREFIX and create_demo()."""
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        return [f"{module_name}: cannot be imported ({error})"]
    problems = []
    if module_name.count(".") != 1 or not module_name.startswith("demos.") or not hasattr(module, "__path__"):
        problems.append(f"{module_name}: not a package of demos/ (a tab is demos/<tab>/)")
    for name, kind in DECLARATION.items():
        if not isinstance(getattr(module, name, None), kind):
            problems.append(f"{module_name}: declares no {name} ({kind.__name__})")
    if not callable(getattr(module, "create_demo", None)):
        problems.append(f"{module_name}: declares no create_demo()")
    screen = getattr(module, "FIRST_SCREEN", None)
    if isinstance(screen, dict) and not {"inputs", "button", "result"} <= set(screen):
        problems.append(f"{module_name}: FIRST_SCREEN names no inputs, button and result")
    return problems


def lesson_problems(module_name: str) -> list[str]:
    name = module_name.rsplit(".", 1)[-1]
    path = ui.TEXT_DIR / f"{name}.md"
    if not path.is_file():
        return [f"{module_name}: its lesson assets/text/{name}.md does not exist"]
    if not path.read_text(encoding="utf-8").strip():
        return [f"{module_name}: its lesson assets/text/{name}.md is empty"]
    return []


def api_prefix(module_name: str) -> str:
    module = importlib.import_module(module_name)
    return getattr(module, "API_PREFIX", module_name.rsplit(".", 1)[-1])


def owner(event: Event) -> str:
    """The module whose prefix the event carries: the shared frame's own, else the tab's."""
    if event.handler_module.startswith("gallery.") or event.tab is None:
        return event.handler_module
    return event.tab


def api_name_problems(events: list[Event]) -> list[str]:
    problems = []
    for event in events:
        where = f"{event.tab or 'the app shell'} ({event.handler_module})"
        if not isinstance(event.api_name, str) or not event.api_name:
            problems.append(f"{where}: a public event without an explicit api_name")
            continue
        prefix = api_prefix(owner(event))
        if event.api_name != prefix and not event.api_name.startswith(prefix + "_"):
            problems.append(f"{where}: api_name {event.api_name!r} does not start with {prefix!r}")
    counts = Counter(e.api_name for e in events if isinstance(e.api_name, str))
    problems += [f"api_name {name!r} is declared {n} times" for name, n in counts.items() if n > 1]
    return problems


def role_problems(name: str, role: catalog.Role | None) -> list[str]:
    if role is None:
        return [f"role {name!r}: not in catalog.ROLES"]
    problems = []
    if not role.hub:
        problems.append(f"role {name!r}: no Hub models")
    if not role.tiny:
        problems.append(f"role {name!r}: no tiny test model")
    for model in role.tiny:
        if catalog.tiny_folder(model) not in tiny_models.BUILDERS:
            problems.append(f"role {name!r}: no builder for its tiny folder {catalog.tiny_folder(model)!r}")
    loader = models.LOADERS.get(role.loader)
    if not callable(loader):
        problems.append(f"role {name!r}: gallery/models.py has no loader {role.loader!r}")
    families = {m.family for m in (*role.hub, *role.tiny)}
    if len(families) > 1:
        problems.append(f"role {name!r}: models of several families {sorted(families)} share one loader")
    return problems


def kind_problems(api_info: dict, kind_of_param) -> list[str]:
    """Every input component of the API is listed in bad_inputs.COMPONENT_KINDS, and the suite's
    own classifier (`kind_of_param`, bad_inputs.kind_of) treats it as that kind."""
    problems = []
    for endpoint, spec in api_info["named_endpoints"].items():
        for param in spec["parameters"]:
            component = param["component"].lower()
            listed = bad_inputs.COMPONENT_KINDS.get(component)
            if listed is None:
                problems.append(f"{endpoint} {param['parameter_name']}: the bad-input suite does not know "
                                f"the component {param['component']!r}")
            elif kind_of_param(param) != listed:
                problems.append(f"{endpoint} {param['parameter_name']}: listed as {listed!r}, but the suite "
                                f"drives it as {kind_of_param(param)!r}")
            else:
                bad_inputs.good_value(param, 0)  # builds a good value without failing
    return problems


# --- the contract over the app -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def built():
    with pytest.MonkeyPatch.context() as monkeypatch:
        recorded = build_recorded(monkeypatch)
    return recorded


def test_every_tab_is_a_package_that_declares_itself():
    problems = [p for _, module in gallery_app.DEMOS for p in declaration_problems(module)]
    assert not problems, "\n".join(problems)


def test_every_tab_has_its_lesson():
    assert len(gallery_app.DEMOS) >= 6
    problems = [p for _, module in gallery_app.DEMOS for p in lesson_problems(module)]
    assert not problems, "\n".join(problems)


def test_api_names_are_explicit_unique_and_carry_their_prefix(built):
    tabs = {e.tab for e in built.events}
    assert {m for _, m in gallery_app.DEMOS} <= tabs  # every tab was built and declared events
    problems = api_name_problems(built.events)
    assert not problems, "\n".join(problems)
    # what is served is what was declared: gradio renamed nothing
    served = {
        f.api_name for f in built.blocks.fns.values()
        if f.api_visibility != "private" and f.fn is not None and not _handler_module(f.fn).startswith("gradio")
    }
    assert served == {e.api_name for e in built.events}


def test_every_role_a_tab_uses_has_hub_tiny_and_loader_entries(built):
    used = {role for roles in built.roles.values() for role in roles}
    assert {"next_word", "instruct", "mae", "clip", "text2image", "inpaint"} <= used
    problems = [p for role in sorted(used) for p in role_problems(role, catalog.ROLES.get(role))]
    assert not problems, "\n".join(problems)


def test_every_role_in_the_catalogue_is_complete_and_built_for_the_tests(tiny_dir):
    problems = [p for name, role in catalog.ROLES.items() for p in role_problems(name, role)]
    assert not problems, "\n".join(problems)
    for role in catalog.ROLES.values():
        for model in role.tiny:
            assert (tiny_dir / catalog.tiny_folder(model)).is_dir()


def test_the_bad_input_suite_knows_every_input_component_of_the_api(built):
    info = built.blocks.get_api_info()
    assert len(info["named_endpoints"]) > 20
    problems = kind_problems(info, bad_inputs.kind_of)
    assert not problems, "\n".join(problems)


# --- each check fails on a broken case -----------------------------------------------------------------
def test_the_declaration_check_finds_a_flat_module_and_each_missing_name():
    problems = declaration_problems("gallery.ui")
    assert "gallery.ui: not a package of demos/ (a tab is demos/<tab>/)" in problems
    assert {"declares no TITLE (str)", "declares no FIRST_SCREEN (dict)", "declares no API_PREFIX (str)",
            "declares no create_demo()"} <= {p.split(": ", 1)[1] for p in problems}
    missing = "demos.nowhere: cannot be imported (No module named 'demos.nowhere')"
    assert declaration_problems("demos.nowhere") == [missing]


# A whole tab, as small as a tab can be: what a newcomer writes to add one.
NEW_TAB = '''"""Echo: what you type comes back (the contract test's own tab)."""

import gradio as gr

from gallery import ui

TITLE = "Echo"
SUMMARY = "**Echo.** What you type comes back."
FIRST_SCREEN = {"inputs": ["echo-text"], "button": "echo-run", "result": "echo-out"}
API_PREFIX = "echo"


@ui.user_errors
def on_echo(text):
    return text


def create_demo() -> None:
    ui.lesson("echo", SUMMARY)
    text = gr.Textbox(label="Text", elem_id="echo-text")
    run = gr.Button("Echo", elem_id="echo-run")
    out = gr.Textbox(label="Back", elem_id="echo-out")
    run.click(on_echo, text, out, api_name="echo")
'''


def test_a_new_tab_is_one_package_its_lesson_and_one_line_in_demos(tmp_path, monkeypatch):
    import demos

    (tmp_path / "tabs" / "echo").mkdir(parents=True)
    (tmp_path / "tabs" / "echo" / "__init__.py").write_text(NEW_TAB)  # demos/echo/__init__.py
    lessons = tmp_path / "text"
    shutil.copytree(ui.TEXT_DIR, lessons)
    (lessons / "echo.md").write_text("Echo: what you type comes back.\n")  # assets/text/echo.md
    monkeypatch.setattr(demos, "__path__", [*demos.__path__, str(tmp_path / "tabs")])
    monkeypatch.setattr(ui, "TEXT_DIR", lessons)
    monkeypatch.setattr(gallery_app, "DEMOS", [*gallery_app.DEMOS, ("7 · Echo", "demos.echo")])  # the one line
    try:
        built = build_recorded(monkeypatch)
        modules = [m for _, m in gallery_app.DEMOS]
        problems = [p for m in modules for p in declaration_problems(m) + lesson_problems(m)]
        problems += api_name_problems(built.events)
        assert not problems, "\n".join(problems)
        assert [(e.api_name, e.tab) for e in built.events if e.tab == "demos.echo"] == [("echo", "demos.echo")]
        tabs = [b for b in gradio_compat.components(built.blocks) if isinstance(b, gr.Tab)]
        assert "echo" in [t.id for t in tabs]  # built as the seventh tab, ?tab=echo
    finally:
        sys.modules.pop("demos.echo", None)


def test_a_missing_or_empty_lesson_is_found_and_refused_at_build_time(tmp_path, monkeypatch):
    monkeypatch.setattr(ui, "TEXT_DIR", tmp_path)
    (tmp_path / "blank.md").write_text("  \n")
    assert "does not exist" in lesson_problems("demos.nowhere")[0]
    assert "is empty" in lesson_problems("demos.blank")[0]
    for name in ("nowhere", "blank"):
        with gr.Blocks(), pytest.raises(FileNotFoundError, match=f"assets/text/{name}.md"):
            ui.lesson(name)


def test_the_api_name_check_finds_a_duplicate_a_wrong_prefix_and_a_missing_name():
    good = Event("next_word_bars", "demos.next_word", "demos.next_word")
    assert api_name_problems([good, Event("room_open", "gallery.room_ui", "demos.next_word")]) == []
    assert "declared 2 times" in api_name_problems([good, good])[0]
    assert "does not start with 'next_word'" in api_name_problems([replace(good, api_name="bars")])[0]
    assert "does not start with 'clip'" in api_name_problems([Event("zero_shot", "demos.clip", "demos.clip")])[0]
    assert "does not start with 'room'" in api_name_problems([replace(good, handler_module="gallery.room_ui")])[0]
    assert "without an explicit api_name" in api_name_problems([replace(good, api_name=None)])[0]


def test_the_recorder_sees_what_gradio_would_rename(monkeypatch):
    """Two events asking for one name: the recorded names repeat (the check's input), while gradio
    itself serves the second as `<name>_1` without a word."""

    def build_with_a_duplicate():
        with gr.Blocks() as blocks:
            button = gr.Button()
            button.click(on_twice, None, None, api_name="contract_twice")
            button.click(on_twice, None, None, api_name="contract_twice")
        return blocks

    built = build_recorded(monkeypatch, build_with_a_duplicate)
    assert [e.api_name for e in built.events] == ["contract_twice", "contract_twice"]
    assert {f.api_name for f in built.blocks.fns.values()} == {"contract_twice", "contract_twice_1"}
    assert any("declared 2 times" in p for p in api_name_problems(built.events))


def on_twice():
    return None


def test_the_role_check_finds_each_missing_entry():
    role = catalog.ROLES["mae"]
    assert role_problems("mae", role) == []
    assert role_problems("nothing", None) == ["role 'nothing': not in catalog.ROLES"]
    assert "no Hub models" in role_problems("mae", replace(role, hub=()))[0]
    assert "no tiny test model" in role_problems("mae", replace(role, tiny=()))[0]
    stray = replace(role, tiny=(catalog.Model("Tiny ghost (test)", "ghost", "mae"),))
    assert "no builder for its tiny folder 'ghost'" in role_problems("mae", stray)[0]
    assert "has no loader 'load_nothing'" in role_problems("mae", replace(role, loader="load_nothing"))[0]
    mixed = replace(role, hub=(*role.hub, catalog.Model("x", "y", "clip")))
    assert "several families" in role_problems("mae", mixed)[0]


def test_a_role_without_a_loader_is_refused_loudly_not_skipped(monkeypatch):
    monkeypatch.setitem(catalog.ROLES, "mae", replace(catalog.ROLES["mae"], loader="load_nothing"))
    with pytest.raises(LookupError, match="load_nothing"):
        models.preload()


def test_a_tiny_folder_without_a_builder_stops_the_tiny_build(monkeypatch, tmp_path):
    ghost = catalog.Model("Tiny ghost (test)", "ghost", "mae")
    monkeypatch.setitem(catalog.ROLES, "mae", replace(catalog.ROLES["mae"], tiny=(ghost,)))
    with pytest.raises(LookupError, match="ghost"):
        tiny_models.build_all(tmp_path)
    assert not any(tmp_path.iterdir())  # refused before building anything


def test_the_kind_check_finds_an_unknown_component_and_a_disagreement():
    def api(*params):
        return {"named_endpoints": {"/x": {"parameters": list(params)}}}

    text = {"parameter_name": "t", "component": "Textbox", "python_type": {"type": "str"}}
    assert kind_problems(api(text), bad_inputs.kind_of) == []
    audio = {"parameter_name": "a", "component": "Audio", "python_type": {"type": "filepath"}}
    assert "does not know the component 'Audio'" in kind_problems(api(audio), bad_inputs.kind_of)[0]
    # a textbox whose value is not a string: the suite would send it no bad strings
    odd = {**text, "python_type": {"type": "float"}}
    assert "drives it as 'other'" in kind_problems(api(odd), bad_inputs.kind_of)[0]
