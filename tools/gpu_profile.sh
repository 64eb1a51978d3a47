#!/usr/bin/env bash
# Whole-pipeline profile of `dblink reconstruct` on the real ThunderSTORM exports, full field, on a GPU
# (issue 5, item 7): `DATA=.gpu/data bash tools/gpu_profile.sh` (DATA: folder of the CSVs).
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=python
DATA=${DATA:-../shared/data/thunderstorm-real}
OUT=${OUT:-/tmp}
nvidia-smi --query-gpu=name --format=csv,noheader
for job in "ecoli_lacy_fov01 fp32" "ecoli_lacy_fov02 fp32" "ecoli_lacy_fov01 bf16"; do
  set -- $job
  echo "== $1 $2"
  python3 -m dblink.cli reconstruct "$DATA/$1.csv" -o "/tmp/$1-$2.tif" --device cuda --precision $2 \
    --timings --progress none --overwrite 2>&1 | tail -4
done 2>&1 | tee "$OUT/profile.txt"
