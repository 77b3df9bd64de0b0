"""The next-word tab's three comparison panels, each the same question asked another way:
- scale: the same text on models of different sizes;
- base vs instruct: what instruction tuning changes (plain text, or the chat template);
- causal vs masked: one blank read from the left only (next-token odds) or from both sides (a
  masked model's fill-in, BERT's kind).
Each panel has its computation, its handler and its layout (`*_panel()`), called by
the tab's `create_demo`."""

from __future__ import annotations

import re
from dataclasses import dataclass

import gradio as gr
import torch

from demos.next_word.distribution import (
    MAX_PROMPT_CHARS, MAX_PROMPT_TOKENS, ROLE, TOP_BARS, Sampling, GPU_FORWARD_S, distributions_for, visible_whitespace,
)
from demos.next_word.reveal import bars, probability_chart
from gallery import catalog, models, settings, ui
from gallery.catalog import Model
from gallery.device import gpu, gpu_seconds
from gallery.errors import InputError, ModelUnavailable

BASE_VS_INSTRUCT_EXAMPLES = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "The best way to learn a language is",
]
NONE = "— (none)"  # an empty slot in the model-size comparison

BASE_LABEL = "SmolLM2-135M (base)"  # the Hub pair for base vs instruct (same size, same data)
INSTRUCT_LABELS = ("SmolLM2-135M-Instruct", catalog.EMBEDDED_LM.label)  # Hub first, then bundled
# Offline, the pre-trained-only bundled Gemma stands in for the base model: a looser pair.
OFFLINE_BASE = catalog.EMBEDDED_GEMMA
LOOSE_PAIR_NOTE = (
    "⚠️ A loose pair: offline, the base model is Google's Gemma-3-270M (pre-trained only) and the "
    "instruct one is Hugging Face's SmolLM2-135M-Instruct, so they also differ in family, size and "
    "training data, not only in the fine-tuning."
)
MIXED_FAMILIES_NOTE = (
    "⚠️ These models come from different families ({families}): different training data, "
    "vocabularies and tuning, so this is only a loose comparison of size. For a clean one, compare "
    "one family in several sizes (SmolLM2 135M / 360M / 1.7B, with the Hub)."
)

MASK_ROLE = "masked_lm"  # the "causal vs masked" panel's model
BLANK = "[MASK]"  # how a visitor marks the blank (replaced by the masked model's own mask token)
DEFAULT_BLANK_TEXT = "The cat sat on the [MASK]."


# --- causal vs masked: one blank, read one way or both ways ---------------------------------------
@dataclass
class BlankFill:
    """A masked LM's guesses for one blank, from the words on both sides of it."""

    before: str  # the text before the blank: all a causal model reads
    after: str  # the text after it: what only the masked model also reads
    tokens: list[str]  # readable, most likely first
    probs: list[float]
    note: str = ""


def split_blank(text) -> tuple[str, str, str]:
    """'The cat sat on the [MASK].' -> ('The cat sat on the', '.', note). No blank: it goes at the
    end (the causal model's only place); more than one is refused."""
    if text is None or not isinstance(text, str) or not text.strip():
        raise InputError(f"Type a sentence with one {BLANK} where the missing word goes.")
    text = text[:MAX_PROMPT_CHARS]
    count = text.count(BLANK)
    if count > 1:
        raise InputError(f"Put one {BLANK} in the sentence (there are {count}): both models fill one blank.")
    if count == 0:
        return text.rstrip(), "", f"There was no {BLANK} in the text, so the blank is at its end."
    before, after = text.split(BLANK)
    if not before.strip():
        raise InputError(f"Put a few words before the {BLANK}: the causal model reads only what comes before it.")
    return before.rstrip(), after, ""


def fill_blank(mlm, tokenizer, text: str, top: int = TOP_BARS) -> BlankFill:
    """The masked model's probabilities for the blank: softmax over the logits at its mask token
    (what transformers' fill-mask pipeline computes), reading the words on both sides."""
    before, after, note = split_blank(text)
    sentence = f"{before} {tokenizer.mask_token}{after}"
    encoded = tokenizer(sentence, truncation=True, max_length=min(MAX_PROMPT_TOKENS, tokenizer.model_max_length),
                        return_tensors="pt")
    where = (encoded["input_ids"][0] == tokenizer.mask_token_id).nonzero()
    if len(where) != 1:  # cut off by the length limit
        raise InputError("The sentence is too long for the masked model to see its blank; shorten it.")
    with torch.inference_mode():
        logits = mlm(**{k: v.to(mlm.device) for k, v in encoded.items()}).logits  # (1, T, V)
    probs = logits[0, int(where[0, 0])].float().softmax(-1).cpu()  # (V,)
    values, ids = probs.topk(min(top, probs.shape[-1]))
    tokens = [visible_whitespace(tokenizer.decode([int(i)]).strip() or tokenizer.convert_ids_to_tokens(int(i)))
              for i in ids]
    return BlankFill(before, after, tokens, [float(v) for v in values], note)


def base_and_instruct() -> tuple[Model | None, Model | None]:
    """The base model and its instruction-tuned sibling, where each can be loaded here; offline
    the bundled pre-trained-only Gemma is the base (see LOOSE_PAIR_NOTE)."""
    ready = {m.label: m for m in catalog.available(ROLE)}
    instruct = next((ready[label] for label in INSTRUCT_LABELS if label in ready), None)
    return ready.get(BASE_LABEL) or ready.get(OFFLINE_BASE.label), instruct


def model_family(label: str) -> str:
    """'SmolLM2-135M (base)' -> 'SmolLM2', 'Gemma-3-270M (…)' -> 'Gemma', 'GPT-2 (…)' -> 'GPT'."""
    return re.split(r"[-\s]", label.strip(), maxsplit=1)[0]


def families_note(labels: list[str]) -> str:
    families = list(dict.fromkeys(model_family(label) for label in labels))
    return MIXED_FAMILIES_NOTE.format(families=", ".join(families)) if len(families) > 1 else ""


@gpu(duration=gpu_seconds(GPU_FORWARD_S), role=MASK_ROLE)
def blank_for(label, text: str) -> tuple[BlankFill, Model]:
    entry = catalog.by_label(MASK_ROLE, label)
    mlm, tokenizer = models.load_masked_lm(entry)
    return fill_blank(mlm, tokenizer, text), entry


@ui.user_errors
def on_compare(prompt, label_a, label_b, label_c):
    """The same text on up to three models, each one's own distribution (temperature 1)."""
    labels = [label if label and label != NONE else None for label in (label_a, label_b, label_c)]
    if not any(labels):
        raise InputError("Pick at least one model to compare.")
    plots, notes = [], []
    for label in labels:
        if label is None:
            plots.append(gr.update(value=None, visible=False))
            continue
        try:
            [d], entry = distributions_for(label, [prompt], [Sampling()])
        except ModelUnavailable as error:  # one missing model should not hide the others
            plots.append(gr.update(value=None, visible=False))
            notes.append(f"⚠️ {label}: {error}")
            continue
        top = f"top {d.tokens[0]} ({d.model_probs[0]:.0%})"
        plots.append(bars(d.tokens, d.model_probs, f"{entry.label}: {top}"))
        notes.append(f"**{entry.label}**: {top}; the top {len(d.tokens)} hold {sum(d.model_probs):.0%}.")
    caveat = families_note([label for label in labels if label])
    return (*plots, "\n\n".join(notes + ([caveat] if caveat else [])))


@ui.user_errors
def on_base_vs_instruct(prompt):
    """Base model on the plain text | instruct model on the plain text | instruct model with its
    chat template. Offline the base model is missing and the first panel says so."""
    base, instruct = base_and_instruct()
    if instruct is None:
        raise ModelUnavailable("No instruction-tuned model can be loaded here.")
    plots, notes = [], []
    if base is None:
        plots.append(gr.update(value=None, visible=False))
        notes.append(
            f"⚠️ No base model ({BASE_LABEL}, or the bundled {OFFLINE_BASE.label}) is on this machine, so there is "
            "no base panel. "
            "Offline, the two panels show the *same* instruct model reading your words as plain "
            "text, and as a chat message in the format it was fine-tuned on (a stand-in for the "
            f"base-vs-instruct comparison). Run `{settings.PREFETCH_COMMAND}` on a connected "
            "machine to get the base model."
        )
    else:
        [d], entry = distributions_for(base.label, [prompt], [Sampling()])
        plots.append(bars(d.tokens, d.model_probs, f"Base ({entry.label}), plain text"))
        notes.append(f"**Base** ({entry.label}) just continues the text: top {d.tokens[0]} ({d.model_probs[0]:.0%}).")
        if base.label != BASE_LABEL:
            notes.append(LOOSE_PAIR_NOTE)
    [plain], entry = distributions_for(instruct.label, [prompt], [Sampling()])
    [chat], _ = distributions_for(instruct.label, [prompt], [Sampling()], True)
    plots.append(bars(plain.tokens, plain.model_probs, f"Instruct ({entry.label}), plain text"))
    plots.append(bars(chat.tokens, chat.model_probs, f"Instruct ({entry.label}), as a chat message"))
    notes.append(
        f"**Instruct** ({entry.label}) on the plain text: top {plain.tokens[0]} "
        f"({plain.model_probs[0]:.0%}). Wrapped in its chat template ({len(chat.prompt.ids)} tokens "
        f"with the template) it starts an answer instead: top {chat.tokens[0]} ({chat.model_probs[0]:.0%})."
    )
    return (*plots, "\n\n".join(notes))


@ui.user_errors
def on_causal_vs_masked(text, causal_label, masked_label):
    """One blank, two readers: the causal model's next-token odds from the words before it, the
    masked model's odds for it from the words on both sides."""
    before, after, _ = split_blank(text)
    blank, masked = blank_for(masked_label, text)
    [d], causal = distributions_for(causal_label, [before], [Sampling()])
    notes = [
        f"**Causal** ({causal.label}) reads only “{visible_whitespace(before[-40:])}” and bets on "
        f"{d.tokens[0]} ({d.model_probs[0]:.0%}).",
        f"**Masked** ({masked.label}) also reads what follows the blank"
        + (f" (“{visible_whitespace(after[:40])}”)" if after.strip() else " (here: nothing but the end)")
        + f" and bets on {blank.tokens[0]} ({blank.probs[0]:.0%}).",
        "The two vocabularies differ, so compare the words, not the token ids.",
    ]
    if blank.note:
        notes.append(f"⚠️ {blank.note}")
    return (
        bars(d.tokens, d.model_probs, f"Causal ({causal.label}): the words before the blank"),
        bars(blank.tokens, blank.probs, f"Masked ({masked.label}): both sides of the blank"),
        "\n\n".join(notes),
    )


# --- the panels' layout (each an accordion, closed) ----------------------------------------------
def scale_panel(prompt: gr.Textbox, ready: list[str]) -> None:
    """The tab's text on up to three models side by side."""
    with gr.Accordion("Scale: the same text on models of different sizes", open=False):
        if families_note(ready[:3]):  # what the three dropdowns start with
            gr.Markdown(families_note(ready[:3]))
        if len(ready) == 1:
            gr.Markdown(
                f"Only **{ready[0]}** is available on this machine, so there is nothing to compare it "
                "with here. With the Hugging Face Hub, pick SmolLM2 135M / 360M / 1.7B (base models) "
                f"or GPT-2; run `{settings.PREFETCH_COMMAND}` once on a connected machine."
            )
        with gr.Row():
            sizes = [
                gr.Dropdown(ready + [NONE], value=ready[i] if i < len(ready) else NONE, label=f"Model {i + 1}")
                for i in range(3)
            ]
        compare = gr.Button("Compare the models")
        with gr.Row():
            size_bars = [probability_chart(f"Model {i + 1}", elem_id=f"next-word-size-bars-{i + 1}") for i in range(3)]
        size_note = gr.Markdown()

    compare.click(
        on_compare, [prompt, *sizes], [*size_bars, size_note], api_name="next_word_compare_models",
        preprocess=False, **ui.heavy(),
    )


def base_vs_instruct_panel() -> None:
    """A question read by the base model, and by its instruct sibling with and without its chat format."""
    with gr.Accordion("Base vs instruct: what fine-tuning changes", open=False):
        gr.Markdown(
            "A *base* model only learned to continue text. Its *instruct* sibling was then tuned "
            "on conversations and expects your words wrapped in its chat format."
        )
        bi_prompt = gr.Textbox(label="Question or text", value=BASE_VS_INSTRUCT_EXAMPLES[0])
        gr.Examples([[x] for x in BASE_VS_INSTRUCT_EXAMPLES], [bi_prompt], cache_examples=False)
        bi_run = gr.Button("Compare base and instruct")
        with gr.Row():
            bi_bars = [
                probability_chart("Base model, plain text", elem_id="next-word-base-bars"),
                probability_chart("Instruct model, plain text", elem_id="next-word-instruct-plain-bars"),
                probability_chart("Instruct model, as a chat message", elem_id="next-word-instruct-chat-bars"),
            ]
        bi_note = gr.Markdown()

    bi_run.click(
        on_base_vs_instruct, [bi_prompt], [*bi_bars, bi_note], api_name="next_word_base_vs_instruct",
        preprocess=False, **ui.heavy(),
    )


def causal_vs_masked_panel(ready: list[str]) -> None:
    """One [MASK] filled by a causal model (the words before it) and a masked model (both sides)."""
    with gr.Accordion("Causal vs masked: one blank, read one way or both ways", open=False):
        gr.Markdown(
            "A *causal* model (like the ones above) learned to predict the next token from the words "
            f"before it. A *masked* model (BERT's kind) learned to fill a hidden word, {BLANK}, from the "
            "words on **both** sides. Move the blank, or add words after it, and watch only one of them change."
        )
        ui.model_banner(MASK_ROLE)
        blank_text = gr.Textbox(label=f"A sentence with one {BLANK}", value=DEFAULT_BLANK_TEXT,
                                elem_id="next-word-blank-text")
        with gr.Row():
            blank_causal = gr.Dropdown(ready, value=ready[0] if ready else None, label="Causal model")
            blank_masked = ui.model_dropdown(MASK_ROLE, label="Masked model")
        blank_run = ui.model_button("Fill the blank both ways", MASK_ROLE, elem_id="next-word-blank-run")
        with gr.Row():
            blank_bars = [
                probability_chart("Causal model: the words before the blank", elem_id="next-word-causal-blank-bars"),
                probability_chart("Masked model: both sides of the blank", elem_id="next-word-masked-blank-bars"),
            ]
        blank_note = gr.Markdown()

    blank_run.click(
        on_causal_vs_masked, [blank_text, blank_causal, blank_masked], [*blank_bars, blank_note],
        api_name="next_word_causal_vs_masked", preprocess=False, **ui.short(),
    )
