"""What the gallery relies on in gradio's inner workings, kept in one file so that a gradio
upgrade has one place to re-check. Each entry names the gradio file it was read in; all were read
against CHECKED_WITH, and `tests/test_gradio_compat.py` fails if gradio changes under any of them
(first of all when another gradio version is installed: re-check each entry, then raise it).

Everything else in the gallery uses gradio's documented API only.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
from typing import Callable, Iterator

import gradio as gr

CHECKED_WITH = "6.31.0"  # the gradio release every entry below was read against


# --- 1. gradio consumes the updates a handler returns ----------------------------------------------
def fresh_copy(outputs):
    """A copy of a handler's outputs for one visitor, from an answer kept in memory.

    gradio 6.31 consumes the `gr.update(...)` dicts a handler returns: `postprocess_update_dict`
    (gradio/blocks.py) pops their "value" before sending it. An answer handed out twice from
    memory therefore reaches the second visitor without its values: empty charts, candidate
    buttons reading gradio's default "Run". Every hand-out from memory gets its own copy."""
    return copy.deepcopy(outputs)


# --- 2. a session is served from a copy of a component --------------------------------------------
# Once a handler (or an example) sends a component an update, gradio serves that session from a new
# instance, `block.__class__(**constructor_args)` (gradio/blocks.py, `Blocks.postprocess_data`).
# What the gallery sets on a component must therefore live on its class or in its constructor
# arguments: an attribute or a method patched on the instance is lost on that copy.
_WRAPPED = "_gallery_wrapped"


def wrap_preprocess(cls: type, wrap: Callable[[Callable], Callable]) -> None:
    """Replace `cls.preprocess` by `wrap(cls.preprocess)`, once per class (`ui.harden`: unreadable
    values in plain words). On the class, not the instance, for the per-session copy above."""
    if getattr(cls.__dict__.get("preprocess"), _WRAPPED, False):
        return
    wrapped = functools.wraps(cls.preprocess)(wrap(cls.preprocess))
    setattr(wrapped, _WRAPPED, True)
    cls.preprocess = wrapped


def set_constructor_arg(component: gr.components.Component, name: str, value) -> None:
    """Set a constructor argument of a built component (its `key`, for `inputs.pass_raw`) so that
    the per-session copy, built from `constructor_args`, has it too."""
    setattr(component, name, value)
    component.constructor_args[name] = value


# --- 3. the app being built ---------------------------------------------------------------------
def root_block() -> gr.Blocks | None:
    """The outermost `gr.Blocks` being built now (None outside a `with gr.Blocks()`): gradio keeps
    it in `Context.root_block` (gradio/context.py). The room panel and the links it shares are
    kept per app by it."""
    from gradio.context import Context

    return Context.root_block


# --- 4. gr.Examples' click --------------------------------------------------------------------------
def example_click(examples: gr.Examples):
    """The event that loads a clicked example into its inputs (`gr.Examples.load_input_event`,
    gradio/helpers.py; set when the examples are not cached), to chain the example's answer on."""
    return examples.load_input_event


# --- 5. the events of a built app ---------------------------------------------------------------
def components(blocks: gr.Blocks) -> list:
    """Every block of a built app (`Blocks.blocks`, gradio/blocks.py: id -> block)."""
    return list(blocks.blocks.values())


def event_functions(blocks: gr.Blocks) -> list:
    """Every registered event of a built app (`Blocks.fns`: id -> BlockFunction, whose `fn` is the
    Python function, None for a browser-only event, and `name`, `api_name`, `api_visibility`,
    `concurrency_id`, `concurrency_limit`, `outputs` are as declared)."""
    return list(blocks.fns.values())


def replace_function(block_fn, fn: Callable) -> None:
    """Run `fn` in place of a registered event's function (one gradio registers itself, which
    the gallery cannot decorate where it is declared)."""
    block_fn.fn = fn


# --- 6. for the tests ---------------------------------------------------------------------------
@contextlib.contextmanager
def declared_events(on_declared: Callable[[Callable | None, object, str], None]) -> Iterator[None]:
    """While open, `on_declared(fn, api_name, api_visibility)` hears of every event as it is
    declared, before gradio makes its api_name unique (a second `x` is served as `x_1` without a
    word): every event goes through `BlocksConfig.set_event_trigger` (gradio/blocks.py)."""
    from gradio.blocks import BlocksConfig

    real = BlocksConfig.set_event_trigger
    signature = inspect.signature(real)

    def set_event_trigger(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        on_declared(bound.arguments["fn"], bound.arguments["api_name"], bound.arguments["api_visibility"])
        return real(self, *args, **kwargs)

    BlocksConfig.set_event_trigger = set_event_trigger
    try:
        yield
    finally:
        BlocksConfig.set_event_trigger = real


def session_copy(blocks: gr.Blocks, block_fn, component, update):
    """The instance gradio serves one session from once `block_fn`'s handler sent `component`
    `update` (a single output): gradio's own postprocessing builds it, as in section 2."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from gradio.state_holder import SessionState

    state = SessionState(blocks)
    # In a thread of its own: the browser tests' playwright keeps an event loop running in this one.
    with ThreadPoolExecutor(1) as worker:
        worker.submit(asyncio.run, blocks.postprocess_data(block_fn, update, state)).result()
    return state[component._id]
