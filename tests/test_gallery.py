"""The shared frame: settings, the allow-list, the loaders, image normalisation, error handling."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gallery import catalog, models, settings
from gallery.errors import InputError, ModelUnavailable

ROOT = Path(__file__).resolve().parent.parent


def _run_python(code: str, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "GALLERY_TINY_MODELS")}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


def test_offline_is_decided_once_and_fast_when_the_hub_is_unreachable():
    # Nothing listens on port 9 of loopback: the probe must give up at once, not after retries.
    started = time.perf_counter()
    result = _run_python(
        "from gallery import settings; import os; print(settings.OFFLINE, os.environ['HF_HUB_OFFLINE'])",
        HF_ENDPOINT="http://127.0.0.1:9",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "1"]
    assert time.perf_counter() - started < 15


def test_offline_and_online_can_be_forced_by_environment():
    code = "from gallery import settings; print(settings.OFFLINE)"
    assert _run_python(code, HF_HUB_OFFLINE="1").stdout.strip() == "True"
    # Forced online: no probe at all, even with an endpoint that could not answer.
    assert _run_python(code, HF_HUB_OFFLINE="0", HF_ENDPOINT="http://127.0.0.1:9").stdout.strip() == "False"


def test_prefetch_ends_with_a_clear_message_when_offline():
    result = subprocess.run(
        [sys.executable, "-m", "gallery.prefetch"],
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if k != "GALLERY_TINY_MODELS"}, "HF_ENDPOINT": "http://127.0.0.1:9"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "cannot be reached" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_missing_hub_weights_name_the_model_and_the_fetch_command():
    mae = catalog.ROLES["mae"].hub[0]
    reason = catalog.missing_reason(mae)
    assert mae.model_id in reason and settings.PREFETCH_COMMAND in reason


def test_only_catalogue_models_reach_a_loader(tmp_path):
    with pytest.raises(InputError):
        catalog.by_label("mae", "../../etc/passwd")
    stranger = catalog.Model("x", str(tmp_path), "mae")  # a path nobody listed
    with pytest.raises(ModelUnavailable, match="not in the gallery's list"):
        models.load_mae(stranger)


def test_a_loader_loads_each_model_once_even_when_called_from_many_threads(caplog):
    models.unload_all()
    model = catalog.by_label("mae", None)
    results = []
    with caplog.at_level("INFO", logger="gallery"):
        threads = [threading.Thread(target=lambda: results.append(models.load_mae(model))) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(results) == 6 and all(r is results[0] for r in results)
    assert sum("loaded " in rec.getMessage() for rec in caplog.records) == 1


FIRST_LOADS_AT_ONCE = """
import threading
from gallery import catalog, models
picks = [(role, catalog.available(role)[0]) for role in ("next_word", "mae", "clip", "masked_lm")]
picks.append(("next_word", catalog.available("next_word")[1]))
failed = []

def load(role, model):
    try:
        models.loader_for(role)(model)
    except Exception as error:
        failed.append(f"{model.label}: {error}")

threads = [threading.Thread(target=load, args=pick) for pick in picks]
[t.start() for t in threads]
[t.join() for t in threads]
print("FAILED" if failed else "ALL LOADED", len(picks), failed)
"""


@pytest.mark.slow  # every role's model loaded from many threads at once
def test_different_models_loading_at_the_same_time_all_load(tiny_dir):
    """Just after a start, several visitors' first clicks load several models at once. In a
    fresh process (transformers not yet imported), five first loads in five threads must all
    succeed: without one build at a time, 3 runs in 3 lost at least one to an ImportError."""
    env = {**os.environ, "GALLERY_TINY_MODELS": str(tiny_dir), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", FIRST_LOADS_AT_ONCE], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert "ALL LOADED 5" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]


def test_a_failed_load_is_reported_and_a_retry_can_succeed(tiny_dir):
    models.unload_all()
    model = catalog.by_label("mae", None)
    folder = tiny_dir / "mae"
    backup = tiny_dir / "mae.bak"
    shutil.move(folder, backup)
    try:
        with pytest.raises(ModelUnavailable, match="does not exist"):
            models.load_mae(model)
        folder.mkdir()
        (folder / "config.json").write_text("{ not json")
        with pytest.raises(ModelUnavailable, match="could not be loaded"):
            models.load_mae(model)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.move(backup, folder)
    mae, processor = models.load_mae(model)  # the failure was not cached
    assert mae.config.patch_size == 8


def test_device_and_dtype_on_a_cpu_machine():
    import torch

    from gallery import device

    assert device.device() == ("cuda" if torch.cuda.is_available() else "cpu")
    assert device.dtype() == (torch.float16 if torch.cuda.is_available() else torch.float32)

    def f(x):
        return x + 1

    assert device.gpu(duration=10)(f)(1) == 2  # `spaces.GPU` is a no-op off ZeroGPU


# --- image normalisation -----------------------------------------------------------------------
def _save(tmp_path, name, image, **kw):
    path = tmp_path / name
    image.save(path, **kw)
    return str(path)


def test_to_rgb_reads_every_common_mode(tmp_path):
    from gallery.images import to_rgb

    rgba = Image.new("RGBA", (40, 30), (255, 0, 0, 0))  # fully transparent red -> white
    assert to_rgb(rgba).getpixel((0, 0)) == (255, 255, 255)
    cmyk = _save(tmp_path, "c.jpg", Image.new("CMYK", (40, 30), (0, 255, 255, 0)))
    r, g, b = to_rgb(cmyk).getpixel((5, 5))
    assert r > 200 and g < 60 and b < 60  # CMYK (0,255,255,0) is red
    sixteen = Image.fromarray(np.full((30, 40), 65535, dtype=np.uint16))
    assert to_rgb(_save(tmp_path, "16.png", sixteen)).getpixel((0, 0)) == (255, 255, 255)
    palette = Image.new("P", (20, 20), 0)
    palette.putpalette([0, 0, 255] * 256)
    palette.info["transparency"] = 0
    assert to_rgb(_save(tmp_path, "p.png", palette, transparency=0)).getpixel((0, 0)) == (255, 255, 255)
    frames = [Image.new("RGB", (16, 16), c) for c in [(0, 255, 0), (255, 0, 0)]]
    gif = tmp_path / "a.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    assert to_rgb(str(gif)).getpixel((0, 0))[1] > 200  # the first (green) frame


def test_to_rgb_sizes_and_refusals(tmp_path):
    from gallery.images import to_rgb

    assert min(to_rgb(Image.new("RGB", (1, 1))).size) >= 8
    wide = to_rgb(Image.new("RGB", (10000, 200)))
    assert max(wide.size) == 1024 and wide.size[0] / wide.size[1] == pytest.approx(50, rel=0.05)
    with pytest.raises(InputError, match="first"):
        to_rgb(None)
    fake = tmp_path / "not-an-image.png"
    fake.write_text("hello")
    with pytest.raises(InputError, match="could not be read"):
        to_rgb(str(fake))
    truncated = tmp_path / "cut.png"
    Image.new("RGB", (300, 300), (1, 2, 3)).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(InputError):
        to_rgb(str(truncated))


# --- handler errors become plain words -------------------------------------------------------------
def test_user_errors_turn_failures_into_plain_messages():
    import gradio as gr

    from gallery.ui import user_errors

    @user_errors
    def bad_input():
        raise InputError("Type at least one label.")

    @user_errors
    def out_of_memory():
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    @user_errors
    def bug():
        raise KeyError("internal detail")

    @user_errors
    def stream():
        yield 1
        raise InputError("stopped")

    with pytest.raises(gr.Error, match="Type at least one label"):
        bad_input()
    with pytest.raises(gr.Error, match="ran out of memory"):
        out_of_memory()
    with pytest.raises(gr.Error) as info:
        bug()
    assert "KeyError" in info.value.message and "internal detail" not in info.value.message
    gen = stream()
    assert next(gen) == 1
    with pytest.raises(gr.Error, match="stopped"):
        next(gen)


def test_a_tab_that_fails_to_build_says_why_and_the_others_still_build():
    import gradio as gr

    from gallery import ui

    with gr.Blocks() as blocks:
        with gr.Tab("broken"):
            ui.build_tab("demos.does_not_exist")
        with gr.Tab("fine"):
            gr.Textbox("still here")
    texts = [getattr(c, "value", "") for c in blocks.blocks.values()]
    assert any("could not start" in str(t) and "does_not_exist" in str(t) for t in texts)
    assert "still here" in texts


# --- the one real-weights check ------------------------------------------------------------------
@pytest.mark.real_weights
def test_bundled_smollm2_predicts_paris():
    import torch

    lm, tokenizer = models.load_causal_lm(catalog.EMBEDDED_LM)
    ids = tokenizer("The capital of France is", return_tensors="pt")
    with torch.inference_mode():
        logits = lm(**ids).logits[0, -1]
    assert tokenizer.decode(int(logits.argmax())) == " Paris"


def test_harden_rewords_unreadable_values():
    import gradio as gr

    from gallery import ui

    with gr.Blocks() as blocks:
        slider = gr.Slider(0, 2, label="Temperature")
        picture = gr.Image(type="pil", label="Photo")
        out = gr.Textbox()
        slider.change(ui.user_errors(lambda x: x), slider, out)
    ui.harden(blocks)
    with pytest.raises(gr.Error, match="“Temperature” could not be read: send a number"):
        slider.preprocess(None)
    with pytest.raises(gr.Error, match="greater than maximum"):  # gradio's own clear message stays
        slider.preprocess(5)
    assert slider.preprocess(1.5) == 1.5
    with pytest.raises(gr.Error, match="“Photo” could not be read"):
        picture.preprocess({"path": "/nonexistent/not-a-picture.png", "meta": {"_type": "gradio.FileData"}})


def on_forgotten(x):  # a handler whose author forgot @ui.user_errors
    raise InputError("plain words that would never reach the visitor as such")


def test_harden_refuses_a_handler_without_user_errors_and_names_it():
    """One error path: a handler without the decorator stops the build (it used to be wrapped
    silently); a decorated one, a browser-only event and gradio's own example loader pass."""
    import gradio as gr

    from gallery import ui

    with gr.Blocks() as blocks:
        text = gr.Textbox()
        gr.Examples([["an example"]], inputs=[text])  # registers gradio's own `load_example`
        text.submit(ui.user_errors(lambda x: x), text, text)
        text.change(None, None, None, js="() => {}")
        text.blur(on_forgotten, text, text)
    with pytest.raises(TypeError, match=r"lack @ui\.user_errors.*tests\.test_gallery\.on_forgotten"):
        ui.harden(blocks)

    with gr.Blocks() as fine:
        text = gr.Textbox()
        gr.Examples([["an example"]], inputs=[text])
        text.submit(ui.user_errors(lambda x: x), text, text)
        text.change(None, None, None, js="() => {}")
    ui.harden(fine)
    loader = next(f.fn for f in fine.fns.values() if f.name == "load_example")
    with pytest.raises(gr.Error):  # gradio's own function, which we cannot decorate, is wrapped
        loader(None)


def test_harden_survives_gradio_s_per_session_copy_of_a_component():
    """Once a handler sends a component an update, gradio serves that session from a new instance
    (`block.__class__(**kwargs)`): the plain-words rewording must hold on that copy too."""
    import gradio as gr

    from gallery import ui

    with gr.Blocks() as blocks:
        slider = gr.Slider(0, 4, label="k worked examples")
    ui.harden(blocks)
    copy = type(slider)(minimum=0, maximum=2, label="k worked examples")
    with pytest.raises(gr.Error, match="“k worked examples” could not be read: send a number"):
        copy.preprocess(None)
    assert copy.preprocess(1.0) == 1.0


def _session_copy(blocks, event, component, update):
    """The instance gradio serves one session from once `event`'s handler sent `component`
    `update`: gradio's own postprocessing builds it (`block.__class__(**kwargs)`)."""
    from gallery import gradio_compat

    copy = gradio_compat.session_copy(blocks, event, component, update)
    assert copy is not component  # the copy this test is about
    return copy


def test_pass_raw_survives_gradio_s_per_session_copy_of_a_component(tmp_path):
    """A marked input keeps handing unreadable values to its handler after an update (a shown
    slider, a clicked example) has made gradio rebuild it for the session."""
    import gradio as gr

    from gallery import inputs, ui

    fake = tmp_path / "not-a-picture.png"
    fake.write_text("hello")
    real = tmp_path / "real.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(real)
    with gr.Blocks() as blocks:
        picture = inputs.picture_input(type="pil", label="Photo")
        ratio = inputs.pass_raw(gr.Slider(0, 1, label="Share hidden", visible=False))
        gr.Examples([[str(real)]], inputs=[picture])
        gr.Button().click(ui.user_errors(lambda: gr.update(visible=True)), None, ratio)
    ui.harden(blocks)
    showing = next(f for f in blocks.fns.values() if ratio in f.outputs)
    loading = next(f for f in blocks.fns.values() if f.name == "load_example")

    ratio_copy = _session_copy(blocks, showing, ratio, gr.update(visible=True))
    assert ratio_copy.preprocess(5) == 5  # out of range: raw, for the handler to clamp with a note
    picture_copy = _session_copy(blocks, loading, picture, loading.fn((0, [str(real)])))
    unreadable = picture_copy.preprocess(type(picture).data_model(path=str(fake)))
    assert isinstance(unreadable, inputs.Unreadable) and "could not be read as a picture" in unreadable.reason

    plain = gr.Slider(0, 1, label="Not marked")  # an unmarked input of the same class still refuses
    with pytest.raises(gr.Error, match="greater than maximum"):
        plain.preprocess(5)


def test_the_lru_is_bounded_least_recently_used_and_thread_safe():
    """gallery.lru.LRU, the one in-memory cache (CLIP's embeddings, pre-training's runs, examples' answers)."""
    from gallery.lru import LRU

    cache = LRU(max_items=50)
    cache.put("keep", 1)

    def work(n):
        for i in range(400):
            cache.put((n, i), i)
            cache.get_many([(n, i), (n, i - 1), "keep"])  # "keep" is read all the time

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 50
    assert cache.get_many(["keep"]) == {"keep": 1}
    assert cache.get_many([(0, 0)]) == {} and cache.get((0, 0)) is None  # long evicted
    assert cache.get("keep") == 1
