"""Inpainting tab: each panel through the app vs the plain library call, on CPU.

Real architectures with random weights (no weights can be downloaded here; the compute is the
same): ViT-MAE base (224 px, 14×14 patches) and SD-Turbo (865M-parameter UNet, OpenCLIP-H text
encoder, SD VAE) used through diffusers' inpainting pipeline. Diffusion runs at 256×256 with one
step and at most 3 timed pairs per row, so the whole run takes a few minutes on 2 idle cores.

    python -m benchmarks.bench_inpainting
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

_ROOT = Path(tempfile.mkdtemp(prefix="bench-inpainting-"))
os.environ["GALLERY_TINY_MODELS"] = str(_ROOT)  # before `gallery` is imported: its loaders read it
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.common import paired_medians, Row, launch_app, print_rows  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "assets" / "images" / "chelsea-the-cat.jpg"
SIDE = 256  # diffusion size; the panels are 448 px and the MAE reads 224 px
STEPS = 1
SEED = 1


def run(repeats: int = 5) -> list[Row]:
    import cv2
    import numpy as np
    import torch
    from PIL import Image

    from benchmarks.real_arch import build_mae_base, build_sd_turbo

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    slow_repeats = max(1, min(repeats, 3))  # a diffusion call takes seconds on a CPU
    try:
        build_mae_base(_ROOT)
        build_sd_turbo(_ROOT)

        from demos.inpainting import masks as IM, methods as IMT
        from gallery import catalog, models
        from gallery.images import center_square, to_rgb

        mae_model, inpaint_model = catalog.by_label("mae", None), catalog.by_label("inpaint", None)
        mae, processor = models.load_mae(mae_model)  # the app's own loaders
        pipe = models.load_inpaint(inpaint_model)
        side, patch = IMT.mae_geometry(mae)
        grid = side // patch
        square = center_square(to_rgb(str(PHOTO)), IM.panel_side(side))  # 448×448
        patch_mask = IM.random_patch_mask(grid, 0.75, seed=0)  # 147 of 196 patches
        hidden = IM.patch_to_pixels(patch_mask, square.width)
        rows: list[Row] = []

        # 1. The non-learned baseline: OpenCV's Telea fill.
        def raw_telea():
            pixels = np.array(square)
            pixels[hidden] = 128
            return cv2.inpaint(pixels, hidden.astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA)

        raw_s, app_s, cpu_ratio = paired_medians(raw_telea, lambda: IMT.telea_inpaint(square, hidden), repeats)
        rows.append(Row("inpainting", "Telea fill 448 px, 75% patches", raw_s, app_s,
                        note=f"CPU, OpenCV; {repeats} pairs; CPU-time ratio {cpu_ratio:.2f}"))

        # 2. The masked autoencoder: the model's own forward with our noise, unpatchify, de-normalise.
        mean = np.asarray(processor.image_mean)
        std = np.asarray(processor.image_std)
        flat = torch.from_numpy(patch_mask.reshape(1, -1).astype(np.float32))
        noise = flat + 0.01 * torch.rand(1, flat.shape[1], generator=torch.Generator().manual_seed(0))
        small = square.resize((side, side), Image.Resampling.BICUBIC)

        def raw_mae():
            pixel_values = processor(images=small, return_tensors="pt").pixel_values
            saved = mae.config.mask_ratio
            mae.config.mask_ratio = (flat.sum().item() - 0.5) / flat.shape[1]
            with torch.inference_mode():
                out = mae(pixel_values=pixel_values, noise=noise)
            mae.config.mask_ratio = saved
            recon = mae.unpatchify(out.logits)[0].permute(1, 2, 0).numpy()
            return recon * std + mean

        raw_s, app_s, cpu_ratio = paired_medians(
            raw_mae, lambda: IMT.mae_reconstruct(mae, processor, square, patch_mask), repeats
        )
        rows.append(Row("inpainting", "MAE base 224 px, 147/196 patches hidden", raw_s, app_s,
                        note=f"CPU, real ViT-MAE-base arch, random weights; {repeats} pairs; "
                        f"CPU-time ratio {cpu_ratio:.2f}"))

        # 3. Diffusion inpainting through the pipeline.
        image = square.resize((SIDE, SIDE), Image.Resampling.BICUBIC)
        mask = Image.fromarray(hidden.astype(np.uint8) * 255, "L").resize((SIDE, SIDE), Image.Resampling.NEAREST)

        def raw_diffusion():
            with torch.inference_mode():
                return pipe(prompt="", image=image, mask_image=mask, height=SIDE, width=SIDE,
                            num_inference_steps=STEPS, strength=1.0, guidance_scale=0.0,
                            generator=torch.Generator("cpu").manual_seed(SEED)).images[0]

        def ours_diffusion():
            return IMT.diffusion_inpaint(pipe, square, hidden, prompt="", seed=SEED, steps=STEPS, side=SIDE)

        raw_s, app_s, cpu_ratio = paired_medians(raw_diffusion, ours_diffusion, slow_repeats)
        sd_note = f"CPU, real SD-Turbo arch, random weights, {SIDE}x{SIDE}, {STEPS} step"
        rows.append(Row("inpainting", f"diffusion inpaint {SIDE} px, {STEPS} step", raw_s, app_s,
                        note=f"{sd_note}; {slow_repeats} pairs; CPU-time ratio {cpu_ratio:.2f}"))

        # 4. One whole request through the launched gallery's API (upload decoding, cropping, the
        # six panels as PNG, HTTP) vs the three raw calls one after the other.
        blocks, client = launch_app()
        try:
            from gradio_client import handle_file

            photo = {"background": handle_file(str(PHOTO)), "layers": [], "composite": None}

            def api():
                return client.predict(photo, IM.RANDOM, 0.75, 0, mae_model.label, inpaint_model.label, "",
                                      SEED, STEPS, SIDE, api_name="/inpaint")

            def raw_all():
                raw_telea(), raw_mae(), raw_diffusion()

            raw_s, app_s, cpu_ratio = paired_medians(raw_all, api, slow_repeats)
            rows.append(Row("inpainting", "all panels: /inpaint API vs 3 raw calls", raw_s, app_s,
                            note=f"{sd_note}; {slow_repeats} pairs; CPU-time ratio {cpu_ratio:.2f}"))
        finally:
            client.close()
            blocks.close()
        return rows
    finally:
        shutil.rmtree(_ROOT, ignore_errors=True)


if __name__ == "__main__":
    print_rows(run())
