#!/usr/bin/env bash
# The training run of the shipped filament model (one H100, device tool). Writes into ${OUT:-runs}.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=python
out=${OUT:-runs}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, numpy, scipy, tifffile, tqdm; print('torch', torch.__version__)"
python3 -m dblink.cli train --config models/filaments-gpu.json -o "$out/run" --device cuda \
    --progress none 2>&1 | tee "$out/train.txt"
cat "$out/run/log.csv"
