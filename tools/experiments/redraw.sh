#!/usr/bin/env bash
# redraw.sh — does redrawing FAVOR+'s random features help? A small causal model of Jane
# Austen's novels trained with the features redrawn never, every 1000, every 100 and
# every 10 steps, at m = 128 and 256, with the same seed and schedule; held-out bits per
# byte against the step for each (results/redraw-m{128,256}.{png,md}).
#
# Then the long-context setting: L = 1024 (batch 4, the same tokens per step), m = 128,
# redrawn never, every 100 and every 10 steps, 1800 steps: at L = 1024 every model,
# softmax too, is still on its first plateau after 600 (results/redraw-long.{png,md}).
#
#   bash tools/experiments/redraw.sh          # after `make` and `make data`
#   ONLY=long bash tools/experiments/redraw.sh   # the long-context runs alone
set -euo pipefail
cd "$(dirname "$0")/../.."
source tools/experiments/common.sh
STEPS=${STEPS:-600}
LONG_STEPS=${LONG_STEPS:-1800}
COMMON=(--task text --attention favor --layers 2 --dim 128 --heads 4 --ff 512
        --lr 2e-3 --warmup 50 --eval-every 50 --eval-batches 8 --seed 1)
if [ "${ONLY-}" != long ]; then
  for m in 128 256; do
    runs=()
    for redraw in 0 1000 100 10; do
      train_once "runs/redraw-m$m-$redraw" "${COMMON[@]}" --steps "$STEPS" --seq-len 256 --batch 16 \
        --features "$m" --redraw "$redraw"
      runs+=("runs/redraw-m$m-$redraw")
    done
    build/compare --runs "$(IFS=,; echo "${runs[*]}")" --metric bits_per_byte \
      --title "FAVOR+ m = $m: features redrawn never, every 1000, 100, 10 steps" \
      --out "results/redraw-m$m"
  done
fi
runs=()
for redraw in 0 100 10; do
  run="runs/redraw-long-$redraw"
  STEPS=$LONG_STEPS train_once "$run" "${COMMON[@]}" --steps "$LONG_STEPS" --seq-len 1024 \
    --batch 4 --features 128 --redraw "$redraw"
  runs+=("$run")
done
build/compare --runs "$(IFS=,; echo "${runs[*]}")" --metric bits_per_byte \
  --title "FAVOR+ m = 128, L = 1024: features redrawn never, every 100, 10 steps" \
  --out results/redraw-long
