"""Models with the real architecture of each default and random weights, built offline.

Same layers, same sizes, same compute as the real checkpoints, so CPU timings are honest even
where no real weights can be downloaded. Each builder saves a checkpoint folder like the Hub's,
so the benchmark loads it through the gallery's own loaders (GALLERY_TINY_MODELS layout).
"""

from __future__ import annotations

from pathlib import Path


def build_mae_base(root: Path) -> Path:
    """facebook/vit-mae-base: ViT-B/16 encoder at 224 px, 8-layer 512-wide decoder."""
    from transformers import ViTImageProcessor, ViTMAEConfig, ViTMAEForPreTraining

    folder = root / "mae"
    ViTMAEForPreTraining(ViTMAEConfig()).save_pretrained(folder)  # defaults = vit-mae-base
    ViTImageProcessor(size={"height": 224, "width": 224}).save_pretrained(folder)
    return folder


def build_clip_b32(root: Path) -> Path:
    """open_clip ViT-B-32 (the LAION-2B checkpoint's architecture) as a local-dir checkpoint."""
    import json

    import open_clip
    from safetensors.torch import save_file

    folder = root / "clip"
    folder.mkdir(parents=True, exist_ok=True)
    config = open_clip.get_model_config("ViT-B-32")
    model = open_clip.CLIP(**config)
    save_file(model.state_dict(), folder / "open_clip_model.safetensors")
    preprocess = {"mean": list(open_clip.OPENAI_DATASET_MEAN), "std": list(open_clip.OPENAI_DATASET_STD)}
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": config, "preprocess_cfg": preprocess}))
    return folder


def sd_turbo_components() -> dict:
    """stabilityai/sd-turbo = Stable Diffusion 2.1 (base): 865M UNet, OpenCLIP-H text encoder,
    the SD VAE, Euler with trailing timesteps."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from tests.support.tiny_models import clip_tokenizer

    unet = UNet2DConditionModel(
        sample_size=64,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        block_out_channels=(320, 640, 1280, 1280),
        layers_per_block=2,
        cross_attention_dim=1024,
        attention_head_dim=(5, 10, 20, 20),
        use_linear_projection=True,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        latent_channels=4,
        sample_size=512,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            hidden_size=1024,
            intermediate_size=4096,
            num_attention_heads=16,
            num_hidden_layers=23,
            projection_dim=1024,
            hidden_act="gelu",
            vocab_size=49408,
            max_position_embeddings=77,
            bos_token_id=49406,
            eos_token_id=49407,
            pad_token_id=0,
        )
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="trailing",
        steps_offset=1,
    )
    return dict(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=clip_tokenizer(),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )


def build_sd_turbo(root: Path) -> Path:
    from diffusers import StableDiffusionPipeline

    folder = root / "sd"
    StableDiffusionPipeline(**sd_turbo_components()).save_pretrained(folder)
    return folder
