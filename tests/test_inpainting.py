"""The inpainting tab: masks, and each guesser compared with the library's own computation."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from demos import inpainting as inp
from demos.inpainting import fill as IF, masks as IM, methods as IMT
from gallery import catalog, models
from gallery.errors import InputError

ROOT_IMAGES = inp.IMAGES
CAT = str(ROOT_IMAGES / "chelsea-the-cat.jpg")  # 451×300


@pytest.fixture(scope="module")
def mae_pair():
    return models.load_mae(catalog.by_label("mae", None))


@pytest.fixture(scope="module")
def inpaint_pipe():
    return models.load_inpaint(catalog.by_label("inpaint", None))


def _photo(side: int = 64) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8))


# --- masks ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("grid", [4, 14])
def test_preset_masks_cover_exactly_the_stated_region(grid):
    side = grid * 32
    y, x = np.mgrid[0:side, 0:side]
    box = {4: (32, 96), 14: (96, 352)}[grid]  # a centred square of about half the side, in patches
    expected = {
        IM.BOTTOM: y >= side / 2,
        IM.TOP: y < side / 2,
        IM.CENTRE: (y >= box[0]) & (y < box[1]) & (x >= box[0]) & (x < box[1]),
    }
    for kind, region in expected.items():
        assert np.array_equal(IM.patch_to_pixels(IM.preset_mask(kind, grid), side), region), kind
        assert np.array_equal(IM.preset_mask(kind, grid), IM.to_patch_grid(region, grid)), kind
    centre = expected[IM.CENTRE]
    assert np.array_equal(centre, centre[::-1, ::-1])  # really centred


def test_the_half_patch_rule():
    mask = np.zeros((8, 8), dtype=np.float32)
    mask[:2, :4] = 1.0  # top-left 4×4 patch: 8 of 16 pixels -> hidden
    mask[4:5, 4:8] = 1.0  # bottom-right 4×4 patch: 4 of 16 -> visible
    mask[0:4, 4:7] = 0.7  # top-right: 12 pixels at 0.7 coverage = 0.525 of the patch -> hidden
    assert IM.to_patch_grid(mask, 2).tolist() == [[True, True], [False, False]]
    assert IM.patch_to_pixels(np.array([[True, False], [False, False]]), 8)[:4, :4].all()


@pytest.mark.parametrize("ratio", [0.05, 0.3, 0.5, 0.75, 0.95])
def test_random_patches_match_the_ratio_within_one_patch_and_follow_the_seed(ratio):
    grid = 14
    mask = IM.random_patch_mask(grid, ratio, seed=7)
    assert abs(mask.sum() / grid**2 - ratio) <= 1 / grid**2
    assert np.array_equal(mask, IM.random_patch_mask(grid, ratio, seed=7))
    assert not np.array_equal(mask, IM.random_patch_mask(grid, ratio, seed=8))


def test_drawn_strokes_are_cropped_like_the_photo():
    # A 200×100 photo is centre-cropped to its middle 100×100 (x from 50 to 150). A stroke over
    # x in [100, 150) must become the right half of the square, and the rest must stay visible.
    layer = np.zeros((100, 200, 4), dtype=np.uint8)
    layer[:, 100:150, 3] = 255
    photo = Image.new("RGB", (200, 100), (10, 200, 30))
    prepared = IM.prepare(photo, [layer], IM.DRAWN, 0.75, 0, (32, 8))
    assert prepared.patch_mask.tolist() == [[False, False, True, True]] * 4
    assert any("centre-cropped" in note for note in prepared.notes)
    assert np.array_equal(prepared.hidden, IM.patch_to_pixels(prepared.patch_mask, 448))


@pytest.mark.parametrize("layers", [[], [np.zeros((50, 50, 4), dtype=np.uint8)], [None]])
def test_an_empty_drawing_asks_for_strokes(layers):
    with pytest.raises(InputError, match="Nothing is painted"):
        IM.prepare(_photo(), layers, IM.DRAWN, 0.75, 0, (32, 8))


def test_strokes_too_thin_for_any_patch_are_refused_and_strokes_outside_draw_mode_are_noted():
    layer = np.zeros((64, 64, 4), dtype=np.uint8)
    layer[30:32, :, 3] = 255  # a 2-pixel line: under half of every 16-pixel patch
    with pytest.raises(InputError, match="less than half"):
        IM.prepare(_photo(), [layer], IM.DRAWN, 0.75, 0, (32, 8))
    prepared = IM.prepare(_photo(), [layer], IM.TOP, 0.75, 0, (32, 8))
    assert any("strokes are ignored" in note for note in prepared.notes)


def test_a_mask_over_everything_is_served_with_a_note():
    layer = np.full((64, 64, 4), 255, dtype=np.uint8)
    prepared = IM.prepare(_photo(), [layer], IM.DRAWN, 0.75, 0, (32, 8))
    assert prepared.patch_mask.all()
    assert any("Everything is hidden" in note for note in prepared.notes)
    assert IMT.telea_inpaint(prepared.square, prepared.hidden).getextrema() == ((128, 128),) * 3


# --- the guessers against the libraries' own computations --------------------------------------------
def _reference_mae(tiny_dir, image, patch_mask):
    """The model's own path, on a separately loaded copy: random noise that ranks our patches last,
    mask_ratio set to hide that many, then unpatchify(logits) and the processor's de-normalisation."""
    from transformers import AutoImageProcessor, ViTMAEForPreTraining

    mae = ViTMAEForPreTraining.from_pretrained(tiny_dir / "mae").eval()
    processor = AutoImageProcessor.from_pretrained(tiny_dir / "mae")
    side = mae.config.image_size
    pixels = processor(images=image.resize((side, side), Image.Resampling.BICUBIC), return_tensors="pt")
    flat = torch.from_numpy(patch_mask.reshape(1, -1).astype(np.float32))
    k, total = int(flat.sum()), flat.shape[1]
    mae.config.mask_ratio = (k - 0.5) / total
    noise = flat + 0.01 * torch.rand(1, total, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = mae(pixel_values=pixels.pixel_values, noise=noise)
    recon = mae.unpatchify(out.logits)[0].permute(1, 2, 0).numpy()
    return recon * np.array(processor.image_std) + np.array(processor.image_mean), out.mask


@pytest.mark.parametrize(
    "patch_mask",
    [
        IM.random_patch_mask(4, 0.75, seed=3),
        IM.preset_mask(IM.BOTTOM, 4),
        np.eye(4, dtype=bool),
        np.ones((4, 4), dtype=bool),
    ],
    ids=["random-75", "bottom-half", "diagonal", "everything"],
)
def test_mae_reconstruction_equals_the_models_own_unpatchify(tiny_dir, mae_pair, patch_mask):
    image = _photo(80)
    result = IMT.mae_reconstruct(*mae_pair, image, patch_mask)
    expected, model_mask = _reference_mae(tiny_dir, image, patch_mask)
    assert np.array_equal(result.mask, patch_mask)  # the model hid exactly our patches
    assert np.array_equal(model_mask[0].numpy().reshape(4, 4) > 0.5, patch_mask)
    np.testing.assert_allclose(result.reconstruction, expected, atol=1e-5)
    assert mae_pair[0].config.mask_ratio == 0.75  # the shared config is left as it was
    assert math.isfinite(result.hidden_error)


def test_mae_with_norm_pix_loss_gets_visible_patch_statistics_back(tiny_dir, mae_pair):
    from transformers import ViTMAEForPreTraining

    mae = ViTMAEForPreTraining.from_pretrained(tiny_dir / "mae", norm_pix_loss=True).eval()
    processor = mae_pair[1]
    image, patch_mask = _photo(32), IM.random_patch_mask(4, 0.5, seed=0)
    result = IMT.mae_reconstruct(mae, processor, image, patch_mask)
    # Reference, patch by patch: prediction × std + mean, with the patch's own statistics where it
    # was visible and the visible patches' average statistics where it was hidden.
    pixel_values = processor(images=image, return_tensors="pt").pixel_values
    flat = torch.from_numpy(patch_mask.reshape(1, -1).astype(np.float32))
    mae.config.mask_ratio = (flat.sum().item() - 0.5) / 16
    with torch.no_grad():
        out = mae(pixel_values=pixel_values, noise=flat + 0.01 * torch.rand(1, 16))
    target = mae.patchify(pixel_values)[0]
    stats = [(p.mean(), (p.var() + 1e-6).sqrt()) for p in target]
    seen = [i for i in range(16) if not patch_mask.reshape(-1)[i]]
    avg_mean = sum(stats[i][0] for i in seen) / len(seen)
    avg_std = sum(stats[i][1] for i in seen) / len(seen)
    rows = []
    for i, logits in enumerate(out.logits[0]):
        mean, std = stats[i] if i in seen else (avg_mean, avg_std)
        rows.append(logits * std + mean)
    expected = mae.unpatchify(torch.stack(rows)[None])[0].permute(1, 2, 0).numpy()
    expected = expected * np.array(processor.image_std) + np.array(processor.image_mean)
    np.testing.assert_allclose(result.reconstruction, expected, atol=1e-5)


def test_concurrent_mae_calls_each_hide_their_own_patches(mae_pair):
    image, results, masks = _photo(32), {}, {}
    for i in range(6):
        masks[i] = IM.random_patch_mask(4, (i + 1) / 8, seed=i)

    def work(i):
        results[i] = IMT.mae_reconstruct(*mae_pair, image, masks[i]).mask

    threads = [threading.Thread(target=work, args=(i,)) for i in masks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(results[i], masks[i]) for i in masks)


def test_diffusion_inpainting_equals_a_direct_pipeline_call(tiny_dir, inpaint_pipe):
    from diffusers import AutoPipelineForInpainting

    image = _photo(64)
    hidden = IM.patch_to_pixels(IM.random_patch_mask(4, 0.75, seed=2), 64)
    ours = IMT.diffusion_inpaint(inpaint_pipe, image, hidden, prompt="a red box", seed=11, steps=2, side=64)
    direct = AutoPipelineForInpainting.from_pretrained(tiny_dir / "sd")
    direct.set_progress_bar_config(disable=True)
    reference = direct(
        prompt="a red box",
        image=image,
        mask_image=Image.fromarray(hidden.astype(np.uint8) * 255),
        height=64,
        width=64,
        num_inference_steps=2,
        strength=1.0,
        guidance_scale=0.0,
        generator=torch.Generator("cpu").manual_seed(11),
    ).images[0]
    assert np.array_equal(np.asarray(ours), np.asarray(reference))
    other_seed = IMT.diffusion_inpaint(inpaint_pipe, image, hidden, prompt="a red box", seed=12, steps=2, side=64)
    assert not np.array_equal(np.asarray(ours), np.asarray(other_seed))


def test_telea_baseline_is_opencv_and_keeps_visible_pixels():
    import cv2

    image = _photo(64)
    hidden = IM.patch_to_pixels(IM.preset_mask(IM.BOTTOM, 4), 64)
    ours = np.asarray(IMT.telea_inpaint(image, hidden))
    grey_filled = np.array(image)
    grey_filled[hidden] = 128
    expected = cv2.inpaint(grey_filled, hidden.astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA)
    assert np.array_equal(ours, expected)
    assert np.array_equal(ours[~hidden], np.asarray(image)[~hidden])


def test_pasting_keeps_the_visible_original_and_the_guess_where_hidden():
    original, guess = _photo(16), Image.new("RGB", (16, 16), (1, 2, 3))
    hidden = np.zeros((16, 16), dtype=bool)
    hidden[8:, :] = True
    pasted = np.asarray(IM.paste_visible(original, guess, hidden))
    assert np.array_equal(pasted[~hidden], np.asarray(original)[~hidden])
    assert (pasted[hidden] == [1, 2, 3]).all()


# --- the handler: odd numbers and pictures ---------------------------------------------------------
def _run(photo, kind=IM.BOTTOM, **kw):
    args = dict(ratio=0.75, mask_seed=0, mae_label=None, inpaint_label=None, prompt="", seed=0, steps=1,
                diffusion_side=128)
    args.update(kw)
    *panels, notes = list(IF.on_run(photo, kind, *args.values()))[-1]
    return panels, notes


def test_out_of_range_and_non_numbers_are_clamped_with_notes():
    # (A size below the minimum: the tiny test VAE's attention would crawl at the 768 px maximum.)
    panels, notes = _run(CAT, IM.RANDOM, ratio=float("nan"), mask_seed=-5, seed=float("inf"), steps=99,
                         diffusion_side=-3, prompt="x" * 1000)
    assert all(isinstance(p, Image.Image) and p.size == (448, 448) for p in panels)
    for words in ["share of hidden patches was not a number", "mask seed -5", "seed was not a number",
                  "Steps 99", "size -3", "cut to 300"]:
        assert words in notes, words
    assert "12 of 16 patches" in notes  # ratio fell back to 0.75


def test_no_photo_and_unknown_mask_are_plain_errors():
    import gradio as gr

    with pytest.raises(gr.Error, match="photo first"):
        _run(None)
    with pytest.raises(gr.Error, match="photo first"):
        _run({"background": None, "layers": [], "composite": None})
    with pytest.raises(gr.Error, match="Unknown mask"):
        _run(CAT, "left third")


# --- through the launched app's API ------------------------------------------------------------------
def _odd_files(folder):
    files = {}
    Image.new("RGB", (1, 1), (200, 10, 10)).save(folder / "one.png")
    Image.new("RGB", (10000, 200), (10, 10, 200)).save(folder / "wide.png")
    Image.new("RGBA", (60, 40), (255, 0, 0, 0)).save(folder / "rgba.png")
    Image.new("CMYK", (60, 40), (0, 255, 255, 0)).save(folder / "cmyk.jpg")
    Image.fromarray(np.full((40, 60), 40000, dtype=np.uint16)).save(folder / "sixteen.png")
    palette = Image.new("P", (40, 40), 0)
    palette.putpalette([0, 0, 255] * 256)
    palette.save(folder / "palette.png", transparency=0)
    frames = [Image.new("RGB", (40, 40), c) for c in [(0, 255, 0), (255, 0, 0)]]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    for name in ["one.png", "wide.png", "rgba.png", "cmyk.jpg", "sixteen.png", "palette.png", "anim.gif"]:
        files[name] = folder / name
    return files


def _open(panel) -> Image.Image:
    """An image output as gradio_client returns it without downloading: the server's file."""
    return Image.open(panel["path"] if isinstance(panel, dict) else panel).convert("RGB")


def _editor(path, layer=None):
    from gradio_client import handle_file

    return {"background": handle_file(str(path)), "layers": [handle_file(str(layer))] if layer else [],
            "composite": None}


def test_odd_pictures_straight_to_the_api(client, tmp_path):
    from gradio_client.exceptions import AppError

    args = [IM.BOTTOM, 0.75, 0, None, None, "", 0, 1, 128]
    for name, path in _odd_files(tmp_path).items():
        *panels, notes = client.predict(_editor(path), *args, api_name="/inpaint")
        assert all(panels), name
        original = _open(panels[0])
        assert original.size == (448, 448), name
        if name == "wide.png":
            assert "centre-cropped" in notes
        if name == "one.png":
            assert "blown up" in notes and original.getpixel((5, 5)) == (200, 10, 10)
        if name == "anim.gif":
            assert original.getpixel((5, 5))[1] > 200  # the first (green) frame
    with pytest.raises(AppError, match="photo first"):
        client.predict(None, *args, api_name="/inpaint")


def test_drawn_masks_through_the_api(client, tmp_path):
    from gradio_client.exceptions import AppError

    photo = tmp_path / "photo.png"
    _photo(64).save(photo)
    empty, full = tmp_path / "empty.png", tmp_path / "full.png"
    Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(empty)
    Image.new("RGBA", (64, 64), (0, 0, 0, 255)).save(full)
    args = [IM.DRAWN, 0.75, 0, None, None, "", 0, 1, 128]
    with pytest.raises(AppError, match="Nothing is painted"):
        client.predict(_editor(photo), *args, api_name="/inpaint")
    with pytest.raises(AppError, match="Nothing is painted"):
        client.predict(_editor(photo, empty), *args, api_name="/inpaint")
    *panels, notes = client.predict(_editor(photo, full), *args, api_name="/inpaint")
    assert "Everything is hidden" in notes and "16 of 16" in notes
    assert _open(panels[2]).getextrema() == ((128, 128),) * 3  # Telea: flat grey


def test_unreadable_files_and_bad_values_through_the_api(client, tmp_path):
    from gradio_client.exceptions import AppError

    fake = tmp_path / "not-an-image.png"
    fake.write_text("a text file wearing a .png name")
    args = [IM.BOTTOM, 0.75, 0, None, None, "", 0, 1, 128]
    with pytest.raises(AppError, match="could not be read as a picture"):
        client.predict(_editor(fake), *args, api_name="/inpaint")
    with pytest.raises(AppError, match="Unknown mask"):
        client.predict(_editor(CAT), "sideways", *args[1:], api_name="/inpaint")
    with pytest.raises(AppError, match="Unknown model"):
        client.predict(_editor(CAT), *args[:3], "../../etc/passwd", *args[4:], api_name="/inpaint")
    # Numbers gradio itself would refuse (out of a slider's range, not a number) are clamped.
    *panels, notes = client.predict(_editor(CAT), IM.RANDOM, 7, "abc", None, None, "", -1, 0, 99,
                                    api_name="/inpaint")
    assert all(panels)
    for words in ["share of hidden patches 7", "mask seed was not a number", "seed -1", "Steps 0",
                  "size 99"]:
        assert words in notes, words
