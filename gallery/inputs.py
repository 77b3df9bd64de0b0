"""What the gallery does with a value a visitor, or an API call, sends: one policy for every tab.

Every handler reads its values through these helpers, because gradio's own checks are not
enough: gradio refuses a slider value out of its range or a choice not on a dropdown's list
(`ui.harden` then names the input), but lets NaN through; the events that must not fail a shared
batch take raw values (`preprocess=False`, `pass_raw`); and tests and benchmarks call handlers
directly. The rule: a value that still says what was meant is used, clamped, with a note
the page shows; a value that says nothing usable is refused in plain words.

Clamped with a note (the request runs):
- a number outside its range, ±infinity included: "Steps 99 is outside 1–4; 4 was used.";
- a number that must be a multiple (a picture side for the VAE): the nearest one
  ("Width 70 is not a multiple of 8; 72 was used.");
- a number that is missing or no number (None, "", "abc", NaN): its default is used
  ("Guidance None is not a number; …", "The seed was not a number ('abc'); …");
- a seed outside 0..MAX_SEED or not whole ("Seeds are whole numbers from 0 to 4294967295.");
  none given: a fresh one is drawn (with a note where no seed box shows it, `note_drawn`);
- text longer than its cap where a shorter text still makes sense (`text(..., cut=True)`).
Refused with an InputError (nothing runs):
- required text that is empty, or too long where cutting it would change what was asked;
- a picture that cannot be read (`Unreadable`, what `picture_input` hands over instead of failing);
- a choice that is not on its list (`choice()`), and values a tab's lesson calls meaningless (a negative
  temperature), each checked where the tab knows it;
- a number that is no number where the result is *about* that number (`finite()`: the
  next-word bars show what a temperature does; bars for a default would answer another question).

Seeds: one range (0..2**32-1), one source of randomness (`secrets`), and the seed actually used is
returned, so that a result can be reproduced.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass

import gradio as gr
from PIL import Image

from gallery import gradio_compat
from gallery.errors import InputError
from gallery.images import to_rgb

MAX_SEED = 2**32 - 1  # torch.Generator takes any 64-bit seed; 32 bits are easier to read aloud


def _shown(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def number(value, name: str, low: float, high: float, default: float, notes: list[str], *,
           integer: bool = False, multiple: int = 0, why: str = "") -> float:
    """A number for `name` in [low, high] (and, with `multiple`, a multiple of it); anything else
    is clamped, rounded or replaced, with a note (`why`, when given, says in a few words where
    the range comes from). Every clamped-number note of the gallery is written here."""
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        x = math.nan
    if math.isnan(x):
        if value is None or value == "":
            notes.append(f"{name} {value!r} is not a number; {_shown(default)} was used.")
        else:
            notes.append(f"{name} was not a number ({str(value)[:40]!r}); {_shown(default)} was used.")
        x = float(default)
    elif not low <= x <= high:
        clamped = min(max(x, low), high)
        reason = f" ({why})" if why else ""
        notes.append(f"{name} {_shown(x)} is outside {_shown(low)}–{_shown(high)}{reason}; {_shown(clamped)} was used.")
        x = clamped
    if multiple and x % multiple:
        rounded = round(x / multiple) * multiple
        rounded += multiple * ((rounded < low) - (rounded > high))  # the nearest multiple inside the range
        notes.append(f"{name} {_shown(x)} is not a multiple of {multiple}; {_shown(rounded)} was used.")
        x = rounded
    return int(round(x)) if integer else x


def finite(value, name: str) -> float:
    """A number the result is about: no default can stand in for it, so anything else is refused."""
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{name} must be a number (got {str(value)[:40]!r}).") from None
    if not math.isfinite(x):
        raise InputError(f"{name} must be a finite number (got {value!r}).")
    return x


def seed(value, notes: list[str], *, draw: bool = False, default: int = 0, name: str = "Seed",
         note_drawn: bool = False) -> int:
    """The seed to use: a fresh one (from `secrets`) when `draw` is set or none was given; else
    `value` as a whole number in 0..MAX_SEED (clamped with a note; `default` when it is no
    number). Return it, so that the page shows it and the result can be reproduced (a tab with
    no seed box to show it in sets `note_drawn`: a seed drawn for a missing one gets a note)."""
    if draw or value is None or value == "":
        drawn = secrets.randbelow(MAX_SEED + 1)
        if note_drawn and not draw:
            notes.append(f"No {name.lower()} was given; {drawn} was drawn.")
        return drawn
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        x = math.nan
    if not math.isfinite(x):
        notes.append(f"{name} was not a number ({str(value)[:40]!r}); {default} was used.")
        return default
    used = int(min(max(round(x), 0), MAX_SEED))
    if used != x:
        notes.append(f"{name} {_shown(x)} is outside 0–{MAX_SEED} or not whole; {used} was used. "
                     f"Seeds are whole numbers from 0 to {MAX_SEED}.")
    return used


def as_text(value) -> str:
    """Whatever the API sent for a text field, as a string (None -> "", 42 -> "42")."""
    return "" if value is None else value if isinstance(value, str) else str(value)


def text(value, what: str, max_chars: int, notes: list[str] | None = None, *, required: bool = True,
         cut: bool = False, example: str = "") -> str:
    """Text for `what` (e.g. "prompt"), stripped. Empty: refused when `required` ("" otherwise).
    Longer than `max_chars`: cut with a note when `cut` (and `notes` given), else refused."""
    shown = as_text(value).strip()
    if not shown and required:
        hint = f", e.g. “{example}”" if example else ""
        raise InputError(f"Type a {what} first{hint}.")
    if len(shown) > max_chars:
        if cut and notes is not None:
            notes.append(f"The {what} was cut to {max_chars:,} characters.")
            return shown[:max_chars]
        raise InputError(
            f"That {what} is {len(shown):,} characters long; this demo takes up to {max_chars:,}. "
            "Please shorten it."
        )
    return shown


# Components whose unreadable values reach the handler: their gradio `key` -> what they hand over.
_RAW: dict[str, object] = {}


def choice(value, choices, what: str) -> str:
    """`value` when it is one of `choices`; else refused, naming them ("Unknown mask 'x'. Pick
    one of: …")."""
    if any(value == c for c in choices):
        return value
    raise InputError(f"Unknown {what} {str(value)[:40]!r}. Pick one of: {', '.join(map(str, choices))}.")


def pass_raw(component, on_error=None):
    """Let `component`'s own preprocessing fail softly: over the API, gradio would answer a NaN
    seed or an out-of-range slider with an error naming no field. Instead the raw value (or
    `on_error(error)`) reaches the handler, which applies this policy to it.

    The mark is the component's gradio `key`, a constructor argument: gradio rebuilds a
    component per session from its constructor arguments once a handler or an example sends it
    an update (`gradio_compat`, section 2), and that copy keeps its key. Call
    it where the component is built, before a gr.Examples uses it (an example's update carries
    the props gr.Examples saw, key included). `ui.harden`'s
    class-level preprocess reads the mark (`raw_policy`). (Gradio's own `validator=` runs on
    values already preprocessed, so it cannot take this place.)"""
    if component.key is not None:
        raise ValueError(f"pass_raw marks a component through its key; {component!r} already has one.")
    key = f"gallery-pass-raw-{len(_RAW)}"
    _RAW[key] = on_error
    gradio_compat.set_constructor_arg(component, "key", key)  # the per-session copy is built from these
    return component


def raw_policy(component):
    """None for a component whose unreadable values are refused; else a function
    (error, payload) -> what its handler gets instead."""
    key = getattr(component, "key", None)
    if not isinstance(key, str) or key not in _RAW:
        return None
    on_error = _RAW[key]
    return lambda error, payload: on_error(error) if on_error else payload


# --- pictures --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Unreadable:
    """What a picture input hands over for an upload that is no picture: the reason, in words."""

    reason: str


def unreadable(error: Exception) -> Unreadable:
    return Unreadable(f"That file could not be read as a picture ({type(error).__name__}). Try a PNG or JPEG.")


def picture_input(component_class=gr.Image, **kwargs):
    """A picture input (gr.Image by default, gr.ImageMask too) of any file mode whose
    preprocessing does not fail on a file it cannot open (a text file named .png, a cut-off
    upload): it hands over `Unreadable`, which `picture()` refuses in plain words. In a batch,
    gradio's own failure would stop everyone's request. (Marked with `pass_raw`, no subclass:
    gradio writes a .pyi file next to any module that defines a component subclass.)"""
    kwargs.setdefault("image_mode", None)  # keep the file's own mode; to_rgb reads them all
    # PIL's UnidentifiedImageError, OSError on a cut-off file... -> Unreadable
    return pass_raw(component_class(**kwargs), on_error=unreadable)


def picture(value, what: str) -> Image.Image:
    """Any upload (path, PIL image, array, any mode) -> an RGB picture, or InputError in plain words."""
    if isinstance(value, Unreadable):
        raise InputError(value.reason)
    return to_rgb(value, what=what)


def notes_markdown(notes: list[str], bullet: str = "- ") -> str:
    """Notes -> Markdown lines for the page (empty notes dropped)."""
    return "\n".join(f"{bullet}{note}" for note in notes if note)
