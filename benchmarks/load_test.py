"""Load test: N concurrent gradio_client users for a bounded time against a served gallery.

    python -m benchmarks.load_test [--users 20] [--duration 120]          every tab's main endpoint, mixed
    python -m benchmarks.load_test --lanes [--bundled]                    4 bar users + 16 heavy users
    python -m benchmarks.load_test --soak --users 20 --duration 600       memory and disk every minute

Starts `app.py` in its own process on 127.0.0.1 with tiny checkpoints (or those in --tiny), with
a temporary folder of its own, then reports requests done, failures, plain refusals (each
sentence: a refusal the visitor can read is not a failure), p50/p95 latency per endpoint and
overall, the server's memory and the temporary folder's size. The endpoints are read from the
app itself: one per tab of `app.DEMOS`, the event of its main button
(`FIRST_SCREEN["button"]`), with its parameters from the server's API description (`view_api`).
`--lanes` splits the users: 4 ask for the first tab's next-token bars, 2 for the tabs' opening
answers (what a page shows as it opens, `gallery/opening.py`), the rest run the endpoints of the
long lane (every event declared with `ui.heavy()`); the bars' and the openings' p95 are the
figures that show whether short requests wait behind long ones. `--bundled` sends the text endpoints to the
bundled SmolLM2 instead of the tiny text model. Traffic goes to this machine's loopback only; the
loops are bounded in time and stop by themselves.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import free_port

ROOT = Path(__file__).resolve().parent.parent
BARS_TAB = "demos.next_word"  # --lanes: its main endpoint (the next-token bars) is the short-lane probe
BAR_USERS = 4
OPENING_USERS = 2  # --lanes: users asking for the opening answers, as each newly opened page does
# A request may wait minutes in the long lane's queue; httpx's default read timeout (a few
# seconds without data) would count that wait as a failure of the server.
CLIENT_HTTP = {"timeout": 900}


GENERIC_ERROR = "has not enabled verbose error reporting"  # gradio's reply to an unhandled exception


def is_plain_refusal(message: str) -> bool:
    """A refusal the visitor can read (the gallery's own sentence), not a crash: no traceback,
    not gradio's generic error, not empty."""
    text = message.strip()
    return bool(text) and text != "None" and GENERIC_ERROR not in text and "Traceback" not in text


@dataclass
class Result:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    refusals: dict[str, int] = field(default_factory=dict)  # "endpoint: sentence" -> how often
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, endpoint: str, seconds: float, error: str | None) -> None:
        with self.lock:
            if error:
                self.failures.append(f"{endpoint}: {error[:160]}")
            else:
                self.latencies.setdefault(endpoint, []).append(seconds)

    def refuse(self, endpoint: str, sentence: str) -> None:
        with self.lock:
            key = f"{endpoint}: {sentence[:160]}"
            self.refusals[key] = self.refusals.get(key, 0) + 1

    def count(self) -> tuple[int, int]:
        with self.lock:
            return sum(len(v) for v in self.latencies.values()), len(self.failures)


def server_env(tiny_dir: str, port: int, temp_dir: str, extra: dict | None = None) -> dict:
    return {
        **os.environ,
        "GALLERY_TINY_MODELS": tiny_dir,
        "GALLERY_PORT": str(port),
        "GALLERY_HOST": "127.0.0.1",
        "GRADIO_TEMP_DIR": temp_dir,
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        **(extra or {}),
    }


def start_server(env: dict, port: int, log_path: str | None = None) -> subprocess.Popen:
    """`app.py` on `port`; its output goes to `log_path` (kept, to read when a request failed)."""
    out = open(log_path, "wb") if log_path else subprocess.DEVNULL
    server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.time() + 300  # a loaded 2-core machine imports torch slowly
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"app.py exited with code {server.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).close()
            return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise TimeoutError("the app did not start within 300 s")


# Built in a child process with the server's settings: {"lanes": {"/api_name": concurrency id},
# "main": {module of app.DEMOS: "/api_name" of the event its FIRST_SCREEN button triggers}}.
_APP_EVENTS = """
import importlib, json, app
blocks = app.build_app()
public = [f for f in blocks.fns.values() if f.api_name and f.api_visibility != "private"]
def triggered_by(elem_id):
    return [f for f in public if any(getattr(blocks.blocks.get(t[0]), "elem_id", None) == elem_id for t in f.targets)]
main = {}
for _, module in app.DEMOS:
    button = getattr(importlib.import_module(module), "FIRST_SCREEN", {}).get("button")
    main.update({module: "/" + f.api_name for f in triggered_by(button)[:1]})
print(json.dumps({"lanes": {"/" + f.api_name: str(f.concurrency_id) for f in public}, "main": main}))
"""


def app_events(env: dict) -> dict:
    """Each endpoint's lane and each tab's main endpoint, from the app's own event table."""
    out = subprocess.run([sys.executable, "-c", _APP_EVENTS], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def rss_mb(pid: int) -> float:
    """Resident memory of the server and its children (a forked worker counts too)."""
    import psutil

    process = psutil.Process(pid)
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            continue
    return total / 2**20


def temp_size(folder: str) -> tuple[float, int]:
    from gallery.housekeeping import folder_size

    size, files = folder_size(Path(folder))
    return size / 2**20, files


def _args_for(spec: dict, text_model: str | None) -> list:
    from tests.support.bad_inputs import good_args

    args = good_args(spec)
    if text_model:  # point the model dropdown at the chosen text model where it is offered
        for i, param in enumerate(spec["parameters"]):
            if text_model in (param.get("type", {}).get("enum") or []):
                args[i] = text_model
    return args


def user_loop(url: str, endpoints: dict, names: list[str], stop_at: float, result: Result, seed: int,
              text_model: str | None = None) -> None:
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    rng = random.Random(seed)
    client = Client(url, verbose=False, download_files=False, httpx_kwargs=CLIENT_HTTP)
    try:
        while time.time() < stop_at:
            name = rng.choice(names)
            args = _args_for(endpoints[name], text_model)
            started = time.perf_counter()
            try:
                client.predict(*args, api_name=name)
                result.add(name, time.perf_counter() - started, None)
            except AppError as error:  # a plain sentence (e.g. "Train a model first") is a refusal
                if is_plain_refusal(str(error)):
                    result.refuse(name, str(error))
                else:
                    result.add(name, 0.0, f"AppError: {error}")
            except Exception as error:  # noqa: BLE001 - count every failure, keep the user going
                result.add(name, 0.0, f"{type(error).__name__}: {error}")
    finally:
        client.close()


def user_once(url: str, endpoints: dict, names: list[str], result: Result, text_model: str | None) -> None:
    """Each endpoint once, in order (the warm-up)."""
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(url, verbose=False, download_files=False, httpx_kwargs=CLIENT_HTTP)
    try:
        for name in names:
            started = time.perf_counter()
            try:
                client.predict(*_args_for(endpoints[name], text_model), api_name=name)
                result.add(name, time.perf_counter() - started, None)
            except AppError as error:
                if is_plain_refusal(str(error)):
                    result.refuse(name, str(error))
                else:
                    result.add(name, 0.0, f"AppError: {error}")
            except Exception as error:  # noqa: BLE001
                result.add(name, 0.0, f"{type(error).__name__}: {error}")
    finally:
        client.close()


def _p95(values: list[float]) -> float:
    if len(values) >= 20:
        return statistics.quantiles(values, n=20)[-1]
    return max(values, default=float("nan"))


def run(users: int = 20, duration_s: float = 120.0, tiny_dir: str | None = None, *, lanes: bool = False,
        bundled: bool = False, every_s: float | None = None, server_settings: dict | None = None,
        warm: bool = True, settle_s: float = 0.0, log=print) -> dict:
    """Serve the app, run the users, return the figures. `every_s`: print a memory and disk line
    that often (the soak). `server_settings`: extra environment variables for the server.
    `settle_s`: after the users stop, wait this long and take one more sample ("idle")."""
    from gradio_client import Client

    if tiny_dir is None:
        from tests.support.tiny_models import build_all

        tiny_dir = str(build_all(tempfile.mkdtemp(prefix="load-test-models-")))
    temp_dir = tempfile.mkdtemp(prefix="load-test-gradio-")
    port = free_port()
    env = server_env(tiny_dir, port, temp_dir, server_settings)
    events = app_events(env)
    lane_of = events["lanes"] if lanes else {}
    bars = events["main"][BARS_TAB]
    server_log = os.path.join(tempfile.mkdtemp(prefix="load-test-server-"), "server.log")
    server = start_server(env, port, server_log)
    url = f"http://127.0.0.1:{port}/"
    text_model = None
    if bundled:
        from gallery.catalog import EMBEDDED_LM

        text_model = EMBEDDED_LM.label
    timeline: list[dict] = []
    try:
        probe = Client(url, verbose=False, download_files=False)
        endpoints = probe.view_api(print_info=False, return_format="dict")["named_endpoints"]
        probe.close()
        if lanes:
            from gallery.ui import LONG_LANE

            from gallery.opening import LANE as OPENING_LANE

            heavy = sorted(n for n in endpoints if lane_of.get(n) == LONG_LANE)
            openers = sorted(n for n in endpoints if lane_of.get(n) == OPENING_LANE["concurrency_id"])
            groups = [([bars], BAR_USERS), (openers, OPENING_USERS), (heavy, users - BAR_USERS - OPENING_USERS)]
            names = [bars, *openers, *heavy]
        else:  # one request per tab: its main button's event
            names = [n for n in events["main"].values() if n in endpoints]
            groups = [(names, users)]
        result = Result()
        if warm:  # every model loaded before the clock starts: the figures are of a running server
            warm_up = Result()
            user_once(url, endpoints, names, warm_up, text_model)
            result.failures += [f"(warm-up) {f}" for f in warm_up.failures]
            for key, count in warm_up.refusals.items():
                result.refusals[f"(warm-up) {key}"] = count
        started = time.time()
        stop_at = started + duration_s
        threads, seed = [], 0
        for group, count in groups:
            for _ in range(count):
                threads.append(threading.Thread(
                    target=user_loop, args=(url, endpoints, group, stop_at, result, seed, text_model), daemon=True
                ))
                seed += 1

        def sample(label: str) -> dict:
            mb, files = temp_size(temp_dir)
            done, failed = result.count()
            point = dict(t=time.time() - started, label=label, memory_mb=rss_mb(server.pid),
                         temp_mb=mb, temp_files=files, done=done, failed=failed)
            timeline.append(point)
            if every_s:
                log(f"[{point['t']:6.0f} s] {label:<6} server memory {point['memory_mb']:7.0f} MB | "
                    f"temporary folder {mb:7.2f} MB in {files} files | requests {done} done, {failed} failed")
            return point

        sample("start")
        for t in threads:
            t.start()
        last = time.time()
        while any(t.is_alive() for t in threads) and time.time() < stop_at + 600:  # queued ones finish
            time.sleep(0.5)
            if every_s and time.time() - last >= every_s:
                last = time.time()
                sample("tick")
        end = sample("end")
        if settle_s:  # the server idle for a while: what stays in memory and on disk
            time.sleep(settle_s)
            end = sample("idle")
        server_alive = server.poll() is None
    finally:
        server.terminate()
        server.wait(timeout=30)
    every = [s for values in result.latencies.values() for s in values]
    stats = dict(
        users=users, duration_s=duration_s, endpoints=names, lanes=lane_of, bundled=bundled,
        done=len(every), failures=result.failures, refusals=result.refusals, latencies=result.latencies,
        p50=statistics.median(every) if every else float("nan"), p95=_p95(every),
        memory_start_mb=timeline[0]["memory_mb"], memory_end_mb=end["memory_mb"],
        temp_end_mb=end["temp_mb"], temp_max_mb=max(p["temp_mb"] for p in timeline),
        timeline=timeline, server_alive=server_alive, server_log=server_log,
    )
    bar_times = result.latencies.get(bars, [])
    stats["bars_p50"] = statistics.median(bar_times) if bar_times else float("nan")
    stats["bars_p95"] = _p95(bar_times)
    opening_times = [t for name, values in result.latencies.items() if name.endswith("_opening") for t in values]
    stats["opening_p50"] = statistics.median(opening_times) if opening_times else float("nan")
    stats["opening_p95"] = _p95(opening_times)
    return stats


def memory_growth(stats: dict, from_s: float = 120.0) -> float:
    """Relative growth of server memory from the first sample at or after `from_s` to the end."""
    later = [p for p in stats["timeline"] if p["t"] >= from_s - 5] or stats["timeline"]
    first, last = later[0]["memory_mb"], stats["timeline"][-1]["memory_mb"]
    return (last - first) / first


def report(stats: dict) -> str:
    models = "bundled SmolLM2 for text, tiny checkpoints otherwise" if stats["bundled"] else "tiny checkpoints"
    lines = [
        f"{stats['users']} users for {stats['duration_s']:.0f} s against {len(stats['endpoints'])} endpoints "
        f"({models}, 127.0.0.1)",
        f"requests done: {stats['done']}, failed: {len(stats['failures'])}, "
        f"refused with a plain sentence: {sum(stats['refusals'].values())}, server alive: {stats['server_alive']}",
        f"latency p50 {stats['p50']:.2f} s, p95 {stats['p95']:.2f} s (queueing included)",
        f"server memory: {stats['memory_start_mb']:.0f} MB at start, {stats['memory_end_mb']:.0f} MB at end",
        f"temporary folder: {stats['temp_end_mb']:.2f} MB at end, {stats['temp_max_mb']:.2f} MB at most",
    ]
    if stats["lanes"]:
        lines.append(
            f"next-token bars ({BAR_USERS} users, short lane): p50 {stats['bars_p50']:.2f} s, "
            f"p95 {stats['bars_p95']:.2f} s, while {stats['users'] - BAR_USERS - OPENING_USERS} users run the long lane"
        )
        lines.append(
            f"opening answers ({OPENING_USERS} users, opening lane): p50 {stats['opening_p50']:.2f} s, "
            f"p95 {stats['opening_p95']:.2f} s"
        )
    if len(stats["timeline"]) > 3:
        lines.append(f"memory growth from minute 2 to the end: {memory_growth(stats):+.1%}")
    for name, values in sorted(stats["latencies"].items()):
        lane = f" [{stats['lanes'].get(name)}]" if stats["lanes"] else ""
        lines.append(f"  {name:<22} n={len(values):<4} p50={statistics.median(values):.2f} s "
                     f"p95={_p95(values):.2f} s{lane}")
    lines += [f"  REFUSED ×{count} {key}" for key, count in sorted(stats["refusals"].items())]
    lines += [f"  FAILED {f}" for f in stats["failures"][:20]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--duration", type=float, default=120.0, help="seconds")
    parser.add_argument("--tiny", default=None, help="folder of tiny checkpoints (built if omitted)")
    parser.add_argument("--lanes", action="store_true", help="4 users ask for bars, the rest run long work")
    parser.add_argument("--bundled", action="store_true", help="text endpoints on the bundled SmolLM2")
    parser.add_argument("--soak", action="store_true", help="print memory and disk every --every seconds")
    parser.add_argument("--every", type=float, default=60.0, help="seconds between soak lines")
    parser.add_argument("--settle", type=float, default=0.0, help="seconds idle after the users stop, then a last line")
    args = parser.parse_args()
    stats = run(args.users, args.duration, args.tiny, lanes=args.lanes, bundled=args.bundled,
                every_s=args.every if args.soak else None)
    print(report(stats))


if __name__ == "__main__":
    main()
