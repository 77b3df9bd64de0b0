"""Every API endpoint of the launched gallery, fed bad input straight through gradio_client.

For each endpoint the parameters are discovered from the app's own API description; each bad value
replaces the parameters of its kind (the others keep good values: sliders at their smallest, so
the hundreds of calls cost the fewest tokens and steps). Each reply must be a clear
message (a `gr.Error` the code raised on purpose) or a sensible result, never a traceback or
gradio's generic "an exception was raised" reply; afterwards the same endpoint must still answer a
good request. Failures are collected and reported together.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from tests.support.bad_inputs import (
    kind_of,
    BAD_CHOICES,
    BAD_NUMBERS,
    BAD_STRINGS,
    good_args,
    make_bad_images,
)

pytestmark = pytest.mark.slow  # every endpoint, every bad value: minutes

CALL_TIMEOUT_S = 180
GENERIC_ERROR = "has not enabled verbose error reporting"  # gradio's reply to an unhandled exception


@pytest.fixture(scope="module")
def endpoints(client):
    api = client.view_api(print_info=False, return_format="dict")
    return api["named_endpoints"]


@pytest.fixture(scope="module")
def bad_images(tmp_path_factory):
    return make_bad_images(tmp_path_factory.mktemp("bad-images"))


def _call(client, endpoint: str, args: list):
    """-> ("ok", result) | ("error", message); raises on a hang."""
    job = client.submit(*args, api_name=endpoint)
    try:
        return "ok", job.result(timeout=CALL_TIMEOUT_S)
    except AppError as error:
        return "error", str(error)
    except (FutureTimeout, TimeoutError):
        job.cancel()
        return "hang", f"no answer within {CALL_TIMEOUT_S} s"


def _problem(status: str, payload) -> str | None:
    text = str(payload)
    if status == "hang":
        return text
    if "Traceback (most recent call last)" in text or 'File "/' in text:
        return "traceback in the reply: " + text[:200]
    if status == "error" and (GENERIC_ERROR in text or not text.strip() or text == "None"):
        return "unhandled exception (gradio's generic error): " + text[:120]
    return None


# endpoint -> the kind of answer a good request gets from a fresh visitor (asked once, not per kind)
_GOOD_ANSWER: dict[str, str] = {}
VISITORS_AT_ONCE = 4  # endpoints driven at the same time, each by a visitor of its own


def _drive_endpoint(client, name: str, spec: dict, kind: str, values: dict, before: str | None) -> list[str]:
    """Every bad value of `kind` into `name` (all its parameters of that kind at once), then the
    good request again, which must get the kind of answer it got before."""
    params = spec["parameters"]
    targets = [i for i, p in enumerate(params) if kind_of(p) == kind]
    base = good_args(spec, cheapest=True)
    if before is None:
        before = _call(client, name, base)[0]
    failures = []
    for label, value in values.items():
        args = list(base)
        for index in targets:
            args[index] = value
        status, payload = _call(client, name, args)
        problem = _problem(status, payload)
        if problem:
            names = ",".join(params[i]["parameter_name"] for i in targets)
            failures.append(f"{name} {names}={label}: {problem}")
    # Still answering: the good request gets the same kind of answer as before the bad ones
    # (some endpoints answer "press Reveal first" by design until another event has run).
    after, payload = _call(client, name, base)
    if after != before:
        failures.append(f"{name}: a good request got {after!r} (was {before!r}): {str(payload)[:200]}")
    return failures


def _drive(app_url: str, endpoints: dict, kind: str, values: dict) -> list[str]:
    """Per endpoint with a parameter of this kind, a visitor of its own (a fresh session, so
    no endpoint sees another's state), several endpoints at once as a room would send them."""
    from gradio_client import Client

    def one(name: str) -> list[str]:
        visitor = Client(app_url, verbose=False, download_files=False)
        try:
            if name not in _GOOD_ANSWER:  # once per endpoint (a model call each), not per kind
                _GOOD_ANSWER[name] = _call(visitor, name, good_args(endpoints[name], cheapest=True))[0]
            return _drive_endpoint(visitor, name, endpoints[name], kind, values, _GOOD_ANSWER[name])
        finally:
            visitor.close()

    names = [n for n, spec in endpoints.items() if any(kind_of(p) == kind for p in spec["parameters"])]
    with ThreadPoolExecutor(VISITORS_AT_ONCE) as pool:
        return [failure for failures in pool.map(one, names) for failure in failures]


def test_strings(app_url, endpoints):
    values = dict(BAD_STRINGS, none=None, **{"wrong-type": 12345})
    failures = _drive(app_url, endpoints, "string", values)
    assert not failures, "\n".join(failures)


def test_numbers(app_url, endpoints):
    values = dict(BAD_NUMBERS, none=None)
    failures = _drive(app_url, endpoints, "number", values)
    assert not failures, "\n".join(failures)


def test_choices(app_url, endpoints):
    values = dict(BAD_CHOICES, none=None)
    failures = _drive(app_url, endpoints, "choice", values)
    assert not failures, "\n".join(failures)


def test_images(app_url, endpoints, bad_images):
    plain = {name: handle_file(str(path)) for name, path in bad_images.items()}
    plain["none"] = None
    editor = {
        name: {"background": handle_file(str(path)), "layers": [], "composite": handle_file(str(path))}
        for name, path in bad_images.items()
    }
    editor["none"] = None
    editor["no-background"] = {"background": None, "layers": [], "composite": None}
    failures = _drive(app_url, endpoints, "image", plain)
    failures += _drive(app_url, endpoints, "imageeditor", editor)
    files = {name: [value] for name, value in plain.items() if value is not None}
    files["empty-list"] = []
    files["none"] = None
    failures += _drive(app_url, endpoints, "files", files)
    assert not failures, "\n".join(failures)


def test_room_endpoints_from_a_page_in_a_room(app_url, endpoints):
    """The room endpoints again, from a page that opened a room and holds its key (the shared
    client is in no room, so there they mostly do nothing): every bad guess, code, key or model
    gets a plain answer, and the room still counts a good guess afterwards."""
    from gradio_client import Client

    page = Client(app_url, verbose=False, download_files=False)
    try:
        code, key, *_ = page.predict(api_name="/room_open")
        in_room = {n: s for n, s in endpoints.items()
                   if n.startswith("/room_") and n not in ("/room_close", "/room_leave")}
        assert {"/room_word_guess", "/room_strategy_vote", "/room_word_view", "/room_reset"} <= set(in_room)
        failures = []  # one after another on this page: its session holds the room's key
        kinds = {"string": dict(BAD_STRINGS, none=None, **{"wrong-type": 12345}),
                 "choice": dict(BAD_CHOICES, none=None)}
        for name, spec in in_room.items():
            driven = [kind for kind in kinds if any(kind_of(p) == kind for p in spec["parameters"])]
            before = _call(page, name, good_args(spec, cheapest=True))[0] if driven else None  # /room_open: no input
            for kind in driven:
                failures += _drive_endpoint(page, name, spec, kind, kinds[kind], before)
        assert not failures, "\n".join(failures)
        page.predict(key, api_name="/room_reset")
        assert "counted" in page.predict("The cat sat on the", "mat", api_name="/room_word_guess")
        bars, _ = page.predict("The cat sat on the", api_name="/room_word_view")
        assert bars["data"] == [["mat", 1.0]]
    finally:
        page.close()


def test_server_still_serves_a_correct_answer_after_everything(client, endpoints):
    # A real check of correctness, not just liveness: the CLIP zero-shot probabilities sum to one.
    name = next(n for n in endpoints if "zero_shot" in n)
    args = good_args(endpoints[name], cheapest=True)
    status, result = _call(client, name, args)
    assert status == "ok", result
    label = result[0] if isinstance(result, (list, tuple)) else result
    confidences = [c["confidence"] for c in label["confidences"]]
    assert math.isclose(sum(confidences), 1.0, rel_tol=1e-3)
