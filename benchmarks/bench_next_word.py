"""Next-word tab benchmark with the bundled SmolLM2-135M-Instruct (real weights) on this machine:
one next-token distribution for a 20-token prompt, raw transformers vs our pure function vs the
launched app's API; N sampled tokens the same three ways; and 8 concurrent API clients, batched
vs unbatched.

    python -m benchmarks.bench_next_word
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

# The gallery reads GALLERY_TINY_MODELS once, at import. This benchmark needs no tiny checkpoint
# (the bundled LM is offered in that mode too), only the setting, so that nothing tries the Hub.
_OWN_ROOT = "GALLERY_TINY_MODELS" not in os.environ
ROOT = os.environ.setdefault("GALLERY_TINY_MODELS", tempfile.mkdtemp(prefix="bench-next-word-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.common import paired, Row, free_port, launch_app, print_rows  # noqa: E402

DEMO = "next_word"
# 20 tokens for SmolLM2's tokenizer (checked below).
PROMPT = "The quick brown fox jumps over the lazy dog while the old farmer watches it from the big red barn"
PROMPT_TOKENS = 20
NEW_TOKENS = 10
SEED = 7
CLIENTS = 8
REQUESTS_PER_CLIENT = 3


def run(repeats: int = 5) -> list[Row]:
    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))
    try:
        return _run(repeats)
    finally:
        if _OWN_ROOT:
            shutil.rmtree(ROOT, ignore_errors=True)


def _run(repeats: int) -> list[Row]:
    import httpx
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from demos.next_word import distribution as NWD, extend as NWE
    from gallery import catalog, models
    from gallery.device import device, dtype

    # Raw transformers, loaded on its own from the same converted folder, as the loader does.
    folder = models.embedded_lm_dir()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    lm = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype(), attn_implementation="sdpa").to(device()).eval()
    n_tokens = len(tokenizer(PROMPT).input_ids)
    assert n_tokens == PROMPT_TOKENS, n_tokens
    label = catalog.EMBEDDED_LM.label
    app_lm, app_tokenizer, _ = NWD.load(label)

    def raw_distribution():  # the model card's way: tokenize, forward, softmax, top 12
        ids = tokenizer(PROMPT, return_tensors="pt").to(device())
        with torch.inference_mode():
            probs = lm(**ids).logits[0, -1].float().softmax(-1)
        return probs.topk(NWD.TOP_BARS)

    def raw_distribution_lean():  # the same with only the last position through the LM head
        ids = tokenizer(PROMPT, return_tensors="pt").to(device())
        with torch.inference_mode():
            probs = lm(**ids, logits_to_keep=1, use_cache=False).logits[0, -1].float().softmax(-1)
        return probs.topk(NWD.TOP_BARS)

    def pure_distribution():
        return NWD.next_token_distribution(app_lm, app_tokenizer, PROMPT)

    s = NWD.check_settings(0.8, 50, 0.95, NWD.vocab_size(app_lm))

    def raw_generate():
        ids = tokenizer(PROMPT, return_tensors="pt").to(device())
        torch.manual_seed(SEED)
        with torch.inference_mode():
            return lm.generate(**ids, do_sample=True, temperature=0.8, top_k=50, top_p=0.95,
                               max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                               pad_token_id=tokenizer.pad_token_id)

    def pure_generate():
        return NWE.generate_tokens(app_lm, app_tokenizer, PROMPT, s, NEW_TOKENS, SEED)

    where = f"bundled SmolLM2-135M (real weights), {device()}"
    raw_d, pure_d = paired(raw_distribution, pure_distribution, repeats)
    lean_d, pure_d2 = paired(raw_distribution_lean, pure_distribution, repeats)
    raw_g, pure_g = paired(raw_generate, pure_generate, max(3, repeats // 2))
    rows = [
        Row(DEMO, f"next-token dist, {PROMPT_TOKENS}-tok prompt (pure fn)", raw_d, pure_d,
            note=f"raw = tokenizer + forward + softmax/top-k; {where}"),
        Row(DEMO, "same, raw with logits_to_keep=1, no cache", lean_d, pure_d2, note="the leanest raw call"),
        Row(DEMO, f"generate {NEW_TOKENS} tokens, sampled (pure fn)", raw_g, pure_g,
            note="app also keeps every step's distribution"),
    ]

    blocks, client = launch_app()
    try:
        def api_distribution():
            return client.predict(PROMPT, label, 1.0, 0, 1.0, api_name="/next_word_bars")

        def api_generate():  # also refreshes the bars for the longer text (one more forward)
            return client.predict(PROMPT, label, 0.8, 50, 0.95, NEW_TOKENS, SEED, False, api_name="/next_word_generate")

        http = httpx.Client(base_url=client.src.rstrip("/"), timeout=120)

        def http_distribution():  # the same endpoint without gradio_client (a browser's path)
            event = http.post("/gradio_api/call/next_word_bars", json={"data": [PROMPT, label, 1.0, 0, 1.0]})
            return http.get(f"/gradio_api/call/next_word_bars/{event.json()['event_id']}").text

        raw_d, api_d = paired(raw_distribution, api_distribution, repeats)
        lean_d, api_d2 = paired(raw_distribution_lean, api_distribution, repeats)
        lean_h, http_d = paired(raw_distribution_lean, http_distribution, repeats)
        raw_g, api_g = paired(raw_generate, api_generate, max(3, repeats // 2))
        http.close()
        rows += [
            Row(DEMO, f"next-token dist, {PROMPT_TOKENS}-tok prompt (API)", raw_d, api_d,
                note="gradio_client, whole gallery, batched event"),
            Row(DEMO, "same API vs raw with logits_to_keep=1", lean_d, api_d2, note="vs the leanest raw call"),
            Row(DEMO, "same, plain HTTP + SSE vs raw lean", lean_h, http_d,
                note="no gradio_client (it polls for messages every 50 ms)"),
            Row(DEMO, f"generate {NEW_TOKENS} tokens (API)", raw_g, api_g, note="+ the bars for the new text"),
        ]
        batched, sizes = _throughput(client.src, label)
    finally:
        client.close()
        blocks.close()

    unbatched_blocks, url = _launch_unbatched()
    try:
        unbatched, _ = _throughput(url, label)
    finally:
        unbatched_blocks.close()
    rows.append(
        Row(DEMO, f"{CLIENTS} clients, s/request: unbatched vs batched", unbatched, batched,
            note=f"{CLIENTS * REQUESTS_PER_CLIENT} requests, batch sizes seen {sizes}; ratio <1 = batching helps")
    )
    return rows


def _prompts() -> list[str]:
    """Different ~20-token texts, one per visitor (the same text would make batching look better)."""
    words = PROMPT.split()
    return [" ".join(words[i:] + words[:i]) for i in range(CLIENTS)]


def _throughput(url: str, label: str) -> tuple[float, list[int]]:
    """Seconds per request (wall time / requests) with CLIENTS visitors, each with its own client,
    sending their requests one after another, all at the same time; and the batch sizes seen."""
    from gradio_client import Client

    from demos.next_word import distribution as NWD

    clients = [Client(url, verbose=False, download_files=False) for _ in range(CLIENTS)]
    clients[0].predict(PROMPT, label, 1.0, 0, 1.0, api_name="/next_word_bars")  # warm

    def visitor(pair):
        client, text = pair
        for _ in range(REQUESTS_PER_CLIENT):
            client.predict(text, label, 1.0, 0, 1.0, api_name="/next_word_bars")

    sizes, real = [], NWD.last_logits

    def spy(lm, id_lists, pad_id):  # every forward pass of the tab goes through here
        sizes.append(len(id_lists))
        return real(lm, id_lists, pad_id)

    NWD.last_logits = spy
    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(visitor, zip(clients, _prompts())))
        return (time.perf_counter() - started) / (CLIENTS * REQUESTS_PER_CLIENT), sorted(set(sizes))
    finally:
        NWD.last_logits = real
        for client in clients:
            client.close()


def _launch_unbatched():
    """The next-word tab alone, wired with the unbatched handler (same queue settings)."""
    import gradio as gr

    from gallery import server
    from demos import next_word

    with gr.Blocks() as blocks:
        next_word.create_demo(batch=False)
    _, url, _ = server.launch(blocks, server_port=free_port(), prevent_thread_lock=True, quiet=True)
    return blocks, url


if __name__ == "__main__":
    print_rows(run())
