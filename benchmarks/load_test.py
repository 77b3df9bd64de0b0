"""Load test: N concurrent gradio_client users for a bounded time, mixing every tab's endpoints.

    python -m benchmarks.load_test [--users 20] [--duration 120] [--tiny DIR]

Starts `app.py` in its own process on 127.0.0.1 (tiny checkpoints unless --tiny is given a folder
of others), then reports requests done, failures, p50/p95 latency per endpoint and overall, and the
server's memory at start and end. Traffic goes to this machine's loopback only; the loops are
bounded in time and stop by themselves.
"""

from __future__ import annotations

import argparse
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
# One request per tab: the events a visitor triggers most.
MIX = ["/next_token", "/your_word", "/inpaint", "/zero_shot", "/few_shot", "/text_to_image", "/compare"]


@dataclass
class Result:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, endpoint: str, seconds: float, error: str | None) -> None:
        with self.lock:
            if error:
                self.failures.append(f"{endpoint}: {error[:160]}")
            else:
                self.latencies.setdefault(endpoint, []).append(seconds)


def start_server(tiny_dir: str, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "GALLERY_TINY_MODELS": tiny_dir,
        "GALLERY_PORT": str(port),
        "GALLERY_HOST": "127.0.0.1",
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"app.py exited with code {server.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).close()
            return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise TimeoutError("the app did not start within 120 s")


def rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def user_loop(url: str, endpoints: dict, names: list[str], stop_at: float, result: Result, seed: int) -> None:
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    from tests.bad_inputs import good_args

    rng = random.Random(seed)
    client = Client(url, verbose=False, download_files=False)
    try:
        while time.time() < stop_at:
            name = rng.choice(names)
            started = time.perf_counter()
            try:
                client.predict(*good_args(endpoints[name]), api_name=name)
                result.add(name, time.perf_counter() - started, None)
            except AppError as error:  # a clear message is still a failed request under load
                result.add(name, 0.0, f"AppError: {error}")
            except Exception as error:  # noqa: BLE001 - count every failure, keep the user going
                result.add(name, 0.0, f"{type(error).__name__}: {error}")
    finally:
        client.close()


def run(users: int = 20, duration_s: float = 120.0, tiny_dir: str | None = None) -> dict:
    from gradio_client import Client

    workdir = None
    if tiny_dir is None:
        from tests.tiny_models import build_all

        workdir = tempfile.mkdtemp(prefix="load-test-models-")
        tiny_dir = str(build_all(workdir))
    port = free_port()
    server = start_server(tiny_dir, port)
    url = f"http://127.0.0.1:{port}/"
    try:
        probe = Client(url, verbose=False, download_files=False)
        endpoints = probe.view_api(print_info=False, return_format="dict")["named_endpoints"]
        probe.close()
        names = [n for n in MIX if n in endpoints]
        memory_start = rss_mb(server.pid)
        result = Result()
        stop_at = time.time() + duration_s
        threads = [
            threading.Thread(target=user_loop, args=(url, endpoints, names, stop_at, result, i), daemon=True)
            for i in range(users)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=duration_s + 600)  # the last requests may still be queued
        memory_end = rss_mb(server.pid)
        server_alive = server.poll() is None
    finally:
        server.terminate()
        server.wait(timeout=30)
    every = [s for values in result.latencies.values() for s in values]
    return dict(
        users=users,
        duration_s=duration_s,
        endpoints=names,
        done=len(every),
        failures=result.failures,
        latencies=result.latencies,
        p50=statistics.median(every) if every else float("nan"),
        p95=statistics.quantiles(every, n=20)[-1] if len(every) >= 20 else max(every, default=float("nan")),
        memory_start_mb=memory_start,
        memory_end_mb=memory_end,
        server_alive=server_alive,
    )


def report(stats: dict) -> str:
    lines = [
        f"{stats['users']} users for {stats['duration_s']:.0f} s against {len(stats['endpoints'])} endpoints "
        "(tiny checkpoints, 127.0.0.1)",
        f"requests done: {stats['done']}, failed: {len(stats['failures'])}, server alive: {stats['server_alive']}",
        f"latency p50 {stats['p50']:.2f} s, p95 {stats['p95']:.2f} s (queueing included)",
        f"server memory: {stats['memory_start_mb']:.0f} MB at start, {stats['memory_end_mb']:.0f} MB at end",
    ]
    for name, values in sorted(stats["latencies"].items()):
        lines.append(f"  {name:<16} n={len(values):<4} p50={statistics.median(values):.2f} s")
    lines += [f"  FAILED {f}" for f in stats["failures"][:20]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--duration", type=float, default=120.0, help="seconds")
    parser.add_argument("--tiny", default=None, help="folder of tiny checkpoints (built if omitted)")
    args = parser.parse_args()
    print(report(run(args.users, args.duration, args.tiny)))


if __name__ == "__main__":
    main()
