"""A corpus of bad inputs, made on the fly (nothing big is committed), by kind of API parameter.

Used by the bad-input suite (tests/test_bad_inputs.py) and the load test (benchmarks/load_test.py).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_IMAGE = ROOT / "assets" / "images" / "chelsea-the-cat.jpg"
SECOND_IMAGE = ROOT / "assets" / "images" / "coffee.jpg"

BAD_STRINGS = {
    "empty": "",
    "spaces": "   \n\t ",
    "huge": "the cat sat on the mat. " * 850,  # ~20k characters
    "control": "a\x00b\x07c\x1b[31mred\x1b[0m\r\n\u202e",
    "html": '<img src=x onerror="alert(1)"><script>alert(2)</script>**bold** [link](javascript:x)',
    "emoji-rtl-cjk": "🙂🚀👩🏽‍🔬 مرحبا بالعالم 日本語のテキスト 한국어",
}
# (NaN cannot be sent: gradio_client's JSON encoder refuses it before anything leaves the client.)
BAD_NUMBERS = {
    "negative": -1,
    "zero": 0,
    "huge": 1e9,
    "minus-huge": -1e9,
    "wrong-type": "abc",
}
# Every kind of input component the app's API takes, and the kind of bad value the suite sends it
# (tests/test_bad_inputs.py `_kind`; tests/test_contract.py checks that both agree and that no
# component of the API is missing here). "other": no bad values are sent, for the reason given.
COMPONENT_KINDS = {
    "textbox": "string",
    "api": "string",  # a `gr.api` function's text parameter
    "slider": "number",
    "number": "number",
    "dropdown": "choice",
    "radio": "choice",
    "image": "image",
    "imageeditor": "imageeditor",
    "file": "files",
    "checkbox": "other",  # true / false; not driven yet
    "checkboxgroup": "other",  # a list of listed choices; not driven yet
    "dataframe": "other",  # a table a handler sent earlier (the candidates, the score table); not driven yet
    "json": "other",  # the page's own state between events; not driven yet
    "barplot": "other",  # a chart's data read back by a later event; not driven yet
}
BAD_CHOICES = {
    "unknown": "definitely not an option",
    "path": "../../../etc/passwd",
    "model-id": "facebook/opt-125m",
    "url": "http://127.0.0.1:9/x.bin",
}


def make_bad_images(folder: Path) -> dict[str, Path]:
    """Write each awkward picture a visitor's phone or browser could send; -> name: path."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}

    def save(name: str, image: Image.Image, **kw) -> None:
        path = folder / name
        image.save(path, **kw)
        out[path.stem] = path

    gradient = np.linspace(0, 255, 64 * 48, dtype=np.uint8).reshape(48, 64)
    save("one-pixel.png", Image.new("RGB", (1, 1), (200, 30, 30)))
    save("wide-10000x200.png", Image.new("RGB", (10000, 200), (30, 120, 200)))
    save("huge-60mp.png", Image.new("L", (7800, 7800), 128))  # 60.8 MP, small file
    save("rgba.png", Image.fromarray(np.dstack([gradient] * 3 + [gradient[::-1]]), "RGBA"))
    save("cmyk.jpg", Image.new("CMYK", (64, 48), (0, 200, 200, 0)))
    save("sixteen-bit.png", Image.fromarray((gradient.astype(np.uint16) * 257)))
    palette = Image.fromarray(gradient // 16).convert("P")
    save("palette-transparent.png", palette, transparency=0)
    frames = [Image.new("RGB", (40, 30), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    path = folder / "animated.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    out["animated"] = path
    buffer = io.BytesIO()
    Image.fromarray(np.dstack([gradient] * 3)).save(buffer, "PNG")
    (folder / "truncated.png").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 3])
    out["truncated"] = folder / "truncated.png"
    (folder / "not-an-image.png").write_text("this is a text file wearing a .png name\n")
    out["not-an-image"] = folder / "not-an-image.png"
    return out


def good_value(param: dict, index: int, cheapest: bool = False):
    """A value the endpoint should accept for this parameter: its default, else a plain one.
    `cheapest`: a slider at its smallest value instead (gradio's example input for a slider is its
    minimum): the fewest tokens, steps, questions and pixels, for a sweep that calls every endpoint
    hundreds of times to see how it answers, not what."""
    from gradio_client import handle_file

    component = param["component"].lower()
    if cheapest and component == "slider" and "example_input" in param:
        return param["example_input"]
    if param.get("parameter_has_default") and param.get("parameter_default") is not None:
        return param["parameter_default"]
    if component == "image":
        return handle_file(str(EXAMPLE_IMAGE))
    if component == "imageeditor":
        picture = handle_file(str(EXAMPLE_IMAGE))
        return {"background": picture, "layers": [], "composite": picture}
    if component == "file":
        return [handle_file(str(EXAMPLE_IMAGE)), handle_file(str(SECOND_IMAGE))]
    enum = param.get("type", {}).get("enum")
    if enum:
        return enum[0]
    if component in ("textbox", "api", "markdown"):
        # label lists get two labels; other texts differ per parameter (e.g. few-shot class names)
        return "cat, dog" if "label" in param["parameter_name"] else f"a small cat {index}"
    return None


def good_args(spec: dict, cheapest: bool = False) -> list:
    """Arguments for a good request to an endpoint described by `client.view_api(...)`."""
    return [good_value(p, i, cheapest) for i, p in enumerate(spec["parameters"])]


def kind_of(param: dict) -> str:
    """How the suite drives an API parameter: string, number, choice, image, imageeditor, files or other."""
    component = param["component"].lower()
    if component in ("textbox", "api") and "str" in param["python_type"]["type"]:
        return "string"
    if component in ("slider", "number"):
        return "number"
    if component in ("dropdown", "radio"):
        return "choice"
    if component in ("image", "imageeditor"):
        return component
    if component == "file":
        return "files"
    return "other"
