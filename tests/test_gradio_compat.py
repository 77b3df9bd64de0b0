"""Each entry of `gallery/gradio_compat.py` against the gradio that is installed: these fail when
gradio changes under the gallery, before a visitor finds out."""

from __future__ import annotations

import gradio as gr
import pytest

from gallery import gradio_compat

pytestmark = pytest.mark.no_models  # gradio alone: no model, no app


def test_the_installed_gradio_is_the_one_every_entry_was_checked_against():
    assert gr.__version__ == gradio_compat.CHECKED_WITH, (
        f"gradio {gr.__version__} is installed; gallery/gradio_compat.py was read against "
        f"{gradio_compat.CHECKED_WITH}: re-check each of its entries, then raise CHECKED_WITH"
    )


def test_gradio_still_consumes_the_value_of_an_update_which_is_why_answers_are_copied():
    from gradio.blocks import postprocess_update_dict

    with gr.Blocks():
        box = gr.Textbox()
    kept = gr.update(value="the answer", visible=True)
    handed_out = gradio_compat.fresh_copy(kept)
    sent = postprocess_update_dict(box, handed_out)
    assert sent["value"] == "the answer"
    assert "value" not in handed_out  # consumed: a second hand-out of the same dict would be empty
    assert kept["value"] == "the answer"  # the kept answer, copied, stays whole


def _blocks_with_an_update():
    """A slider that a button's handler sends an update (what makes gradio copy it per session)."""
    with gr.Blocks() as blocks:
        slider = gr.Slider(0, 1, label="Share")
        gr.Button().click(lambda: gr.update(visible=True), None, slider)
    [event] = [f for f in gradio_compat.event_functions(blocks) if slider in f.outputs]
    return blocks, slider, event


def test_a_session_is_served_from_a_copy_built_from_the_constructor_arguments():
    blocks, slider, event = _blocks_with_an_update()
    gradio_compat.set_constructor_arg(slider, "key", "compat-test-key")
    slider.on_the_instance = True  # what the copy must NOT be expected to keep
    copy = gradio_compat.session_copy(blocks, event, slider, gr.update(visible=True))
    assert copy is not slider and type(copy) is type(slider)
    assert copy.key == "compat-test-key"  # a constructor argument survives
    assert not hasattr(copy, "on_the_instance")  # an instance attribute does not
    assert copy.visible is True  # built with the update applied


def test_a_preprocess_wrapped_on_the_class_holds_on_the_session_copy_and_is_wrapped_once(monkeypatch):
    # A class the gallery does not use, unwrapped again afterwards. (Not a subclass of this test's
    # own: gradio writes a .pyi file beside any module that defines a component class.)
    Shouting = gr.ColorPicker
    monkeypatch.setattr(Shouting, "preprocess", Shouting.preprocess)
    calls = []

    def wrap(original):
        def preprocess(self, payload):
            calls.append(payload)
            return original(self, payload).upper()

        return preprocess

    with gr.Blocks() as blocks:
        box = Shouting(label="Words")
        gr.Button().click(lambda: gr.update(visible=True), None, box)
    [event] = [f for f in gradio_compat.event_functions(blocks) if box in f.outputs]
    gradio_compat.wrap_preprocess(Shouting, wrap)
    gradio_compat.wrap_preprocess(Shouting, wrap)  # a second hardening of the same class: no second layer
    copy = gradio_compat.session_copy(blocks, event, box, gr.update(visible=True))
    assert copy.preprocess("quiet") == "QUIET"
    assert calls == ["quiet"]


def test_root_block_is_the_blocks_being_built():
    assert gradio_compat.root_block() is None
    with gr.Blocks() as outer:
        with gr.Row():
            assert gradio_compat.root_block() is outer
    assert gradio_compat.root_block() is None


def test_an_example_click_event_can_be_chained_on():
    with gr.Blocks() as blocks:
        text, out = gr.Textbox(), gr.Textbox()
        examples = gr.Examples([["an example"]], inputs=[text], cache_examples=False)
        gradio_compat.example_click(examples).then(lambda x: x, text, out, api_name="compat_after_example")
    names = {f.name for f in gradio_compat.event_functions(blocks)}
    assert "load_example" in names  # gradio's own loader, which `ui.harden` wraps
    assert "compat_after_example" in {f.api_name for f in gradio_compat.event_functions(blocks)}


def test_registered_events_say_what_the_gallery_reads_and_take_a_new_function():
    with gr.Blocks() as blocks:
        text = gr.Textbox()
        text.submit(lambda x: x, text, text, api_name="compat_echo", concurrency_id="lane", concurrency_limit=1)
        text.change(None, None, None, js="() => {}")
    assert text in gradio_compat.components(blocks)
    events = gradio_compat.event_functions(blocks)
    [echo] = [f for f in events if f.api_name == "compat_echo"]
    assert (echo.api_visibility, echo.concurrency_id, echo.concurrency_limit) == ("public", "lane", 1)
    assert echo.outputs == [text] and echo.name == "<lambda>"
    assert any(f.fn is None for f in events)  # the browser-only event has no Python function
    gradio_compat.replace_function(echo, lambda x: x * 2)
    assert echo.fn("ab") == "abab"


def test_declared_events_are_heard_before_gradio_renames_a_second_one():
    heard = []
    with gradio_compat.declared_events(lambda fn, name, visibility: heard.append((name, visibility))):
        with gr.Blocks() as blocks:
            button = gr.Button()
            button.click(lambda: None, None, None, api_name="compat_twice")
            button.click(lambda: None, None, None, api_name="compat_twice", api_visibility="private")
    assert heard == [("compat_twice", "public"), ("compat_twice", "private")]
    assert {f.api_name for f in gradio_compat.event_functions(blocks)} == {"compat_twice", "compat_twice_1"}
    with gr.Blocks():  # closed: nothing more is heard
        gr.Button().click(lambda: None, None, None, api_name="compat_after")
    assert len(heard) == 2


@pytest.mark.parametrize("payload", [None, "abc"])
def test_gradio_still_refuses_an_unreadable_slider_value_itself(payload):
    """`ui.harden` rewords what a component's own preprocess raises: it must still raise."""
    with pytest.raises(Exception):
        gr.Slider(0, 1).preprocess(payload)
