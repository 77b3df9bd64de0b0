"""Run the gallery's text and image calls under the real `spaces` package in ZeroGPU mode, against a
local stand-in for the ZeroGPU device API that refuses every GPU call the way the quota does.

Run by tests/test_zerogpu.py in a subprocess (ZeroGPU mode patches torch for the whole process):
    SPACES_ZERO_GPU=true GALLERY_TINY_MODELS=DIR python -m tests.support.zerogpu_probe
Prints one JSON object: what was asked of the device API in each phase, and what the visitor got.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

SCHEDULES: list[dict] = []  # every GPU call ZeroGPU was asked for, with its query parameters


class RefusingDeviceApi(BaseHTTPRequestHandler):
    """What the ZeroGPU device API answers a visitor whose quota is used up: HTTP 429 with the
    quota left and the wait (spaces/zero/api.py reads these as `QuotaInfos`)."""

    def do_POST(self):  # noqa: N802 (http.server's naming)
        url = urlparse(self.path)
        if url.path == "/schedule":
            SCHEDULES.append({k: v[0] for k, v in parse_qs(url.query).items()})
            body, status = json.dumps({"left": 3, "wait": 192}).encode(), 429
        else:
            body, status = b"{}", 200
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("x-approve-result", "quota-exceeded")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), RefusingDeviceApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    os.environ["SPACES_ZERO_DEVICE_API_URL"] = f"http://127.0.0.1:{server.server_port}"
    os.environ["SPACES_ZERO_GPU"] = "true"

    import app  # noqa: F401  (imports `spaces` first, as on a Space)
    from gallery import catalog, device, models, settings
    import gradio as gr

    out: dict = {"zero_gpu": settings.ZERO_GPU}
    from demos.clip import model as CM, zero_shot as ZS
    from demos.next_word import extend as NWE, reveal as NWR
    from demos.prompting import compare as PC, prompts as PP

    def schedules_during(run) -> tuple[list[dict], object, list[str]]:
        before = len(SCHEDULES)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = run()
            except gr.Error as error:
                result = {"error": str(error.message), "title": error.title}
        said = [str(w.message) for w in caught if "GPU" in str(w.message)]
        return SCHEDULES[before:], result, said

    llama, gpt2 = (m.label for m in catalog.all_models("next_word")[:2])
    chat = catalog.all_models("instruct")[0].label
    lm, _ = models.load_causal_lm(catalog.by_label("next_word", llama))
    out["tiny_llama_weights_on"] = str(next(lm.parameters()).device)
    out["placement"] = {m.label: device.placement(m) for m in catalog.all_models("next_word")}

    # 1. The text tabs on their small models: no GPU call at all.
    calls, result, _ = schedules_during(lambda: NWR.on_reveal("The cat sat on the", llama, 1.0, 0, 1.0))
    out["next_token"] = {"schedules": len(calls), "note": result[4] if isinstance(result, tuple) else result}
    calls, result, _ = schedules_during(lambda: NWR.on_guess("The cat sat on the", llama, "mat", 1.0, 0, 1.0))
    out["your_word"] = {"schedules": len(calls), "text": result[0] if isinstance(result, tuple) else result}
    calls, result, _ = schedules_during(
        lambda: NWE.on_generate("The cat", llama, 1.0, 0, 1.0, 4, 1, False, []))
    out["generate"] = {"schedules": len(calls), "text": result[2] if isinstance(result, tuple) else result}
    calls, result, _ = schedules_during(lambda: list(PC.on_compare(
        chat, "What is 2 + 3?", "5", [PP.ZERO_SHOT], None, 1, 3, 0.0, 0.7, 1, 16, None)))
    out["prompting_compare"] = {"schedules": len(calls), "updates": len(result) if isinstance(result, list) else result}
    calls, result, _ = schedules_during(lambda: list(PC.on_score(
        chat, None, 2, [PP.ZERO_SHOT], None, 1, 3, 0.0, 0.7, 1, 16, progress=lambda *a, **k: None)))
    out["prompting_score"] = {"schedules": len(calls), "last": result[-1][0] if isinstance(result, list) else result}

    # 2. A model that needs the GPU (the tiny GPT-2 stands in for SmolLM2-1.7B here): ZeroGPU
    #    refuses, the visitor gets the answer from the CPU model and one sentence saying why.
    small = catalog.runs_on_cpu
    catalog.runs_on_cpu = lambda m: m.label != gpt2 and small(m)
    calls, result, said = schedules_during(lambda: NWR.on_reveal("The cat sat on the", gpt2, 1.0, 0, 1.0))
    out["refused_next_token"] = {
        "schedules": calls, "warnings": said,
        "note": result[4] if isinstance(result, tuple) else result,
    }

    # 3. An image tab: refused, and the error is the same plain sentence.
    from PIL import Image

    picture = Image.new("RGB", (64, 64), (200, 40, 40))
    calls, result, _ = schedules_during(lambda: ZS.on_classify(None, picture, "cat, dog", CM.DEFAULT_TEMPLATE))
    out["refused_clip"] = {"schedules": calls, "result": result}
    print("PROBE-RESULT " + json.dumps(out, default=str))
    server.shutdown()


if __name__ == "__main__":
    main()
