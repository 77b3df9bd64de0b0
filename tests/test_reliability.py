"""Many users, failing models, and what the server will and will not open."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from importlib.metadata import version
from pathlib import Path

import pytest
from gradio_client.exceptions import AppError

from gallery import models
from tests.support.bad_inputs import good_args

ROOT = Path(__file__).resolve().parent.parent


# --- load ----------------------------------------------------------------------------------------
# The short load test (6 users on every tab's main endpoint, a server of their own: no failed
# request) is the short soak in tests/test_day_on_a_laptop.py, which asserts that and more.


# --- faults --------------------------------------------------------------------------------------
def _endpoints(client):
    return client.view_api(print_info=False, return_format="dict")["named_endpoints"]


def test_a_model_that_fails_to_load_is_explained_and_other_tabs_keep_working(client, tiny_dir):
    endpoints = _endpoints(client)
    models.unload_all()
    folder, backup = tiny_dir / "mae", tiny_dir / "mae.moved"
    shutil.move(folder, backup)
    try:
        with pytest.raises(AppError, match="mae"):  # the message names what is missing
            client.predict(*good_args(endpoints["/inpaint"]), api_name="/inpaint")
        folder.mkdir()
        (folder / "config.json").write_text("{ corrupt")
        with pytest.raises(AppError, match="could not be loaded"):
            client.predict(*good_args(endpoints["/inpaint"]), api_name="/inpaint")
        # Another tab is unaffected.
        client.predict(*good_args(endpoints["/clip_zero_shot"]), api_name="/clip_zero_shot")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.move(backup, folder)
    client.predict(*good_args(endpoints["/inpaint"]), api_name="/inpaint")  # a retry succeeds


def test_out_of_memory_is_caught_memory_freed_and_the_server_lives_on(client, monkeypatch):
    import torch

    from gallery import device

    endpoints = _endpoints(client)
    freed = []
    real_free = device.free_memory
    monkeypatch.setattr(device, "free_memory", lambda: (freed.append(1), real_free()))
    original = models.load_clip
    models.unload_all()

    def exhausted(model):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(models, "load_clip", exhausted)
    with pytest.raises(AppError, match="ran out of memory"):
        client.predict(*good_args(endpoints["/clip_zero_shot"]), api_name="/clip_zero_shot")
    assert freed, "free_memory was not called"
    monkeypatch.setattr(models, "load_clip", original)
    client.predict(*good_args(endpoints["/clip_zero_shot"]), api_name="/clip_zero_shot")


# --- security ------------------------------------------------------------------------------------
def test_gradio_is_recent_enough():
    major, minor = (int(x) for x in version("gradio").split(".")[:2])
    assert (major, minor) >= (6, 16)


def test_the_server_opens_no_file_outside_the_assets(app_url):
    def status(path: str) -> int:
        try:
            with urllib.request.urlopen(app_url + path, timeout=10) as reply:
                return reply.status
        except urllib.error.HTTPError as error:
            return error.code

    asset = ROOT / "assets" / "images" / "coffee.jpg"
    assert status(f"/gradio_api/file={asset}") == 200
    for secret in ["/etc/passwd", str(ROOT / "app.py"), str(ROOT / "gallery" / "settings.py")]:
        assert status(f"/gradio_api/file={secret}") in (403, 404), secret


@pytest.mark.slow  # every text parameter of every endpoint, each given model ids and paths
def test_no_endpoint_takes_a_model_id_or_path(client):
    """Model choices are dropdowns of catalogue labels: a typed id, path or URL is refused."""
    endpoints = _endpoints(client)
    checked = 0
    for name, spec in endpoints.items():
        for index, param in enumerate(spec["parameters"]):
            if param["component"] != "Dropdown" or "model" not in param["parameter_name"]:
                continue
            for value in ["facebook/opt-125m", "/etc/passwd", "http://127.0.0.1:9/w.bin"]:
                args = good_args(spec)
                args[index] = value
                with pytest.raises(AppError):
                    client.predict(*args, api_name=name)
            checked += 1
    assert checked >= 5  # every tab has a model choice


def test_the_app_binds_to_loopback_unless_told_otherwise():
    env = {k: v for k, v in os.environ.items() if k != "GALLERY_HOST"}
    code = "from gallery import settings; print(settings.SERVER_NAME)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "127.0.0.1"
