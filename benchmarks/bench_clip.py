"""CLIP tab benchmark: one picture + 10 labels, raw open_clip vs the app (pure function and API),
with the text-embedding cache cold and warm; and 8 concurrent API clients, batched vs unbatched.

The model is open_clip ViT-B-32 (the default checkpoint's architecture) with random weights: the
same compute as the LAION-2B weights, which cannot be downloaded here.

    python -m benchmarks.bench_clip
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# The gallery reads GALLERY_TINY_MODELS once, at import: set it first (or share the folder that a
# benchmark run before this one set), and put the ViT-B-32 checkpoint in its clip/ subfolder.
_OWN_ROOT = "GALLERY_TINY_MODELS" not in os.environ
ROOT = Path(os.environ.setdefault("GALLERY_TINY_MODELS", tempfile.mkdtemp(prefix="bench-clip-")))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.common import paired, Row, free_port, launch_app, median_time, print_rows  # noqa: E402

DEMO = "clip"
IMAGE = Path(__file__).resolve().parent.parent / "assets" / "images" / "chelsea-the-cat.jpg"
LABELS = ["cat", "dog", "fox", "tiger", "lion", "rabbit", "owl", "stuffed toy", "car", "house"]
TEMPLATE = "a photo of a {}."
CLIENTS = 8
REQUESTS_PER_CLIENT = 3
ROUNDS = 3  # throughput rounds per wiring, taken in turns
NOTE = "ViT-B-32 arch, random weights, CPU"


def run(repeats: int = 5) -> list[Row]:
    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))
    from benchmarks.real_arch import build_clip_b32

    from gallery import models

    build_clip_b32(ROOT)
    models.unload_all()  # nothing loaded earlier from that folder may stand in for ViT-B-32
    try:
        return _run(repeats)
    finally:
        if _OWN_ROOT:
            shutil.rmtree(ROOT, ignore_errors=True)
        else:
            shutil.rmtree(ROOT / "clip", ignore_errors=True)


def _run(repeats: int) -> list[Row]:
    import open_clip
    import torch
    from gradio_client import handle_file
    from PIL import Image

    from demos import clip as cc

    from demos.clip import zero_shot as ZS
    from demos.clip import model as CM
    from gallery.device import device

    # Raw open_clip, loaded on its own from the same folder, on the device and precision the
    # gallery's loader uses; then the README's steps.
    spec = "local-dir:" + str(ROOT / "clip")
    precision = "fp16" if device() == "cuda" else "fp32"
    model, _, preprocess = open_clip.create_model_and_transforms(spec, device=device(), precision=precision)
    model.eval()
    tokenizer = open_clip.get_tokenizer(spec)
    dtype = next(model.parameters()).dtype
    picture = Image.open(IMAGE).convert("RGB")
    sentences = [TEMPLATE.format(label) for label in LABELS]

    def encode_picture():
        return model.encode_image(preprocess(picture).unsqueeze(0).to(device(), dtype), normalize=True)

    def raw_uncached():
        with torch.inference_mode():
            image = encode_picture()
            text = model.encode_text(tokenizer(sentences).to(device()), normalize=True)
            return (model.logit_scale.exp() * image @ text.T).softmax(dim=-1).cpu()

    with torch.inference_mode():
        text_features = model.encode_text(tokenizer(sentences).to(device()), normalize=True)

    def raw_cached():  # what is left when the text embeddings are already known
        with torch.inference_mode():
            return (model.logit_scale.exp() * encode_picture() @ text_features.T).softmax(dim=-1).cpu()

    labels_text = ", ".join(LABELS)

    def app_uncached():
        CM.TEXT_CACHE.clear()
        return ZS.zero_shot(None, str(IMAGE), labels_text, TEMPLATE)

    def app_cached():
        return ZS.zero_shot(None, str(IMAGE), labels_text, TEMPLATE)

    # The CPU may be shared: say how busy it was (1-minute load average; 2 cores here).
    where = f"ViT-B-32 arch, random weights, {device()}, load {os.getloadavg()[0]:.1f}"
    raw_u, app_u = paired(raw_uncached, app_uncached, repeats)
    raw_c, app_c = paired(raw_cached, app_cached, repeats)
    cold, warm = paired(app_uncached, app_cached, repeats)
    rows = [
        Row(DEMO, "1 img+10 labels, text not cached (pure fn)", raw_u, app_u, note=f"vs README; {where}"),
        Row(DEMO, "1 img+10 labels, text cached (pure fn)", raw_c, app_c, note="vs raw image + matmul"),
        Row(DEMO, "text cache: app not cached → cached", cold, warm, note="ratio = cost left with the cache"),
    ]

    blocks, client = launch_app()
    floor_blocks, floor_client = _launch_floor()
    try:
        label = cc.catalog.by_label("clip", None).label
        upload = handle_file(str(IMAGE))

        def api():
            return client.predict(label, upload, labels_text, TEMPLATE, api_name="/clip_zero_shot")

        def api_uncached():
            CM.TEXT_CACHE.clear()  # the app runs in this process
            return api()

        raw_u, api_u = paired(raw_uncached, api_uncached, repeats)
        raw_c, api_c = paired(raw_cached, api, repeats)
        floor = median_time(lambda: floor_client.predict(upload, api_name="/echo"), repeats)
        rows.append(Row(DEMO, "API zero-shot, text not cached", raw_u, api_u, note="gradio_client, whole gallery"))
        rows.append(
            Row(DEMO, "API zero-shot, text cached", raw_c, api_c,
                note=f"vs raw image + matmul; gradio's own image round trip: {floor:.3f} s")
        )
    finally:
        client.close()
        blocks.close()
        floor_client.close()
        floor_blocks.close()

    # Throughput: the gallery (batched zero-shot) and the tab wired unbatched, measured in turns.
    batched_blocks, batched_url = _launch_tab(batch=True)
    unbatched_blocks, unbatched_url = _launch_tab(batch=False)
    try:
        per_request = {True: [], False: []}
        sizes: set[int] = set()
        for _ in range(ROUNDS):
            for batch, url in ((False, unbatched_url), (True, batched_url)):
                seconds, seen = _throughput(url, label, labels_text)
                per_request[batch].append(seconds)
                sizes.update(seen if batch else [])
    finally:
        batched_blocks.close()
        unbatched_blocks.close()
    rows.append(
        Row(DEMO, f"{CLIENTS} clients, s/request: unbatched vs batched", statistics.median(per_request[False]),
            statistics.median(per_request[True]),
            note=(f"{CLIENTS}x{REQUESTS_PER_CLIENT} requests, {ROUNDS} rounds, batch sizes {sorted(sizes)}; "
                  "<1 = batching helps"))
    )
    return rows


def _throughput(url: str, label: str, labels_text: str) -> tuple[float, list[int]]:
    """Seconds per request (wall time / requests) with CLIENTS visitors, each with its own client,
    sending their requests one after another, all at the same time; and the batch sizes seen."""
    from gradio_client import Client, handle_file

    from demos.clip import zero_shot as ZS

    upload = handle_file(str(IMAGE))
    clients = [Client(url, verbose=False, download_files=False) for _ in range(CLIENTS)]
    clients[0].predict(label, upload, labels_text, TEMPLATE, api_name="/clip_zero_shot")  # text now cached

    def visitor(client):
        for _ in range(REQUESTS_PER_CLIENT):
            client.predict(label, upload, labels_text, TEMPLATE, api_name="/clip_zero_shot")

    sizes, real = [], ZS.zero_shot_many

    def spy(requests):  # the batched handler calls this with one batch
        sizes.append(len(requests))
        return real(requests)

    ZS.zero_shot_many = spy
    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(visitor, clients))
        return (time.perf_counter() - started) / (CLIENTS * REQUESTS_PER_CLIENT), sorted(set(sizes))
    finally:
        ZS.zero_shot_many = real
        for client in clients:
            client.close()


def _launch_tab(batch: bool):
    """The CLIP tab alone, with the batched or the unbatched zero-shot event (same queue settings)."""
    import gradio as gr

    from gallery import server
    from demos import clip as cc

    with gr.Blocks() as blocks:
        cc.create_demo(batch=batch)
    _, url, _ = server.launch(blocks, server_port=free_port(), prevent_thread_lock=True, quiet=True)
    return blocks, url


def _launch_floor():
    """A one-event app that takes a picture and returns a label, no model: what gradio itself costs."""
    import gradio as gr
    from gradio_client import Client

    from gallery import server

    with gr.Blocks() as blocks:
        picture, label = gr.Image(type="filepath"), gr.Label()
        picture.change(lambda path: {"picture": 1.0}, picture, label, api_name="echo")
    _, url, _ = server.launch(blocks, server_port=free_port(), prevent_thread_lock=True, quiet=True)
    return blocks, Client(url, verbose=False, download_files=False)


if __name__ == "__main__":
    print_rows(run())
