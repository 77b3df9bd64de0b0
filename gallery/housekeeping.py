"""Keeping a long-running gallery flat: gradio's temporary files swept by age and by total size.

gradio writes every upload and every generated picture into its temporary folder and, unless
told otherwise, never removes them. `gr.Blocks(delete_cache=...)` removes the files a Blocks made
once they are older than an age, but puts no cap on the total and leaves the empty per-file
folders behind. `sweep` does both: files older than `max_age_s` go, then the oldest go first
while the folder is above `max_bytes`. Files a component keeps on purpose (its default value,
cached examples: gradio's `keep_in_cache`) are never removed, nor files younger than
`min_age_s` (settings.TEMP_MIN_AGE_S), which a browser may still be about to fetch.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from gallery import settings

log = logging.getLogger("gallery")


def folder_size(folder: Path) -> tuple[int, int]:
    """(bytes, files) under `folder`."""
    total = count = 0
    for root, _, names in os.walk(folder):
        for name in names:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
                count += 1
            except OSError:  # removed meanwhile
                continue
    return total, count


def _kept_files(blocks) -> set[str]:
    kept: set[str] = set()
    for component in getattr(blocks, "blocks", {}).values():
        kept.update(str(f) for f in getattr(component, "keep_in_cache", set()))
    return kept


def sweep(folder: Path, max_age_s: float, max_bytes: float, blocks=None, min_age_s: float = 10.0) -> int:
    """Remove old files, then the oldest while the folder is above `max_bytes`; drop empty folders
    that have been empty for `min_age_s`. Never a file or a folder younger than `min_age_s`.
    Returns how many files were removed."""
    folder = Path(os.path.abspath(folder))  # gradio records absolute paths
    if not folder.is_dir():
        return 0
    kept = _kept_files(blocks) if blocks is not None else set()
    min_age_s = min(min_age_s, max_age_s)
    now = time.time()
    files = []  # (ctime, size, path)
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            try:
                info = os.lstat(path)
            except OSError:
                continue
            if path not in kept:
                files.append((info.st_ctime, info.st_size, path))
    total = sum(size for _, size, _ in files)
    removed = 0
    for ctime, size, path in sorted(files):  # oldest first
        age = now - ctime
        if age < min_age_s:
            break
        if age <= max_age_s and total <= max_bytes:
            break
        try:
            os.remove(path)
        except OSError:
            continue
        total -= size
        removed += 1
        for temp_set in getattr(blocks, "temp_file_sets", ()):  # gradio's record of its files
            temp_set.discard(path)
    # gradio makes one folder per file: it makes the folder, then writes the file into it. A young
    # empty folder may be one it is about to write into (removing it made that write fail), and a
    # folder emptied just now by this sweep is young too (removing a file touches its folder).
    for root, dirs, names in os.walk(folder, topdown=False):
        if root != str(folder) and not dirs and not names:
            try:
                if time.time() - os.stat(root).st_mtime >= min_age_s:
                    os.rmdir(root)
            except OSError:
                pass
    if removed:
        log.info("temporary files: removed %d, %.1f MB left", removed, total / 2**20)
    return removed


def start_temp_sweeper(blocks=None) -> threading.Thread:
    """Sweep settings.TEMP_DIR every settings.TEMP_SWEEP_S seconds, for the life of the process."""

    def loop() -> None:
        while True:
            time.sleep(settings.TEMP_SWEEP_S)
            try:
                sweep(settings.TEMP_DIR, settings.TEMP_MAX_AGE_S, settings.TEMP_MAX_MB * 2**20, blocks,
                      settings.TEMP_MIN_AGE_S)
            except Exception:  # noqa: BLE001 - housekeeping must never stop the server
                log.exception("sweeping the temporary folder failed")

    worker = threading.Thread(target=loop, name="temp-sweeper", daemon=True)
    worker.start()
    return worker
