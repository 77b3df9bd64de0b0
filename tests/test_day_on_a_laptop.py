"""A day on one laptop: two lanes, a temporary folder that stays bounded, a short soak. (The
llama.cpp engine's own tests are tests/test_text_engine.py.)"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gallery import housekeeping, ui

SOAK_SETTINGS = {  # sweep every second, keep swept files 1 s at least, cap them at 50 kB
    "GALLERY_TEMP_SWEEP_S": "1",
    "GALLERY_TEMP_MIN_AGE_S": "1",
    "GALLERY_TEMP_MAX_MB": "0.05",
}
SOAK_CAP_MB = 0.05


# --- lanes -------------------------------------------------------------------------------------
SHORT = {"/next_word_bars", "/next_word_guess", "/clip_zero_shot"}
LONG = {"/next_word_generate", "/text_to_image", "/inpaint", "/prompting_compare", "/prompting_score", "/clip_few_shot"}


def test_short_requests_and_long_work_are_in_separate_lanes(tiny_dir):
    import app as gallery_app

    blocks = gallery_app.build_app()
    lane = {"/" + f.api_name: f.concurrency_id for f in blocks.fns.values() if f.api_name}
    limit = {"/" + f.api_name: f.concurrency_limit for f in blocks.fns.values() if f.api_name}
    assert {lane[name] for name in SHORT} == {ui.SHORT_LANE}
    assert {lane[name] for name in LONG} == {ui.LONG_LANE}
    assert {limit[name] for name in SHORT | LONG} == {1}  # one per lane: two model calls at most


# --- the temporary folder ----------------------------------------------------------------------
def _file(folder: Path, name: str, size: int) -> Path:
    """A file as gradio writes one: in a folder of its own. (Files are aged by ctime, which
    cannot be set, so the tests below move the sweep's age limits instead.)"""
    path = folder / name / "out.png"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x" * size)
    return path


def test_sweep_removes_the_oldest_files_above_the_cap_and_empty_folders(tmp_path):
    paths = [_file(tmp_path, f"f{i}", 1000) for i in range(5)]
    time.sleep(0.05)
    newest = _file(tmp_path, "newest", 1000)
    # cap 2.5 kB: of 6 kB, the four oldest go (oldest first), the newest two stay
    removed = housekeeping.sweep(tmp_path, max_age_s=3600, max_bytes=2500, min_age_s=0)
    assert removed == 4
    left = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert left == sorted([paths[-1], newest])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f4", "newest"]  # empty folders gone


def test_sweep_keeps_young_files_and_files_gradio_keeps(tmp_path):
    young = _file(tmp_path, "young", 10_000)
    kept = _file(tmp_path, "kept", 10_000)

    class Component:
        keep_in_cache = {str(kept)}

    class Blocks:
        blocks = {1: Component()}
        temp_file_sets = [{str(young), str(kept)}]

    assert housekeeping.sweep(tmp_path, max_age_s=3600, max_bytes=0, blocks=Blocks(), min_age_s=60) == 0
    assert housekeeping.sweep(tmp_path, max_age_s=3600, max_bytes=0, blocks=Blocks(), min_age_s=0) == 1
    assert kept.is_file() and not young.exists()


def test_sweep_leaves_a_folder_gradio_has_just_made_for_a_file(tmp_path):
    """gradio makes a file's folder, then writes into it: a sweep in between must not take the
    folder (it did, and under load a picture failed with gradio's generic error). A folder that
    has been empty for the minimum age goes."""
    import os

    about_to_write = tmp_path / "hash-of-a-new-picture"
    about_to_write.mkdir()
    long_empty = tmp_path / "emptied-long-ago"
    long_empty.mkdir()
    os.utime(long_empty, (time.time() - 120, time.time() - 120))
    housekeeping.sweep(tmp_path, max_age_s=3600, max_bytes=0, min_age_s=10)
    assert about_to_write.is_dir()
    assert not long_empty.exists()
    (about_to_write / "image.png").write_bytes(b"x")  # gradio's write, which failed before


def test_the_app_sets_gradio_delete_cache(tiny_dir):
    import app as gallery_app
    from gallery import settings

    blocks = gallery_app.build_app()
    assert blocks.delete_cache == (settings.TEMP_SWEEP_S, settings.TEMP_MAX_AGE_S)


def test_the_load_test_tells_a_plain_refusal_from_a_crash():
    from benchmarks.load_test import is_plain_refusal

    assert is_plain_refusal("Train a model first (press Train); then ask it.")
    for crash in ("", "None", "The upstream Gradio app has raised an exception but has not enabled verbose error "
                  "reporting. To enable, set show_error=True in launch().", "Traceback (most recent call last): ..."):
        assert not is_plain_refusal(crash), crash


# --- a short soak --------------------------------------------------------------------------------
@pytest.mark.slow  # 20 s of load on a server of its own, then a settle
def test_short_soak_has_no_failures_and_a_bounded_temporary_folder(tiny_dir):
    """Also the suite's load test: 6 users on every tab's main endpoint, not one request failed."""
    from benchmarks.load_test import report, run

    stats = run(users=6, duration_s=20, tiny_dir=str(tiny_dir), every_s=5, settle_s=4,
                server_settings=SOAK_SETTINGS)
    print(report(stats))
    assert stats["server_alive"]
    log = Path(stats["server_log"]).read_text(errors="replace")[-6000:] if stats["failures"] else ""
    assert stats["failures"] == [] and stats["refusals"] == {}, log  # good values: nothing to refuse
    assert stats["done"] >= len(stats["endpoints"])
    assert len(stats["timeline"]) >= 5  # a memory and disk line every 5 s, and one when idle
    start, idle = stats["timeline"][0], stats["timeline"][-1]
    assert idle["label"] == "idle"
    # Uploads and results come and go; once idle, what stays is what gradio keeps (there at
    # the start) plus at most the cap. (Without the sweep every upload stays: several MB.)
    assert idle["temp_mb"] <= start["temp_mb"] + SOAK_CAP_MB, stats["timeline"]
