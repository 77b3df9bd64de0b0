"""Every bar chart of the gallery follows every click: after two different requests and one
settings change, what the browser DRAWS (vega's bar aria-labels and x axis, read by
`tests/support/browser_charts.py`) equals the values the API returns for the same inputs, and the bars run
in probability order.

`CHARTS` lists the `elem_id` of every chart a scenario below checks; `test_every_chart_is_checked`
fails when the app has a chart (any gr.BarPlot / LinePlot / ScatterPlot) that is not in it, so a new
chart gets the check by default: give it an `elem_id`, drive it here with `expect_bars`.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

import app as gallery_app
from demos import next_word
from tests.support.browser_charts import expect_bars, plot_frame
from tests.support.pages import open_tab, screenshot

pytestmark = pytest.mark.browser

CHARTS = {
    "next-word-model-bars", "next-word-sampling-bars", "next-word-step-bars",
    "next-word-size-bars-1", "next-word-size-bars-2", "next-word-size-bars-3",
    "next-word-base-bars", "next-word-instruct-plain-bars", "next-word-instruct-chat-bars",
    "next-word-causal-blank-bars", "next-word-masked-blank-bars",
    "clip-cosine-bars", "clip-zero-shot-bars", "clip-few-shot-bars", "clip-bias-a-bars", "clip-bias-b-bars",
    "prompting-accuracy-bars",
}


# Charts whose browser check lives in another file (it reads their drawn vega bars too).
CHECKED_ELSEWHERE = {
    "room-word-bars": "tests/test_rooms_browser.py",
    "room-model-bars": "tests/test_rooms_browser.py",
    "room-vote-bars": "tests/test_rooms_browser.py",
    **dict.fromkeys(
        ["pretrain-curve", "pretrain-byte-bars", "pretrain-image-curve", "pretrain-scale-curves",
         "pretrain-scale-params", "pretrain-scale-compute"], "tests/test_pretrain_browser.py"),
    **dict.fromkeys(
        ["pretrain-transfer-curve", "pretrain-habit-bars", "pretrain-habit-gain-bars",
         "pretrain-memory-verbatim-bars", "pretrain-memory-char-bars"], "tests/test_pretrain_finetune_browser.py"),
}


def test_every_chart_is_checked():
    import gradio as gr

    app = gallery_app.build_app()
    plots = [b for b in app.blocks.values() if isinstance(b, gr.components.native_plot.NativePlot)]
    ids = {p.elem_id for p in plots}
    assert None not in ids, "every chart needs an elem_id, so the browser test can find it"
    covered = CHARTS | set(CHECKED_ELSEWHERE)
    assert ids - covered == set(), f"charts without a browser check in this file: {sorted(ids - covered)}"
    assert covered - ids == set(), f"listed here but not in the app: {sorted(covered - ids)}"


# --- 1 · Next word -----------------------------------------------------------------------------
NW = dict(x="token", y="probability")


def _next_token_api(client, prompt, model, temperature=1.0, top_k=0, top_p=1.0):
    out = client.predict(prompt, model, temperature, top_k, top_p, api_name="/next_word_bars")
    return plot_frame(out[0], **NW), plot_frame(out[1], **NW)


def _set_slider_by_typing(page, elem_id: str, value) -> None:
    """Type a number into a slider's box and press Enter (the keyboard way, no mouse)."""
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def test_next_word_bars_follow_each_request_and_setting(page, client):
    model = next_word.catalog.available(next_word.ROLE)[0].label
    open_tab(page, "1 · Next word")
    prompt = page.get_by_label("Text so far")
    reveal = page.get_by_role("button", name="Reveal the next word", exact=True)
    for i, text in enumerate(["The capital of France is", "The opposite of hot is", "2 + 2 ="]):
        prompt.fill(text)
        reveal.click()
        model_bars, sampling_bars = _next_token_api(client, text, model)
        expect_bars(page, "next-word-model-bars", model_bars, **NW, what=f"after request {i + 1} ({text!r})")
        expect_bars(page, "next-word-sampling-bars", sampling_bars, **NW, what=f"after request {i + 1}")
        if i == 1:
            screenshot(page, "charts-next-word-2nd-request")
    # A settings change by keyboard: temperature 0 -> all sampling mass on the top token.
    _set_slider_by_typing(page, "next-word-temperature", 0)
    model_bars, sampling_bars = _next_token_api(client, "2 + 2 =", model, temperature=0)
    assert sampling_bars["probability"].max() == 1.0
    expect_bars(page, "next-word-sampling-bars", sampling_bars, **NW, what="after temperature 0")
    expect_bars(page, "next-word-model-bars", model_bars, **NW, what="after temperature 0")


def _choose(page, label: str, option: str, within=None) -> None:
    (within or page).get_by_label(label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()


def test_next_word_step_bars_follow_the_chosen_step(page, client):
    model = next_word.catalog.available(next_word.ROLE)[0].label
    open_tab(page, "1 · Next word")
    prompt = page.get_by_label("Text so far")
    prompt.fill("The cat sat on the")
    page.get_by_role("button", name="Reveal the next word", exact=True).click()
    texts = ["The cat sat on the"]
    # The chips are this text's candidates once its bars are drawn (a chip tapped earlier is an
    # earlier text's, and is refused in words: tests/test_next_word.py).
    expect_bars(page, "next-word-model-bars", _next_token_api(client, texts[0], model)[0], **NW, what="after Reveal")
    candidates = page.get_by_role("button", name=re.compile(r"^\+ "))
    for _ in range(2):  # two clicks on the top candidate: two steps in the history
        candidates.first.click()
        page.wait_for_function(
            "([el, old]) => el.value !== old", arg=[prompt.element_handle(), texts[-1]], timeout=20_000
        )
        texts.append(prompt.input_value())
        model_bars, _ = _next_token_api(client, texts[-1], model)
        expect_bars(page, "next-word-model-bars", model_bars, **NW, what=f"after appending to {texts[-2]!r}")
    page.get_by_text("History: every token added so far").click()
    for step in (2, 1, 2):  # the step's distribution = the model's next-token odds for the text before it
        page.get_by_label("Show a step's distribution", exact=True).click()
        page.get_by_role("option", name=re.compile(rf"^{step}: ")).click()
        expected, _ = _next_token_api(client, texts[step - 1], model)
        expect_bars(page, "next-word-step-bars", expected, **NW, what=f"for step {step}")
    screenshot(page, "charts-next-word-history")


def test_next_word_size_bars_follow_each_request_and_model_choice(page, client):
    open_tab(page, "1 · Next word")
    page.get_by_text("Scale: the same text on models of different sizes").click()
    prompt = page.get_by_label("Text so far")
    compare = page.get_by_role("button", name="Compare the models", exact=True)
    labels = [page.get_by_label(f"Model {i}", exact=True).input_value() for i in (1, 2, 3)]

    def check(text, what):
        out = client.predict(text, *labels, api_name="/next_word_compare_models")
        for i in range(3):
            expect_bars(page, f"next-word-size-bars-{i + 1}", plot_frame(out[i], **NW), **NW, what=what)

    for i, text in enumerate(["The capital of France is", "Once upon a time, there was a little"]):
        prompt.fill(text)
        compare.click()
        check(text, f"after request {i + 1}")
    _choose(page, "Model 1", labels[1])  # a settings change: another model in slot 1
    labels[0] = labels[1]
    compare.click()
    check(text, "after choosing another model 1")
    screenshot(page, "charts-next-word-scale")


def test_next_word_base_vs_instruct_bars_follow_each_request(page, client):
    open_tab(page, "1 · Next word")
    page.get_by_text("Base vs instruct: what fine-tuning changes").click()
    box = page.get_by_label("Question or text", exact=True)
    run = page.get_by_role("button", name="Compare base and instruct", exact=True)
    for i, text in enumerate(["What is the capital of France?", "Write a haiku about the sea."]):
        box.fill(text)
        run.click()
        out = client.predict(text, api_name="/next_word_base_vs_instruct")
        for j, elem_id in enumerate(
            ["next-word-base-bars", "next-word-instruct-plain-bars", "next-word-instruct-chat-bars"]
        ):
            value = out[j]
            if isinstance(value, dict) and value.get("visible") is False:  # offline: no base model
                page.wait_for_timeout(300)
                assert not page.locator(f"#{elem_id} .vega-embed").is_visible(), elem_id
                continue
            expect_bars(page, elem_id, plot_frame(value, **NW), **NW, what=f"after request {i + 1}")
    screenshot(page, "charts-next-word-base-vs-instruct")


def test_next_word_causal_vs_masked_bars_follow_each_request_and_model_choice(page, client):
    open_tab(page, "1 · Next word")
    page.get_by_text("Causal vs masked: one blank, read one way or both ways").click()
    box = page.get_by_label("A sentence with one [MASK]", exact=True)
    run = page.get_by_role("button", name="Fill the blank both ways", exact=True)
    causal, masked = (page.get_by_label(label, exact=True).input_value() for label in ("Causal model", "Masked model"))

    def check(text, what):
        out = client.predict(text, causal, masked, api_name="/next_word_causal_vs_masked")
        for j, elem_id in enumerate(["next-word-causal-blank-bars", "next-word-masked-blank-bars"]):
            expect_bars(page, elem_id, plot_frame(out[j], **NW), **NW, what=what)

    for i, text in enumerate(["The capital of France is [MASK] and the sea is blue."]):
        box.fill(text)
        run.click()
        check(text, f"after request {i + 1}")
    others = [m.label for m in next_word.catalog.available(next_word.ROLE) if m.label != causal]
    _choose(page, "Causal model", others[0])  # a settings change: another causal model
    causal = others[0]
    run.click()
    check(text, "after choosing another causal model")
    screenshot(page, "charts-next-word-causal-vs-masked")


# --- 3 · CLIP ------------------------------------------------------------------------------------
def _clip_open(page, sub_tab: str):
    open_tab(page, "3 · CLIP zero- & few-shot")
    page.get_by_role("tab", name=sub_tab, exact=True).click()


def _clip_model():
    from gallery import catalog

    return catalog.available("clip")[0].label


def test_clip_cosine_bars_follow_each_request_and_template(page, client):
    from gradio_client import handle_file

    from demos.clip import model as CM, zero_shot as ZS

    _clip_open(page, "Zero-shot")
    page.get_by_text("cat, dog, fox, stuffed toy").first.click()  # the cat picture
    labels_box = page.locator("#clip-labels textarea")
    expect(labels_box).to_have_value("cat, dog, fox, stuffed toy")
    expect(page.locator("#clip-picture img")).to_be_visible()
    run = page.get_by_role("button", name="Classify", exact=True)
    picture = handle_file(ZS.EXAMPLES[0][0])
    template = CM.DEFAULT_TEMPLATE
    for i, labels in enumerate(["cat, dog, fox, stuffed toy", "tiger, sofa, bicycle", None]):
        if labels is None:  # the settings change: another template, same labels
            labels, template = "tiger, sofa, bicycle", CM.TEMPLATES[2]
            _choose(page, "Template", template, within=page.locator("#clip-template"))
        else:
            labels_box.fill(labels)
        run.click()
        out = client.predict(_clip_model(), picture, labels, template, api_name="/clip_zero_shot")
        expect_bars(page, "clip-cosine-bars", plot_frame(out[1], "label", "cosine"), x="label", y="cosine",
                    what=f"after request {i + 1}")
        if i == 1:
            screenshot(page, "charts-clip-zero-shot-2nd-request")


def _few_shot_inputs(example):
    from gradio_client import handle_file

    test_image, *slots = example
    args = [handle_file(test_image)]
    for i in range(0, len(slots), 2):
        args += [slots[i], [handle_file(f) for f in slots[i + 1]]]
    return args


def test_clip_few_shot_bars_follow_each_request_and_method(page, client):
    from demos.clip import model as CM
    from demos.clip import few_shot as CF

    _clip_open(page, "Few-shot")
    learn = page.get_by_role("button", name="Learn from the examples", exact=True)
    runs = [(0, CF.PROTOTYPES), (2, CF.PROTOTYPES), (2, CF.LOGISTIC)]  # 2 examples, then the method
    for i, (example, method) in enumerate(runs):
        if i < 2:
            page.get_by_text(CF.FEW_SHOT_LABELS[example]).first.click()
            page.wait_for_timeout(500)
        else:
            page.get_by_label(method, exact=True).check()
        learn.click()
        out = client.predict(_clip_model(), *_few_shot_inputs(CF.FEW_SHOT_EXAMPLES[example])[:1], method,
                             CM.DEFAULT_TEMPLATE, *_few_shot_inputs(CF.FEW_SHOT_EXAMPLES[example])[1:],
                             api_name="/clip_few_shot")
        for j, elem_id in enumerate(["clip-zero-shot-bars", "clip-few-shot-bars"]):
            expect_bars(page, elem_id, plot_frame(out[j], "label", "probability"), x="label", y="probability",
                        what=f"after request {i + 1}")
        if i == 1:
            screenshot(page, "charts-clip-few-shot-2nd-request")


def test_clip_bias_bars_follow_each_request_and_template(page, client):
    from gradio_client import handle_file

    from demos.clip import model as CM
    from demos.clip import bias as CB

    _clip_open(page, "Bias probe")
    probe = page.get_by_role("button", name="Compare wordings", exact=True)
    runs = [(2, CM.DEFAULT_TEMPLATE), (1, CM.DEFAULT_TEMPLATE), (1, CM.TEMPLATES[1])]
    for i, (example, template) in enumerate(runs):
        image, a, b, _ = CB.BIAS_EXAMPLES[example]
        if i < 2:
            page.get_by_text(b).first.click()
            page.wait_for_timeout(500)
        else:
            _choose(page, "Template", template, within=page.locator("#clip-bias-template"))
        probe.click()
        out = client.predict(_clip_model(), handle_file(image), a, b, template, api_name="/clip_bias_probe")
        for j, elem_id in enumerate(["clip-bias-a-bars", "clip-bias-b-bars"]):
            expect_bars(page, elem_id, plot_frame(out[j], "label", "probability"), x="label", y="probability",
                        what=f"after request {i + 1}")


# --- 5 · Prompting ---------------------------------------------------------------------------------
def test_prompting_accuracy_bars_follow_each_run_and_setting(page, client):
    from demos.prompting import compare as PC, prompts as PP

    open_tab(page, "5 · Prompting strategies")
    model = page.locator("#prompting-model input").input_value()
    set_name = page.get_by_label("Problem set", exact=True).input_value()
    strategies = page.locator("#prompting-strategies")
    count = page.locator("#prompting-count input[type=number]")
    runs = [  # (strategies, questions, k)
        ([PP.ZERO_SHOT, PP.COT], 1, PP.DEFAULT_K),
        ([PP.ZERO_SHOT, PP.FEW_SHOT, PP.COT], 2, PP.DEFAULT_K),
        ([PP.ZERO_SHOT, PP.FEW_SHOT, PP.COT], 2, 1),  # a settings change: k
    ]
    for i, (chosen, n, k) in enumerate(runs):
        for s in PP.STRATEGIES:
            box = strategies.get_by_label(s, exact=True)
            box.check() if s in chosen else box.uncheck()
        count.fill(str(n))
        count.press("Enter")
        if k != PP.DEFAULT_K:
            page.get_by_text("Settings: temperature, seed").click()
            _set_slider_by_typing(page, "prompting-k", k)
        page.get_by_role("button", name="Score the set", exact=True).click()
        out = client.predict(
            model, set_name, n, chosen, PC.NO_GUESS, k, PP.DEFAULT_SAMPLES,
            PP.DEFAULT_TEMPERATURE, PP.DEFAULT_SC_TEMPERATURE, PP.DEFAULT_SEED,
            PP.DEFAULT_MAX_NEW_TOKENS, api_name="/prompting_score",  # (the CPU default)
        )
        expected = plot_frame(out[1], "strategy", "accuracy")
        expect_bars(page, "prompting-accuracy-bars", expected, x="strategy", y="accuracy", order="given",
                    timeout_s=60, what=f"after run {i + 1}")
        if i == 1:
            screenshot(page, "charts-prompting-2nd-run")
