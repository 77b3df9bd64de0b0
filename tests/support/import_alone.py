"""Import each named module on its own, in a fresh child process each, and print the ones that fail.

    python -m tests.support.import_alone app gallery.ui demos.next_word ...

The third-party libraries the project uses are imported once here first, so that each child
(a fork of this process) only has the project's own modules to import: what this checks is that
no module of ours needs another of ours to have been imported before it (a cycle between files,
or an order that only some entry point happens to keep). Prints one JSON line: {module: error}.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback

HEAVY = ("torch", "numpy", "pandas", "PIL.Image", "gradio", "transformers", "diffusers", "open_clip", "httpx")


def import_in_a_child(name: str) -> str | None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: import, say what went wrong, and leave without running any atexit hook
        os.close(read)
        try:
            importlib.import_module(name)
            message = b""
        except BaseException:  # noqa: BLE001 - every failure is the answer
            message = traceback.format_exc(limit=-3).encode()
        os.write(write, message)
        os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode() or None


def main(names: list[str]) -> None:
    for heavy in HEAVY:
        importlib.import_module(heavy)
    failures = {name: error for name in names if (error := import_in_a_child(name))}
    print(json.dumps(failures))


if __name__ == "__main__":
    main(sys.argv[1:])
