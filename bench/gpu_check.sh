#!/usr/bin/env bash
# The GPU check (docs/cluster.md#devices), one prepared script of about 8 minutes on one GPU:
# the engine's certification speed (fresh and shared), the paper-protocol APE wall time (fresh
# noise for all of D_t,1 at sigma 1, 2, 3), BREP-MI attacks per minute at the official budgets on
# synthetic CelebA-shaped inputs with the official target (facenet64), and the device tests.
# Needs torch (any CUDA build), numpy, scipy, pyyaml, tqdm and pytest; nothing else of the project.
#   bash bench/gpu_check.sh [OUT]      # JSON lines and the test log under OUT (default: bench-gpu)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench-gpu}
mkdir -p "$out"
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__, torch.cuda.get_device_name())" | tee "$out/device.txt"
python bench/certify.py --device cuda --json | tee "$out/certify.json"
python bench/ape_noise.py --records 3929 --sigmas 1 2 3 --device cuda --json | tee "$out/ape_noise.json"
python bench/brepmi.py --device cuda --arch facenet64 --attacks 100 --json | tee "$out/brepmi.json"
python -m pytest -q -p no:cacheprovider tests/core/test_device.py tests/smoothing/test_engine.py 2>&1 | tee "$out/tests.log"
