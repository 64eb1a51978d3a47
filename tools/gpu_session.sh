#!/usr/bin/env bash
# All GPU measurements and training of one device session (one H100/H200, ~10 minutes), in order of
# priority; each stage's results are packed into $OUT as soon as it ends, so a stop loses little.
#   1. dblink bench: both architectures, 128² and 1,024², exact and strided, fp32/bf16/fp16
#   2. dblink reconstruct --timings on the real ThunderSTORM exports (full field), fp32 and bf16
#   3. dblink evaluate of the shipped filament model in fp32, bf16 and fp16 (quality of autocast)
#   4. arch=paper vs arch=compact trained for the same wall time (models/configs/compare-*.json)
#   5. fine-tuning of the shipped filament model until DEADLINE_S (models/configs/filaments-finetune-gpu.json)
# Usage: DEADLINE_S=540 DATA=.gpu/data bash tools/gpu_session.sh   (results: $OUT/*.tar.gz, $OUT/log.txt)
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=python
OUT=${OUT:-runs/gpu-session}
DATA=${DATA:-../shared/data/thunderstorm-real}
DEADLINE_S=${DEADLINE_S:-540}
W=/tmp/dblink-gpu
mkdir -p "$OUT" "$W/results"
exec > >(tee -a "$OUT/log.txt") 2>&1
t0=$(date +%s)
left() { echo $(( DEADLINE_S - ($(date +%s) - t0) )); }
pack() { tar czf "$OUT/results.tar.gz.tmp" -C "$W" results && mv "$OUT/results.tar.gz.tmp" "$OUT/results.tar.gz"; }
dblink() { python3 -m dblink.cli "$@"; }
[ -n "${DRY:-}" ] && dblink() { echo "dblink $*"; }  # DRY=1: print the commands only
R=$W/results

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$R/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$R/gpu.txt"

echo "== 1. bench ($(left) s left)"
for arch in compact paper; do
  dblink bench --arch $arch --size 128 --steps 120 --stride 1,8,16 --precision fp32,bf16,fp16 \
    --device cuda --ref-frames 4 --json "$R/bench-$arch-128.json" | tee "$R/bench-$arch-128.txt"
  dblink bench --arch $arch --size 1024 --steps 60 --stride 1,8 --precision fp32,bf16 \
    --device cuda --ref-frames 0 --json "$R/bench-$arch-1024.json" | tee "$R/bench-$arch-1024.txt"
  pack
done

echo "== 2. real exports, full field ($(left) s left)"
for job in "$(ls "$DATA"/*.csv | head -1) fp32" "$(ls "$DATA"/*.csv | tail -1) fp32" \
           "$(ls "$DATA"/*.csv | head -1) bf16"; do
  set -- $job
  echo "$1 $2" | tee -a "$R/profile.txt"
  dblink reconstruct "$1" -o "$W/out-$2.tif" --device cuda --precision $2 \
    --timings --progress none --overwrite 2>&1 | tee -a "$R/profile.txt"
done
pack

echo "== 3. autocast quality ($(left) s left)"
for p in fp32 bf16 fp16; do
  dblink evaluate --model filaments --preset filaments --n 4 --device cuda --precision $p \
    --json "$R/eval-filaments-$p.json" 2>&1 | tee -a "$R/eval-precision.txt"
done
pack

echo "== 4. paper vs compact, equal wall time ($(left) s left)"
for arch in paper compact; do
  dblink train --config models/configs/compare-$arch.json -o "$W/compare-$arch" --device cuda \
    --progress none 2>&1 | tail -3 | tee -a "$R/compare.txt"
  cp "$W/compare-$arch/log.csv" "$R/compare-$arch.log.csv"
  dblink export "$W/compare-$arch/checkpoint.pt" -o "$R/compare-$arch.pt" --name compare-$arch
  dblink evaluate --model "$R/compare-$arch.pt" --preset filaments --n 4 --device cuda \
    --json "$R/compare-$arch.eval.json" 2>&1 | tee -a "$R/compare.txt"
  pack
done

echo "== 5. fine-tune the filament model ($(left) s left)"
minutes=$(python3 -c "print(max(0.5, ($(left) - 75) / 60))")
( while sleep 20; do
    [ -f "$W/ft/checkpoint.pt" ] && tar czf "$OUT/ft.tar.gz.tmp" -C "$W" ft && mv "$OUT/ft.tar.gz.tmp" "$OUT/ft.tar.gz"
  done ) &
saver=$!
dblink train --config models/configs/filaments-finetune-gpu.json -o "$W/ft" --device cuda \
  --max-minutes "$minutes" --progress none 2>&1 | tail -3
kill $saver
dblink export "$W/ft/checkpoint.pt" -o "$W/ft/filaments-ft.pt" --name filaments
dblink evaluate --model "$W/ft/filaments-ft.pt" --preset filaments --n 4 --device cuda \
  --json "$W/ft/eval.json" 2>&1 | tee "$W/ft/eval.txt"
tar czf "$OUT/ft.tar.gz" -C "$W" --exclude ft/checkpoint.tmp ft
echo "== done in $(( $(date +%s) - t0 )) s"
