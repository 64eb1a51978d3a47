#!/usr/bin/env bash
# CPU recipe (issue 12): fine-tune the shipped filament model on mixed domains (ours, paper, camera)
# with the mean-of-window input channel; one thread, stops after the config's "steps" iterations.
# usage: bash models/train_domains_cpu.sh [RUN_DIR]   (then: dblink export RUN_DIR/checkpoint.pt ...)
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-runs/domains-cpu}
OMP_NUM_THREADS=1 PYTHONPATH=python .venv/bin/python -c "
import sys, torch
torch.set_num_threads(1)
from dblink.train import load_config, train
resume = __import__('os').path.exists('$RUN/checkpoint.pt')
cfg = load_config(path='models/configs/filaments-domains-cpu.json')
print(train(cfg, '$RUN', resume=resume, device='cpu', progress='none'))
"
