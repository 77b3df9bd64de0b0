"""The page shell shared by every tab: theme and CSS, the lesson box, the model-status banner,
and the error path: `user_errors`, on every event handler, turns any failure inside it into a
plain-words toast; `harden` checks that each handler has it and rewords unreadable values."""

from __future__ import annotations

import functools
import inspect
import logging
import re
from pathlib import Path

import gradio as gr

from gallery import catalog, gradio_compat, settings
from gallery.errors import InputError, ModelUnavailable
from gallery.inputs import raw_policy
from gallery.lru import LRU

log = logging.getLogger("gallery")

ASSETS = Path(__file__).resolve().parent.parent / "assets"
TEXT_DIR = ASSETS / "text"

THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="pink")
CSS = """
.lesson { font-size: 0.95rem; }
.lesson-summary { font-size: 0.95rem; }
.lesson-summary p { margin: 0; }
.button-reason { font-size: 0.85rem; color: #92400e; }
.banner-warning { border-left: 4px solid #f59e0b; padding: 0.4rem 0.8rem; background: #fffbeb; }
.banner-error { border-left: 4px solid #dc2626; padding: 0.4rem 0.8rem; background: #fef2f2; }
.banner-note, .banner-note * { font-size: 0.85rem !important; color: #57534e; }
#gallery-intro h2 { margin-bottom: 0.2rem; }
.room-projector { display: flex; flex-wrap: wrap; gap: 1.5rem; align-items: center; }
.room-qr svg { width: 220px; height: 220px; }
.room-code { font: 800 4.5rem/1.1 ui-monospace, monospace; letter-spacing: 0.25em; }
.room-code-label, .room-link { font-size: 1rem; color: #57534e; word-break: break-all; }
.room-warning { font-size: 0.9rem; color: #92400e; max-width: 36rem; }
/* A phone (390 px wide): the header stacks instead of squeezing the title into a narrow column
   beside the Share button, the intro and the small notes shrink, and the tab's inputs come
   sooner on the first screen. */
@media (max-width: 640px) {
  #gallery-header { flex-direction: column; gap: 0.3rem; }
  #gallery-header > * { width: 100%; min-width: 0 !important; }
  #gallery-intro h2 { font-size: 1.2rem !important; }
  #gallery-intro p, #gallery-intro em { font-size: 0.8rem !important; line-height: 1.3 !important; }
  .lesson-summary, .lesson-summary * { font-size: 0.8rem !important; line-height: 1.35 !important; }
  .banner-note, .banner-note * { font-size: 0.72rem !important; line-height: 1.3 !important; }
  .keep-together { flex-wrap: nowrap !important; }
}
"""


def lesson(name: str, summary: str = "", title: str = "The idea in full", open: bool = False) -> gr.Accordion:
    """The tab's lesson: a two- or three-line `summary` above the demo (by default the first
    paragraph of `assets/text/<name>.md`), and the whole text one click away, folded."""
    path = TEXT_DIR / f"{name}.md"
    text = path.read_text(encoding="utf-8").strip() if path.is_file() else ""
    if not text:  # a tab without its lesson is a packaging mistake: fail the build, not show a blank box
        raise FileNotFoundError(f"The lesson text assets/text/{name}.md is missing or empty.")
    summary = summary or text.strip().split("\n\n")[0]
    gr.Markdown(summary, elem_id=f"{name}-lesson-summary", elem_classes=["lesson-summary"])
    with gr.Accordion(title, open=open, elem_id=f"{name}-lesson", elem_classes=["lesson-box"]) as box:
        gr.Markdown(text, elem_classes=["lesson"], elem_id=f"{name}-lesson-text")
    return box


def bring_into_view(trigger, elem_id: str) -> None:
    """When `trigger` fires (e.g. `button.click`), scroll the page just enough that `#elem_id`
    (the main result) is on screen: its loading bar, then the result, show where the visitor looks.
    The result often grows once it arrives (a label list, a picture, a chart), so for the next
    30 s the page follows its size, until the visitor scrolls, types or touches the page.
    Runs in the browser only (no server call)."""
    js = """() => {
      const el = document.getElementById(%r);
      if (!el) return;
      // Centred when it is not wholly in view: a chart's rotated labels hang below its box.
      const show = () => {
        const r = el.getBoundingClientRect();
        if (r.top >= 0 && r.bottom + 60 <= window.innerHeight) return;
        el.scrollIntoView({behavior: 'auto', block: r.height + 120 > window.innerHeight ? 'start' : 'center'});
      };
      show();
      const watch = new ResizeObserver(show);
      watch.observe(el);
      const stop = () => {
        watch.disconnect();
        ['wheel', 'touchstart', 'keydown'].forEach((kind) => window.removeEventListener(kind, stop));
      };
      ['wheel', 'touchstart', 'keydown'].forEach((kind) => window.addEventListener(kind, stop, {passive: true}));
      setTimeout(stop, 30000);
    }""" % elem_id
    trigger(None, None, None, js=js, queue=False, api_visibility="private")


def loading_notice(triggers: list, role: str, model: gr.Dropdown, note: gr.Markdown) -> None:
    """A click that must first wait for its model to load says so at once, in `note`: "Loading
    <model> (first use, about N s)…"; the request's own answer then takes its place. Nothing is
    sent when the model is already loaded. Runs outside the queue: it answers in milliseconds."""
    from gallery import models  # here: models imports torch, which the page shell does not need

    @user_errors
    def on_first_use(label):
        try:
            entry = catalog.by_label(role, label)
        except Exception:  # an unknown label: the request itself refuses it in plain words
            return gr.skip()
        wait = models.first_use_wait_s(entry)
        if wait is None:
            return gr.skip()
        return f"⏳ Loading **{entry.label}** (first use, about {wait} s); your answer follows as soon as it is ready."

    gr.on(triggers, on_first_use, [model], [note], queue=False, api_visibility="private")


# --- examples that show their answer ------------------------------------------------------------
EXAMPLE_ANSWERS_KEPT = 64  # per tab: a few examples × the models and settings a room tries


def answer_examples(examples: gr.Examples, fn, inputs: list, outputs: list, lane=None):
    """Clicking an example loads it and shows its answer: computed by the tab's own handler `fn`
    (the same one the main button runs, with the page's current `inputs`) on its first click, then
    served from memory, so a room clicking the same example shares one computation, and a
    visitor without GPU quota still sees the example's answer.

    Why not gradio's example cache (`cache_examples="lazy"`): in gradio 6.31 a cached example
    whose outputs include a chart never finishes drawing, and its event runs outside the lanes.
    The answer is kept by the example's index and the page's plain settings (model, numbers,
    texts); pictures and files come from the example itself. At most EXAMPLE_ANSWERS_KEPT.
    Returns the event's handler."""
    kept = LRU(EXAMPLE_ANSWERS_KEPT)
    single = len(outputs) == 1

    def key_of(example, values) -> tuple:
        index = example[0] if isinstance(example, (tuple, list)) else example
        plain = tuple(v if isinstance(v, (str, int, float, bool, type(None))) else type(v).__name__ for v in values)
        return (index, plain)

    @user_errors
    def on_example(example, *values):
        key = key_of(example, values)
        answer = kept.get(key)
        if answer is not None:
            yield gradio_compat.fresh_copy(answer)  # gradio consumes what it is handed
            return
        answer = fn(*values)
        last = None
        for last in answer if inspect.isgenerator(answer) else [answer]:
            yield gradio_compat.fresh_copy(last)  # `last` itself stays whole, to be kept
        if last is not None:
            kept.put(key, last if single else list(last))

    on_example.__name__ = f"on_example_{getattr(fn, '__name__', 'answer')}"
    gradio_compat.example_click(examples).then(
        on_example, [examples.dataset, *inputs], outputs, api_visibility="private", **(lane or heavy())
    )
    return on_example


def missing_models(*roles: str) -> str:
    """'' when every role has a model that loads here; otherwise why not, in plain text."""
    for role in roles:
        if not catalog.available(role):
            reason = catalog.missing_reason(catalog.all_models(role)[0]) or "Its model cannot be loaded here."
            return plain_text(reason)
    return ""


def model_button(text: str, *roles: str, **kwargs) -> gr.Button:
    """The tab's main button: disabled, with the reason right below it, when its model is missing."""
    reason = missing_models(*roles)
    button = gr.Button(text, variant="primary", interactive=not reason, **kwargs)
    if reason:
        model = next(m for role in roles if not catalog.available(role) for m in catalog.all_models(role))
        gr.Markdown(
            f"Off: {model.label} is not on this machine (the note at the top of the tab says how to get it).",
            elem_classes=["button-reason"],
        )
    return button


def plain_text(message: str) -> str:
    """Markdown -> the plain words a toast shows (a toast does not render Markdown)."""
    message = re.sub(r"\*\*(.+?)\*\*", r"\1", str(message))
    message = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"\1", message)
    return message.replace("`", "")


def bar_plot(**kwargs) -> gr.BarPlot:
    """A bar chart whose bars run highest first (`sort="-y"`), for any handler that returns just
    a new DataFrame (or `gr.update(value=..., label=..., visible=...)`).

    Why handlers must never update `sort`, `y_lim`, `x`, `y`, `title`... together with a new value:
    gradio 6.31's frontend applies an update's keys one at a time with an `await` between them, and
    the server always puts `value` last (`blocks.postprocess_update_dict`). A drawing option
    arriving first makes the NativePlot re-embed its vega chart at once, from the data it still
    holds (the previous value); the new value then goes to the view being replaced, so the chart
    stays one request behind. Drawing options are therefore fixed here, at construction."""
    kwargs.setdefault("sort", "-y")
    return gr.BarPlot(**kwargs)


def model_banner(*roles: str) -> gr.Markdown:
    """A warning above a tab naming each default model that cannot be loaded here, and why; or,
    offline with the bundled text models (where everything works), a one-line note."""
    lines, offline = [], ""
    for role in roles:
        models = catalog.all_models(role)
        if not catalog.available(role):
            lines.append(catalog.missing_reason(models[0]) or "")
        elif catalog.missing_reason(models[0]) and catalog.ROLES[role].text:
            names = ", ".join(m.label.split(" (")[0] for m in catalog.EMBEDDED_MODELS)
            offline = (f"Offline: the bundled models ({names}) are offered; `{settings.PREFETCH_COMMAND}` on a "
                       "connected machine fetches the larger ones.")
    text = "\n\n".join(f"⚠️ {line}" for line in lines if line)
    if not text and offline:
        return gr.Markdown(offline, elem_classes=["banner-note"])
    return gr.Markdown(text, visible=bool(text), elem_classes=["banner-warning"])


def model_dropdown(role: str, label: str = "Model", **kwargs) -> gr.Dropdown:
    """A dropdown of the role's models that can be loaded now (first one selected)."""
    choices = [m.label for m in catalog.available(role)]
    return gr.Dropdown(choices=choices, value=choices[0] if choices else None, label=label, **kwargs)


def as_user_error(error: BaseException) -> gr.Error:
    from gallery.device import gpu_refusal, refusal_sentence

    if gpu_refusal(error):  # ZeroGPU said no (quota used up, no GPU free): one plain sentence
        return gr.Error(refusal_sentence(error), title="No GPU time left", duration=None, print_exception=False)
    # Messages are written in Markdown for the page; a toast shows them as plain text.
    if isinstance(error, gr.Error):
        error.message = plain_text(error.message)
        return error
    if isinstance(error, (InputError, ModelUnavailable)):
        return gr.Error(plain_text(str(error)), print_exception=False)
    from gallery.device import free_memory, is_out_of_memory

    if is_out_of_memory(error):
        free_memory()
        return gr.Error(
            "The model ran out of memory on this request. Memory was freed; try a smaller "
            "image, fewer steps or a shorter text.",
            print_exception=False,
        )
    log.exception("unexpected error in a handler")
    return gr.Error(
        f"Something went wrong on our side ({type(error).__name__}). Please try again; if it "
        "keeps happening, tell the organisers.",
        print_exception=False,
    )


def user_errors(fn):
    """Decorate an event handler so that every failure reaches the visitor as plain words
    (a `gr.Error` toast), never as a traceback, and the server carries on. Works on generators.
    Every handler a tab registers carries it (`harden` refuses an app with one that does not)."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as error:
                raise as_user_error(error) from None

        generator_wrapper._plain_errors = True
        return generator_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as error:
            raise as_user_error(error) from None

    wrapper._plain_errors = True
    return wrapper


_HINTS = {
    "Slider": "send a number",
    "Number": "send a number",
    "Checkbox": "send true or false",
    "Image": "send a PNG or JPEG picture",
    "ImageEditor": "send a PNG or JPEG picture as the background",
    "ImageMask": "send a PNG or JPEG picture as the background",
    "File": "send picture files",
    "Dataframe": "send a table",
}


def _plain_preprocess(original, kind: str):
    """A component class's `preprocess` (`original`) rewording an unreadable value, or, for a
    component marked `inputs.pass_raw`, handing it over as its mark says. `harden` puts it on the
    class (`gradio_compat.wrap_preprocess`), so that gradio's per-session copy has it too."""

    def preprocess(self, payload):
        try:
            return original(self, payload)
        except Exception as error:
            soft = raw_policy(self)  # marked `inputs.pass_raw`: its handler reads the value
            if soft is not None:
                return soft(error, payload)
            if isinstance(error, gr.Error):
                raise  # gradio's own clear messages, e.g. "Value 1000 is greater than maximum value 4."
            label = getattr(self, "label", None) or kind
            raise gr.Error(
                f"The value sent for “{label}” could not be read: "
                f"{_HINTS.get(kind, 'check the value sent')}.",
                print_exception=False,
            ) from None

    return preprocess


def _is_gradios_own(fn) -> bool:
    """A function gradio registers itself (gr.Examples' `load_example`, a ClearButton's state
    reset, a DeepLinkButton's wait): not ours to decorate."""
    return (getattr(inspect.unwrap(fn), "__module__", "") or "").split(".")[0] == "gradio"


def _name(fn) -> str:
    fn = inspect.unwrap(fn)
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def harden(blocks: gr.Blocks) -> None:
    """Safety net over a built app, so that no request ever gets a traceback or gradio's generic
    "an exception was raised" reply:
    - a value a component cannot read (None or "abc" for a slider, a text file sent as an image,
      straight through the API) becomes a plain message naming the input;
    - every event handler of ours must carry `@user_errors` (the one way a failure becomes plain
      words): one without it stops the build here, naming it, so a forgotten decorator fails the
      first test or start rather than a visitor's request. The functions gradio registers itself
      (`_is_gradios_own`), which we cannot decorate, are wrapped in `user_errors` here.
    Events without a Python function (`fn=None`, browser-only `js`) have nothing to check."""
    for component in gradio_compat.components(blocks):
        cls = type(component)
        if isinstance(component, gr.components.Component) and hasattr(cls, "preprocess"):
            gradio_compat.wrap_preprocess(cls, functools.partial(_plain_preprocess, kind=cls.__name__))
    bare = []
    for block_fn in gradio_compat.event_functions(blocks):
        fn = block_fn.fn
        if fn is None or getattr(fn, "_plain_errors", False):
            continue
        if not _is_gradios_own(fn):
            bare.append(_name(fn))
        elif not (inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)):  # (user_errors is sync)
            gradio_compat.replace_function(block_fn, user_errors(fn))
    if bare:
        raise TypeError(
            "These event handlers lack @ui.user_errors, so a failure in them would reach the visitor "
            "as gradio's generic error: " + ", ".join(sorted(set(bare))) + ". Decorate each with "
            "@ui.user_errors (a lambda: ui.user_errors(lambda ...: ...))."
        )


def batch_columns(results: list, error_outputs) -> list[list]:
    """The reply of gradio's batched event (`batch=True`: each argument is a list, one value per
    request; one list per output comes back), from one result per request: its outputs, or the
    exception that refused it. A lone bad request gets a plain error; inside a shared batch a bad
    request gets `error_outputs(message)` in its own slots, so the other visitors still get their
    answers (gradio can only fail a batch as a whole)."""
    if len(results) == 1 and isinstance(results[0], Exception):
        raise results[0]
    rows = [error_outputs(str(r)) if isinstance(r, Exception) else r for r in results]
    return [list(column) for column in zip(*rows)]


SHORT_LANE, LONG_LANE = "short", "model"  # gradio concurrency ids


def heavy(**kwargs) -> dict:
    """Event options for long model work (generation, diffusion, set scoring, training): the long
    lane, one shared concurrency limit (settings.MODEL_CONCURRENCY), so a 2-core CPU or one GPU
    runs one long call at a time and the rest wait in the queue."""
    # (gradio's own `time_limit` only bounds streaming *inputs*; long generations are bounded
    # inside the demos instead, with settings.TIME_LIMIT_S: `max_time` for text generation, an
    # interrupting step callback for diffusion.)
    options = dict(concurrency_id=LONG_LANE, concurrency_limit=settings.MODEL_CONCURRENCY)
    options.update(kwargs)
    return options


def short(**kwargs) -> dict:
    """Event options for short model calls (next-token bars, a guess, CLIP on cached text, room
    tallies): a lane of their own, so they never queue behind a long call. With one call in
    each lane, at most two model calls run at once."""
    options = dict(concurrency_id=SHORT_LANE, concurrency_limit=settings.SHORT_CONCURRENCY)
    options.update(kwargs)
    return options


def build_tab(module_name: str) -> None:
    """Import `demos.<name>` and lay out its tab; if that fails, the tab says why in plain
    words and the rest of the gallery is unaffected."""
    import importlib

    try:
        module = importlib.import_module(module_name)
        module.create_demo()
    except Exception as error:  # a missing package, a bug in one tab...
        log.exception("the tab %s could not be built", module_name)
        gr.Markdown(
            f"### This demo could not start\n\n`{module_name}` failed while building: "
            f"**{type(error).__name__}: {error}**\n\nThe other tabs work. If a package is "
            "missing, run the README's start command again, which installs what is needed.",
            elem_classes=["banner-error"],
        )
