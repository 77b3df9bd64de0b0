"""Download every default model into the standard Hugging Face cache, for a workshop offline.

    python -m gallery.prefetch

Run it on a machine with internet access (or on the Space's build); afterwards the gallery starts
with HF_HUB_OFFLINE=1 and every tab works without the network.
"""

from __future__ import annotations

import os
import sys

os.environ.pop("HF_HUB_OFFLINE", None)  # this command is the one that must reach the Hub
os.environ.pop("TRANSFORMERS_OFFLINE", None)

from gallery import catalog, settings  # noqa: E402

SKIP = ["*.h5", "*.msgpack", "*.onnx", "*.ckpt", "*.ot", "*.tflite", "coreml*", "sd_turbo*.safetensors"]


def hub_repos() -> list[str]:
    repos: list[str] = []
    for role in catalog.ROLES.values():
        if not role.prefetch:
            continue
        for model in role.hub:
            repo = model.model_id.removeprefix("hf-hub:")
            if repo not in repos:
                repos.append(repo)
    return repos


def main() -> int:
    if settings.OFFLINE:
        print(
            "The Hugging Face Hub cannot be reached from this machine, so nothing was downloaded.\n"
            "Run this command on a machine with internet access (the cache it fills is "
            "~/.cache/huggingface/hub; copy it over, or set HF_HOME to share it).\n"
            "The text tabs still work offline with the bundled SmolLM2-135M-Instruct."
        )
        return 1
    from huggingface_hub import snapshot_download

    failed = []
    for repo in hub_repos():
        print(f"downloading {repo} ...", flush=True)
        try:
            # Skip other frameworks' copies and single-file checkpoints the loaders never read.
            snapshot_download(repo, ignore_patterns=SKIP)
        except Exception as error:  # keep going: one missing repo should not stop the rest
            print(f"  could not download {repo}: {type(error).__name__}: {error}")
            failed.append(repo)
    if failed:
        print(f"{len(failed)} model(s) could not be downloaded: {', '.join(failed)}")
        return 1
    print("All default models are in the Hugging Face cache.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
