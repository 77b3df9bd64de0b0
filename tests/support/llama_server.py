"""llama.cpp's own HTTP server (`llama-server`) on loopback, for the text-server tests and
benchmarks/bench_text_server.py: where the dev set-up built it, and one running process.

`bash scripts/setup.sh dev` builds it once from the same pinned llama.cpp source as the wheel and
keeps it beside the wheel in the gallery cache. It runs with the in-process engine's own choices
(`-fa off`: no flash attention; `--no-repack`: no repacked weights; see text_engine.py), so its
numbers and the in-process engine's can be compared, and with a cache per slot
(`--no-kv-unified`): with one cache shared by every slot, a prompt read in the same batch as
other visitors' prompts came out differently from the same prompt read alone (measured here:
probabilities up to 0.0078 apart for "東京は日本の" among nine other prompts; 0 with a cache per
slot, in four repeats).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from gallery import catalog, settings

LLAMA_BUILD = "0.3.36-nollamafile"  # scripts/setup.sh's LLAMA_BUILD: the folder of the wheel and the server
START_TIMEOUT_S = 120.0


def binary() -> Path:
    """The llama-server the dev set-up built (GALLERY_LLAMA_SERVER overrides)."""
    return Path(os.environ.get("GALLERY_LLAMA_SERVER") or settings.CACHE_DIR / "wheels" / LLAMA_BUILD / "llama-server")


def missing_reason() -> str | None:
    """None when llama-server is there; else what to do, in words."""
    path = binary()
    if path.is_file() and os.access(path, os.X_OK):
        return None
    folder = path.parent
    if (folder / "SERVER-FAILED").is_file():
        return (f"llama-server could not be built (see {folder / 'server-build.log'}); fix that, remove "
                f"{folder / 'SERVER-FAILED'} and run `bash scripts/setup.sh dev` again")
    return f"llama-server is not built ({path} is missing): run `bash scripts/setup.sh dev`, which builds it once"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """One llama-server process on 127.0.0.1 serving a bundled GGUF (found as `models` finds it).

    `alias`: the name /v1/models lists (None: llama-server's own, the file's path); `ctx`: tokens
    of cache in all, `ctx / parallel` for each slot (one request at a time each)."""

    def __init__(self, model: catalog.Model = catalog.EMBEDDED_LM, *, alias: str | None = None,
                 parallel: int = 16, ctx: int = 16384, threads: int = 2, api_key: str | None = None,
                 port: int | None = None, extra_args: tuple[str, ...] = ()):
        reason = missing_reason()
        if reason:
            raise RuntimeError(reason)
        gguf = catalog.gguf_file(model)
        if gguf is None:
            raise RuntimeError(catalog.missing_reason(model) or f"{model.label} has no GGUF file here")
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        args = [str(binary()), "-m", str(gguf), "--host", "127.0.0.1", "--port", str(self.port),
                "-fa", "off", "--no-repack", "-c", str(ctx), "-np", str(parallel), "--no-kv-unified",
                "-t", str(threads), "-tb", str(threads)]
        if alias:
            args += ["-a", alias]
        if api_key:
            args += ["--api-key", api_key]
        args += list(extra_args)
        self.log = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log", delete=False)
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self._wait_ready(api_key)

    def _wait_ready(self, api_key: str | None) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama-server exited with code {self.process.returncode}: {self.log_tail()}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", headers=headers, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"llama-server did not become ready in {START_TIMEOUT_S:g} s: {self.log_tail()}")

    def log_tail(self, chars: int = 2000) -> str:
        return Path(self.log.name).read_text(errors="replace")[-chars:]

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): it accepts connections and answers nothing, a slow server."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """Die at once (SIGKILL), as a crashed server does."""
        self.process.kill()
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.resume()
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)

    def __enter__(self) -> "LlamaServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
