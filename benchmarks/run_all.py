"""The one benchmark command: every demo's benchmark, then start-up time, as one table.

    python -m benchmarks.run_all [--repeats 5] [--only next_word,clip]

The demos are the app's tabs (`app.DEMOS`), each measured by `benchmarks/bench_<module name>.py`;
a tab without one shows as a FAILED row. Each demo's benchmark runs in its own process (clean
memory figures, no model shared by accident);
ratios inside a row are measured in the same process and the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def demo_names() -> list[str]:
    """The app's tabs, in its order: the module names of `app.DEMOS`."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # importing the app decides online/offline; benchmarks run offline
    sys.path.insert(0, str(ROOT))
    import app

    return [module.rsplit(".", 1)[-1] for _, module in app.DEMOS]


_CHILD = """
import json, sys
from benchmarks import bench_{name} as bench
rows = bench.run(repeats={repeats})
print("@@ROWS@@" + json.dumps([dict(r.__dict__, ratio=r.ratio) for r in rows]))
"""


def run_demo(name: str, repeats: int) -> list[dict]:
    if not (ROOT / "benchmarks" / f"bench_{name}.py").is_file():
        return [dict(demo=name, case="FAILED", raw_s=float("nan"), app_s=float("nan"), ratio=float("nan"),
                     peak_mb=float("nan"), note=f"this tab has no benchmarks/bench_{name}.py")]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    result = subprocess.run(
        [sys.executable, "-c", _CHILD.format(name=name, repeats=repeats)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    for line in result.stdout.splitlines():
        if line.startswith("@@ROWS@@"):
            return json.loads(line[len("@@ROWS@@") :])
    tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
    return [dict(demo=name, case="FAILED", raw_s=float("nan"), app_s=float("nan"), ratio=float("nan"),
                 peak_mb=float("nan"), note=" / ".join(tail)[:200])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated demo names")
    args = parser.parse_args()
    demos = demo_names()
    names = [n for n in args.only.split(",") if n] or demos
    unknown = sorted(set(names) - set(demos))
    if unknown:
        parser.error(f"not a tab of the app: {', '.join(unknown)} (tabs: {', '.join(demos)})")

    rows: list[dict] = []
    for name in names:
        started = time.perf_counter()
        print(f"[{name}] running ...", file=sys.stderr, flush=True)
        rows += run_demo(name, args.repeats)
        print(f"[{name}] done in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

    print(f"\n{'demo':<14} {'case':<50} {'raw s':>9} {'app s':>9} {'ratio':>6} {'peak MB':>8}  note")
    print("-" * 120)
    for r in rows:
        print(f"{r['demo']:<14} {r['case'][:50]:<50} {r['raw_s']:>9.4f} {r['app_s']:>9.4f} "
              f"{r['ratio']:>6.2f} {r['peak_mb']:>8.0f}  {r['note']}")

    from benchmarks import startup

    times = startup.run(repeats=3)
    times.sort()
    print(f"\nfirst page served after `python app.py`: median {times[1]:.2f} s over 3 starts "
          "(models load lazily, on each tab's first use)")


if __name__ == "__main__":
    main()
