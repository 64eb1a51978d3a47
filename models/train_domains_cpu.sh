#!/usr/bin/env bash
# CPU recipe (issue 12): fine-tune a model on mixed domains (ours, paper, camera) as the config says
# (its "init": filaments or mitochondria; the mean input channels); one thread, nice'd, stops after "steps"
# iterations; rerunning with the same RUN_DIR resumes from its checkpoint (written every val_every).
# usage: bash models/train_domains_cpu.sh [RUN_DIR] [CONFIG]
#   CONFIG defaults to models/configs/filaments-domains-ft-cpu.json (51-step clips = the inference
#   window, motion balanced); models/configs/filaments-domains-cpu.json is the first candidate's.
#   The shipped filaments model (version 3) is stages ft-cpu -> ft2-cpu -> ft6-cpu run in turn
#   (each config's "init" names the model it starts from; see models/dblink-filaments.md).
#   then: dblink export RUN_DIR/checkpoint.pt -o OUT.pt --name filaments
# DEVICE=cuda runs the same recipe on a GPU (same clips, steps and seeds; the weights differ by
# floating-point rounding, which grows over training, so the scores match only statistically).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-runs/domains-cpu}
CONFIG=${2:-models/configs/filaments-domains-ft-cpu.json}
OMP_NUM_THREADS=1 PYTHONPATH=python nice -n 5 .venv/bin/python -c "
import os, torch
torch.set_num_threads(1)
from dblink.train import load_config, train
resume = os.path.exists('$RUN/checkpoint.pt')
cfg = load_config(path='$CONFIG')
print(train(cfg, '$RUN', resume=resume, device='${DEVICE:-cpu}', progress='none'))
"
