"""Text to image: one picture through the app vs the raw diffusers call, on CPU.

SD-Turbo's real architecture (865M-parameter UNet, OpenCLIP-H text encoder, SD VAE) and the real
safety checker's architecture (CLIP ViT-L/14 vision tower), both with random weights: no weights
can be downloaded here, and the compute is the same. Small pictures (256×256), 1-2 steps and at
most 3 timed pairs per row keep the whole run to a few minutes on 2 idle cores.

    python -m benchmarks.bench_text_to_image
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

_ROOT = Path(tempfile.mkdtemp(prefix="bench-text-to-image-"))
os.environ["GALLERY_TINY_MODELS"] = str(_ROOT)  # before `gallery` is imported: its loaders read it
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.common import paired_medians, Row, launch_app, print_rows  # noqa: E402

SIDE = 256
PROMPT = "a watercolor painting of a lighthouse at dawn, soft light"
SEED = 1


def build_safety_checker_vit_l14(root: Path) -> Path:
    """CompVis/stable-diffusion-safety-checker's architecture: CLIP ViT-L/14 at 224 px, 768-d."""
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    folder = root / "safety"
    config = CLIPConfig(
        vision_config=dict(
            hidden_size=1024,
            intermediate_size=4096,
            num_attention_heads=16,
            num_hidden_layers=24,
            image_size=224,
            patch_size=14,
        ),
        projection_dim=768,
    )
    StableDiffusionSafetyChecker(config).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}).save_pretrained(folder)
    return folder


def run(repeats: int = 5) -> list[Row]:
    import torch

    from benchmarks.real_arch import build_sd_turbo

    # Each picture takes seconds on a CPU: at most 3 timed pairs per row keeps this to minutes.
    repeats = max(1, min(repeats, 3))
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    try:
        build_sd_turbo(_ROOT)
        build_safety_checker_vit_l14(_ROOT)

        from demos.text_to_image import pictures as PIC, steps as TS
        from gallery import catalog, models

        model = catalog.by_label("text2image", None)
        pipe = models.load_text2image(model)  # the app's own loader
        note = f"CPU, real SD-Turbo arch, random weights, {SIDE}x{SIDE}, {repeats} pairs"

        def raw(steps: int):
            return lambda: pipe(
                PROMPT,
                num_inference_steps=steps,
                guidance_scale=0.0,
                height=SIDE,
                width=SIDE,
                generator=torch.Generator("cpu").manual_seed(SEED),
            ).images[0]

        s, _ = PIC.clean_settings(PROMPT, None, SEED, False, 1, 0.0, SIDE, SIDE, on="cpu")

        def ours():
            with torch.inference_mode():
                return TS.generate(pipe, s).image

        raw_s, app_s, cpu_ratio = paired_medians(raw(1), ours, repeats)
        rows = [Row("text_to_image", "1 step: generate() vs pipe()", raw_s, app_s,
                    note=f"{note}; CPU-time ratio {cpu_ratio:.2f}")]

        # Through the launched gallery's API: the streaming handler, one preview decode, the safety
        # check (ViT-L/14 arch) on the preview and on the final picture, PNG encoding, HTTP. The
        # warm-up call also loads the safety checker.
        blocks, client = launch_app()
        try:
            def api():
                return client.predict(model.label, PROMPT, "", SEED, False, 2, 0.0, SIDE, SIDE,
                                      api_name="/text_to_image")

            raw_s, app_s, cpu_ratio = paired_medians(raw(2), api, repeats)
            rows.append(Row("text_to_image", "2 steps: app API vs pipe() (+preview, 2 checks)", raw_s, app_s,
                            note=f"{note}; CPU-time ratio {cpu_ratio:.2f}; the app also decodes 1 preview "
                            "and runs 2 safety checks (ViT-L/14 arch)"))
        finally:
            client.close()
            blocks.close()
        return rows
    finally:
        shutil.rmtree(_ROOT, ignore_errors=True)  # ~6 GB of random weights


if __name__ == "__main__":
    print_rows(run())
