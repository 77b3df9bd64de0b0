"""A tab's opening answer (gallery/opening.py) and the examples' kept answers: computed once, and
every page gets the whole answer, not only the first (gradio consumes the update dicts it sends)."""

from __future__ import annotations

import threading

import gradio as gr
import pandas as pd
import pytest
from gradio.blocks import postprocess_update_dict

from gallery import opening, ui

pytestmark = pytest.mark.no_models  # answers of its own: no model, no app


def _outputs():
    """What a tab hands out: a chart's new data and a button's new text, as gr.update dicts."""
    frame = pd.DataFrame({"token": ["␣Paris", "␣the"], "probability": [0.77, 0.06]})
    return [gr.update(value=frame, visible=True), gr.update(value="+ ␣Paris  (77%)", visible=True)]


def _sent(outputs, blocks) -> list[dict]:
    """What gradio sends to one page for these outputs (its own postprocessing of each update)."""
    return [postprocess_update_dict(block, update) for block, update in zip(blocks, outputs)]


def test_every_page_gets_the_whole_opening_answer_not_only_the_first():
    computed = []
    answer = opening.Opening("test", lambda key: computed.append(key) or _outputs(), lambda: "model")
    blocks = [gr.BarPlot(x="token", y="probability"), gr.Button()]
    pages = [_sent(answer.get("model"), blocks) for _ in range(3)]
    assert computed == ["model"]  # worked out once
    for page in pages:
        assert "value" in page[0] and page[0]["value"] is not None, page  # the second page got empty charts
        assert page[1]["value"] == "+ ␣Paris  (77%)", page  # ... and buttons reading "Run"


def test_pages_that_open_while_the_answer_is_worked_out_wait_for_the_one_computation():
    started, release = threading.Event(), threading.Event()
    computed = []

    def slow(key):
        computed.append(key)
        started.set()
        release.wait(10)
        return _outputs()

    answer = opening.Opening("test-slow", slow, lambda: "model")
    got: list = []
    pages = [threading.Thread(target=lambda: got.append(answer.get("model"))) for _ in range(4)]
    pages[0].start()
    started.wait(10)
    for page in pages[1:]:
        page.start()
    release.set()
    for page in pages:
        page.join(10)
    assert computed == ["model"] and len(got) == 4
    assert len({id(g[0]) for g in got}) == 4  # each page its own copy


def test_an_example_s_kept_answer_reaches_every_page_whole():
    with gr.Blocks():
        box = gr.Textbox()
        button = gr.Button()
        examples = gr.Examples([["a"]], [box])
        calls = []

        def answer(text):
            calls.append(text)
            return gr.update(value=f"+ {text}", visible=True)

        on_example = ui.answer_examples(examples, answer, [box], [button])
    sent = []
    for _ in range(3):
        [update] = list(on_example(0, "a"))
        sent.append(postprocess_update_dict(button, update))
    assert calls == ["a"]  # the second and third clicks are served from memory
    assert [s["value"] for s in sent] == ["+ a"] * 3, sent


def test_a_click_before_a_model_s_first_load_is_told_how_long_about(tiny_dir):
    """Until a model is loaded, a click that needs it gets "Loading … (first use, about N s)" at
    once; once loaded, nothing is said (and nothing is sent)."""
    from gallery import catalog, models

    entry = catalog.available("next_word")[0]
    models.unload_all()
    wait = models.first_use_wait_s(entry)
    assert isinstance(wait, int) and wait >= 5
    models.load_causal_lm(entry)
    assert models.first_use_wait_s(entry) is None


def test_each_page_counts_its_own_click_before_the_click_s_other_events_are_sent(tiny_dir):
    """The page runs the events of one trigger in the order they were wired, each after the one
    before it was sent. The counter that keeps a late opening from replacing the visitor's own
    answer must therefore be the first event of each of those clicks: wired last, it counted a
    click only after the click's own requests were out, and on a busy machine a late opening
    replaced the visitor's bars (1 page in 6, 5 in 8 under 3 CPU burners)."""
    import app as gallery_app
    from gallery import gradio_compat

    fns = gradio_compat.event_functions(gallery_app.build_app())  # in the order they were wired
    draws = [f for f in fns if (f.name or "").startswith("draw_") and (f.name or "").endswith("_opening")]
    assert {f.name for f in draws} == {"draw_next_word_opening", "draw_prompting_opening"}
    for draw in draws:
        asked = draw.inputs[1]  # draw_opening(answer, clicks)
        counter = next(f for f in fns if f.fn is None and f.js and list(f.outputs) == [asked])
        for target in counter.targets:
            first = next(f for f in fns if target in f.targets)
            assert first is counter, f"{draw.name}: on {target}, {first.name} is wired before the click counter"
