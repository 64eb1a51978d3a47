#!/bin/bash
# paper vs compact at equal CPU training time (20 min each, one after the other, quiet 2-core
# machine), then the held-out evaluation of each: models/compare/README.md, "On 2 CPU cores".
set -euo pipefail
cd "$(dirname "$0")/.."
D=${DBLINK:-.venv/bin/dblink}
for arch in paper compact; do
  rm -rf runs/compare-cpu-$arch
  $D train --config models/configs/compare-cpu-$arch.json -o runs/compare-cpu-$arch --device cpu --progress none
  $D export runs/compare-cpu-$arch/checkpoint.pt -o runs/compare-cpu-$arch.pt --name compare-cpu-$arch
  cp runs/compare-cpu-$arch/log.csv models/compare/compare-cpu-$arch.log.csv
done
for arch in paper compact; do
  $D evaluate --model runs/compare-cpu-$arch.pt --preset filaments --n 4 \
     --json models/compare/compare-cpu-$arch.eval.json
done
