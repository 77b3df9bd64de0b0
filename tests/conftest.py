"""Shared test set-up: offline, tiny checkpoints built once per session (only if a test of the
run needs them), the app launched once.

The environment is set before anything imports gradio or huggingface_hub (they read it at import).
Helpers the tests import live in tests/support/.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
_TINY_DIR = Path(tempfile.mkdtemp(prefix="gallery-tiny-models-"))
os.environ["GALLERY_TINY_MODELS"] = str(_TINY_DIR)
os.environ.setdefault("GRADIO_TEMP_DIR", tempfile.mkdtemp(prefix="gallery-gradio-"))
os.environ["GRADIO_EXAMPLES_CACHE"] = tempfile.mkdtemp(prefix="gallery-examples-")
os.environ["GALLERY_PRETRAIN_CACHE"] = tempfile.mkdtemp(prefix="gallery-pretrain-")  # every session trains afresh
from gallery import settings as _app_settings  # noqa: E402,F401  (the app's OpenMP threads, set before torch loads)

import pytest  # noqa: E402

from tests.support.pages import RECORD_ERROR_TOASTS, VIEWPORT, take_error_toasts  # noqa: E402


def pytest_configure(config):
    import torch

    # Two test processes (pytest-xdist, scripts/test.sh) on 2 cores: one torch thread each.
    torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)


def pytest_unconfigure(config):
    shutil.rmtree(_TINY_DIR, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def tiny_dir(request) -> Path:
    """The folder of tiny random-weight checkpoints that serve every role in tests
    (GALLERY_TINY_MODELS), built once per session (~8 s), before the first test, unless every
    test of this run is marked `no_models`: `pytest tests/test_inputs.py` builds none."""
    if any(item.get_closest_marker("no_models") is None for item in request.session.items):
        from tests.support.tiny_models import build_all

        build_all(_TINY_DIR)
    return _TINY_DIR


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_url(tiny_dir):
    """The whole gallery, built as `app.py` builds it, served on 127.0.0.1 with tiny models."""
    import app as gallery_app
    from gallery import server

    blocks = gallery_app.build_app()
    _, url, _ = server.launch(
        blocks, server_port=_free_port(), prevent_thread_lock=True, quiet=True
    )
    yield url.rstrip("/")
    blocks.close()


@pytest.fixture(scope="session")
def client(app_url):
    from gradio_client import Client

    c = Client(app_url, verbose=False, download_files=False)
    yield c
    c.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-dev-shm-usage",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser, app_url):
    """A fresh page on the gallery; the test fails on any page error or error toast.

    A test that provokes an error on purpose reads and clears them with `take_error_toasts(page)`.
    """
    context = browser.new_context(viewport=VIEWPORT)
    pg = context.new_page()
    pg.add_init_script(RECORD_ERROR_TOASTS)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    pg.goto(app_url)
    pg.wait_for_selector("button[role=tab]", timeout=30_000)
    yield pg
    errors += [f"error toast: {text}" for text in take_error_toasts(pg)]
    context.close()
    assert not errors, errors
