#!/usr/bin/env bash
# GPU recipe of issue 12 (not run yet: this task had no GPU): the filament model with the
# mean-of-window channel, trained from scratch on mixed domains (ours 0.4, paper 0.3, camera 0.3),
# 6,000 iterations of 64 clips; camera tables are cached in $DBLINK_CACHE (a bank of 4,000 seeds).
# usage: OUT=runs bash models/train_domains_gpu.sh; then dblink export "$OUT/domains/checkpoint.pt" -o models/NAME.pt
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=python
out=${OUT:-runs}
python3 -m dblink.cli train --config models/configs/filaments-domains-gpu.json -o "$out/domains" \
    --device cuda --progress none 2>&1 | tee "$out/train-domains.txt"
cat "$out/domains/log.csv"
