#!/usr/bin/env bash
# demo.sh — what `make demo` runs once the programs are built and the data prepared:
# a few minutes of training for two small Performers (causal FAVOR+ attention), then
# what they learned.
#
#   1. a byte-level language model on Jane Austen's novels: held-out bits per byte on
#      Persuasion (never seen in training), and a passage it writes;
#   2. a pixel-by-pixel image model on Fashion-MNIST: test bits per dimension, and a
#      grid of images it draws, one intensity at a time.
#
# Runs go to runs/demo-*, pictures to results/. DEMO_SCALE=0.2 makes everything 5x
# shorter (a smoke test).
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${DEMO_SCALE:-1}
steps() { awk -v n="$1" -v s="$scale" 'BEGIN { v = int(n * s); print (v < 2 ? 2 : v) }'; }
mkdir -p results
started=$(date +%s)

echo "== 1. A Performer language model on Jane Austen's novels"
rm -rf runs/demo-text
build/train --task text --attention favor --layers 3 --dim 128 --heads 4 --features 64 \
  --seq-len 256 --batch 16 --steps "$(steps 800)" --lr 3e-3 --eval-every "$(steps 200)" \
  --seed 1 --out runs/demo-text
build/eval --ckpt runs/demo-text/model.ckpt --max-batches 16 | tail -1
echo
echo "-- It writes (prompt \"It is a truth\", temperature 0.8):"
build/sample --ckpt runs/demo-text/model.ckpt --prompt "It is a truth" --n 240 --temperature 0.8
echo

echo "== 2. A Performer that draws Fashion-MNIST images pixel by pixel"
rm -rf runs/demo-image
build/train --task image --attention favor --layers 3 --dim 96 --heads 4 --features 64 \
  --batch 8 --steps "$(steps 300)" --lr 3e-3 --eval-every "$(steps 100)" --eval-batches 8 \
  --seed 1 --out runs/demo-image
build/sample --ckpt runs/demo-image/model.ckpt --n 16 --temperature 1.0 --out results/demo_samples.png
build/sample --ckpt runs/demo-image/model.ckpt --complete 8 --out results/demo_completions.png
echo

echo "== Done in $(( $(date +%s) - started )) s"
echo "   text:   runs/demo-text (log.csv, loss.png, model.ckpt)"
echo "   images: runs/demo-image, results/demo_samples.png, results/demo_completions.png"
echo "   train your own: build/train --help"
