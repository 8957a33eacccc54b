#!/usr/bin/env bash
# austen.sh — the learning experiment: causal favor and softmax language models
# of the same size, trained for the same steps on Jane Austen's novels (Persuasion
# held out), under 30 minutes each on 2 cores. Favor keeps its random features fixed
# (redrawing them slows learning here: see docs/austen.md). Then one plot of both
# learning curves and a table (results/austen.*).
#
#   bash tools/experiments/austen.sh            # after `make` and `make data`
set -euo pipefail
cd "$(dirname "$0")/../.."
source tools/experiments/common.sh
STEPS=${STEPS:-1700}
COMMON=(--task text --layers 4 --dim 192 --heads 4 --ff 768 --features 128
        --seq-len 256 --batch 16 --steps "$STEPS" --lr 2e-3 --warmup 100
        --eval-every 100 --eval-batches 24 --seed 1)
for attention in softmax favor; do
  train_once "runs/austen-$attention" "${COMMON[@]}" --attention "$attention"
done
build/compare --runs runs/austen-softmax,runs/austen-favor --metric bits_per_byte \
  --title "Jane Austen, held-out Persuasion: bits per byte" --out results/austen
for attention in softmax favor; do
  echo "$attention: $(build/eval --ckpt "runs/austen-$attention/model.ckpt" | tail -1)"
done
build/sample --ckpt runs/austen-favor/model.ckpt --prompt "It is a truth" --n 240 \
  --temperature 0.8 --seed 1
