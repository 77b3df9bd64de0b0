"""What the gallery relies on in gradio's inner workings, kept in one file so that a gradio
upgrade has one place to re-check. Each entry says the gradio version it was read against;
`tests/test_gradio_compat.py` fails if gradio changes under it."""

from __future__ import annotations

import copy

CHECKED_WITH = "6.31.0"  # the gradio release every entry below was read against


def fresh_copy(outputs):
    """A copy of a handler's outputs for one visitor, from an answer kept in memory.

    gradio 6.31 consumes the `gr.update(...)` dicts a handler returns: `postprocess_update_dict`
    (gradio/blocks.py) pops their "value" before sending it. An answer handed out twice from
    memory therefore reaches the second visitor without its values: empty charts, candidate
    buttons reading gradio's default "Run". Every hand-out from memory gets its own copy."""
    return copy.deepcopy(outputs)
