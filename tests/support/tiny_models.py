"""Tiny random-weight checkpoints of every model family, built offline and saved like Hub repos.

The app loads them through its production loaders when GALLERY_TINY_MODELS points at the folder:
    python -m tests.support.tiny_models /tmp/tiny-models
    GALLERY_TINY_MODELS=/tmp/tiny-models python app.py
Which folders exist is read from the catalogue (`catalog.ROLES[...].tiny`); `BUILDERS` says how
each is built: llama/ gpt2/ (causal LMs + tokenizer), bert/ (a DistilBERT masked LM), mae/,
clip/ (open_clip local-dir), sd/
(Stable Diffusion, SD-Turbo-like scheduler), safety/ (diffusers' safety checker).
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

CORPUS = [
    "The cat sat on the mat. The dog sat on the log. A bird sang in the tree.",
    "The capital of France is Paris. The capital of Italy is Rome.",
    "Question: what is 2 + 3? Answer: 5. Let's think step by step. The answer is 12.",
    "Once upon a time there was a little robot who loved to paint pictures of the sea.",
    "0123456789 + - * / = ? ! , . ; : ' \" ( ) emoji 🙂 日本語 mañana",
]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_tokenizer(model_max_length: int = 256):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tk.train_from_iterator(CORPUS, trainer=trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        model_max_length=model_max_length,
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def build_llama(root: Path, seed: int = 0) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = tiny_tokenizer()
    torch.manual_seed(seed)
    llama = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=256,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
    )
    llama.save_pretrained(root / "llama")
    tok.save_pretrained(root / "llama")


def build_gpt2(root: Path, seed: int = 1) -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = tiny_tokenizer()
    torch.manual_seed(seed)
    gpt2 = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=len(tok),
            n_positions=256,
            n_embd=32,
            n_layer=2,
            n_head=2,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
        )
    )
    gpt2.save_pretrained(root / "gpt2")
    tok.save_pretrained(root / "gpt2")


def bert_tokenizer(model_max_length: int = 128):
    """A lower-casing WordPiece vocabulary trained on CORPUS, with BERT's special tokens and its
    "[CLS] text [SEP]" framing, as DistilBERT's tokenizer has them."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tk = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tk.normalizer = normalizers.BertNormalizer(lowercase=True)
    tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=300, special_tokens=special, show_progress=False)
    tk.train_from_iterator(CORPUS, trainer)
    cls, sep = tk.token_to_id("[CLS]"), tk.token_to_id("[SEP]")
    tk.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    tk.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=model_max_length,
    )


def build_bert(root: Path, seed: int = 0) -> None:
    import torch
    from transformers import DistilBertConfig, DistilBertForMaskedLM

    tok = bert_tokenizer()
    torch.manual_seed(seed)
    config = DistilBertConfig(
        vocab_size=len(tok), dim=32, hidden_dim=64, n_layers=2, n_heads=2, max_position_embeddings=128,
        pad_token_id=tok.pad_token_id,
    )
    DistilBertForMaskedLM(config).save_pretrained(root / "bert")
    tok.save_pretrained(root / "bert")


def build_mae(root: Path, seed: int = 0) -> None:
    import torch
    from transformers import ViTImageProcessor, ViTMAEConfig, ViTMAEForPreTraining

    torch.manual_seed(seed)
    config = ViTMAEConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        decoder_hidden_size=32,
        decoder_num_hidden_layers=1,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=37,
        mask_ratio=0.75,
    )
    ViTMAEForPreTraining(config).save_pretrained(root / "mae")
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(root / "mae")


TINY_CLIP_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
    # vocab 49408: open_clip's bundled BPE tokenizer emits ids up to 49407
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


def build_clip(root: Path, seed: int = 0) -> None:
    import open_clip
    import torch
    from safetensors.torch import save_file

    folder = root / "clip"
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = open_clip.CLIP(**TINY_CLIP_CFG)
    save_file(model.state_dict(), folder / "open_clip_model.safetensors")
    preprocess = {"mean": list(open_clip.OPENAI_DATASET_MEAN), "std": list(open_clip.OPENAI_DATASET_STD)}
    (folder / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": TINY_CLIP_CFG, "preprocess_cfg": preprocess})
    )


def clip_tokenizer(model_max_length: int = 77):
    """The exact OpenAI CLIP BPE (49408 tokens) from the file that ships inside open_clip."""
    import open_clip.tokenizer as oct
    from transformers import CLIPTokenizer

    lines = gzip.open(oct.default_bpe()).read().decode("utf-8").split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]
    from transformers.convert_slow_tokenizer import bytes_to_unicode  # GPT-2's byte table, as CLIP's BPE

    vocab = list(bytes_to_unicode().values())
    vocab += [v + "</w>" for v in vocab]
    vocab += ["".join(m.split()) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    return CLIPTokenizer(
        vocab={t: i for i, t in enumerate(vocab)},
        merges=[tuple(m.split()) for m in merges],
        unk_token="<|endoftext|>",
        model_max_length=model_max_length,
    )


def sd_components(tokenizer, inpaint_unet: bool = False, seed: int = 0) -> dict:
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=1,
        sample_size=32,
        in_channels=9 if inpaint_unet else 4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=2,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="trailing",  # as SD-Turbo's scheduler config
        steps_offset=1,
    )
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        block_out_channels=(4, 8),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        norm_num_groups=2,
        sample_size=32,
    )
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=49406,
            eos_token_id=49407,
            hidden_size=32,
            intermediate_size=37,
            layer_norm_eps=1e-05,
            num_attention_heads=4,
            num_hidden_layers=2,
            pad_token_id=49407,
            vocab_size=len(tokenizer),
            max_position_embeddings=77,
        )
    )
    return dict(
        unet=unet,
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )


def build_sd(root: Path, seed: int = 0) -> None:
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(**sd_components(clip_tokenizer(), seed=seed))
    pipe.save_pretrained(root / "sd")


def build_safety_checker(root: Path, seed: int = 0) -> None:
    import torch
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=dict(hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=32,
    )
    StableDiffusionSafetyChecker(config).save_pretrained(root / "safety")
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        root / "safety"
    )


# folder -> how it is built (the folders themselves are the catalogue's: `catalog.ROLES[...].tiny`)
BUILDERS = {
    "llama": build_llama,
    "gpt2": build_gpt2,
    "bert": build_bert,
    "mae": build_mae,
    "clip": build_clip,
    "sd": build_sd,
    "safety": build_safety_checker,
}


def tiny_folders() -> list[str]:
    """Every folder some role's tiny stand-in lives in, in catalogue order."""
    from gallery import catalog

    folders = [catalog.tiny_folder(m) for role in catalog.ROLES.values() for m in role.tiny]
    return list(dict.fromkeys(folders))


def build_all(root: Path | str) -> Path:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    missing = [folder for folder in tiny_folders() if folder not in BUILDERS]
    if missing:
        raise LookupError(f"No builder for the tiny checkpoint(s) {missing}: "
                          "add one to tests/support/tiny_models.py BUILDERS.")
    for folder in tiny_folders():
        BUILDERS[folder](root)
    return root


if __name__ == "__main__":
    print(build_all(sys.argv[1] if len(sys.argv) > 1 else "tiny-models"))
