"""The one policy for visitor values (gallery.inputs): clamped with a note, or refused in plain words."""

import math

import pytest
from PIL import Image

from gallery import inputs
from gallery.errors import InputError

pytestmark = pytest.mark.no_models  # plain functions: no model, no app


def test_numbers_are_clamped_or_defaulted_with_one_wording():
    notes = []
    assert inputs.number(99, "Steps", 1, 4, 2, notes, integer=True) == 4
    assert inputs.number(-math.inf, "Guidance", 0, 10, 0, notes) == 0  # infinity is out of range, not unreadable
    assert inputs.number("abc", "The size", 64, 512, 256, notes) == 256
    assert inputs.number(None, "Guidance", 0, 10, 7.5, notes) == 7.5
    assert inputs.number(float("nan"), "Ratio", 0, 1, 0.75, notes) == 0.75
    assert notes == [
        "Steps 99 is outside 1–4; 4 was used.",
        "Guidance -inf is outside 0–10; 0 was used.",
        "The size was not a number ('abc'); 256 was used.",
        "Guidance None is not a number; 7.5 was used.",
        "Ratio was not a number ('nan'); 0.75 was used.",
    ]
    quiet = []
    assert inputs.number("3", "Steps", 1, 4, 2, quiet, integer=True) == 3 and quiet == []


def test_seeds_have_one_range_and_the_drawn_one_is_returned():
    notes = []
    assert inputs.seed(-5, notes) == 0 and "Seeds are whole numbers from 0 to 4294967295" in notes[0]
    assert inputs.seed(2**40, notes) == 2**32 - 1 == inputs.MAX_SEED
    assert inputs.seed("x", notes, default=7) == 7 and "was not a number" in notes[-1]
    quiet = []
    assert inputs.seed(1234, quiet) == 1234 and quiet == []
    drawn = {inputs.seed(None, quiet) for _ in range(20)} | {inputs.seed(5, quiet, draw=True) for _ in range(20)}
    assert len(drawn) > 30 and all(0 <= s <= inputs.MAX_SEED for s in drawn) and quiet == []


def test_sides_are_rounded_to_their_multiple_and_choices_off_the_list_refused():
    notes = []
    assert inputs.number(70, "Width", 64, 512, 256, notes, integer=True, multiple=8) == 72
    assert inputs.number(5000, "Height", 64, 516, 256, notes, integer=True, multiple=8) == 512
    assert inputs.number(518, "Side", 63, 518, 256, [], integer=True, multiple=8) == 512  # 520 is past 518
    assert inputs.number(63, "Side", 63, 518, 256, [], integer=True, multiple=8) == 64  # 56 is below 63
    assert notes == [
        "Width 70 is not a multiple of 8; 72 was used.",
        "Height 5000 is outside 64–516; 516 was used.",
        "Height 516 is not a multiple of 8; 512 was used.",
    ]
    assert inputs.choice("top half", ["top half", "bottom half"], "mask") == "top half"
    for bad in ("sideways", None, ["top half"]):
        with pytest.raises(InputError, match=r"Unknown mask .*\. Pick one of: top half, bottom half\."):
            inputs.choice(bad, ["top half", "bottom half"], "mask")
    drawn_notes = []
    drawn = inputs.seed(None, drawn_notes, note_drawn=True)
    assert drawn_notes == [f"No seed was given; {drawn} was drawn."]
    assert inputs.seed(3, drawn_notes, note_drawn=True, draw=True) >= 0 and len(drawn_notes) == 1  # asked for: no note


def test_text_is_capped_and_required_text_refused():
    with pytest.raises(InputError, match="Type a prompt first"):
        inputs.text("   ", "prompt", 10)
    assert inputs.text(None, "prompt", 10, required=False) == ""
    assert inputs.text(42, "question", 10) == "42"  # a number sent over the API is read as text
    with pytest.raises(InputError, match="11 characters long; this demo takes up to 10"):
        inputs.text("x" * 11, "prompt", 10)
    notes = []
    assert inputs.text("x" * 11, "prompt", 10, notes, cut=True) == "x" * 10 and "cut to 10" in notes[0]


def test_any_picture_mode_is_read_and_an_unreadable_one_refused():
    rgba = Image.new("RGBA", (16, 16), (255, 0, 0, 0))  # fully transparent: white on a viewer
    assert inputs.picture(rgba, "a photo").getpixel((0, 0)) == (255, 255, 255)
    with pytest.raises(InputError, match="could not be read as a picture"):
        inputs.picture(inputs.unreadable(OSError("cut off")), "a photo")
    assert inputs.notes_markdown(["a", "", "b"]) == "- a\n- b"
