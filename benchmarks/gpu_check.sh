#!/usr/bin/env bash
# Device check for a CUDA machine (a few minutes): what the GPU is, that the gallery picks
# fp16 on it, then the whole benchmark table measured there.
#   bash benchmarks/gpu_check.sh [--repeats 3]
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "nvidia-smi not found"
python3 - <<'PY'
import torch
from gallery import device
print("torch", torch.__version__, "cuda available:", torch.cuda.is_available())
print("gallery device:", device.device(), "dtype:", device.dtype())
assert device.device() == "cuda", "no CUDA device: this check is for a GPU machine"
PY
HF_HUB_OFFLINE=1 python3 -m benchmarks.run_all "$@"
