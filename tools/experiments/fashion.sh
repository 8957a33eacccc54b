#!/usr/bin/env bash
# fashion.sh — the image experiment, the shape of the paper's ImageNet64 result at
# small scale: softmax, favor and relu attention at 3 and 6 layers, same width, same
# steps, on Fashion-MNIST (L = 784 intensities); about 45 minutes on 2 cores. Then the
# held-out curves and tables (results/fashion-{3,6}.{png,md}), test bits/dim on the
# first 1000 test images, and grids of samples and completions from the 6-layer favor
# model.
#
#   bash tools/experiments/fashion.sh          # after `make` and `make data`
set -euo pipefail
cd "$(dirname "$0")/../.."
source tools/experiments/common.sh
STEPS=${STEPS:-400}
COMMON=(--task image --dim 128 --heads 4 --ff 512 --features 64 --batch 8
        --steps "$STEPS" --lr 3e-3 --warmup 50 --eval-every 100 --eval-batches 12 --seed 1)
for layers in 3 6; do
  for attention in softmax favor relu; do
    run="runs/fashion-$attention-$layers"
    train_once "$run" "${COMMON[@]}" --layers "$layers" --attention "$attention"
  done
done
for layers in 3 6; do
  build/compare --metric bits_per_dim --out "results/fashion-$layers" \
    --title "Fashion-MNIST, $layers layers: test bits per dimension" \
    --runs "runs/fashion-softmax-$layers,runs/fashion-favor-$layers,runs/fashion-relu-$layers"
done
for layers in 3 6; do
  for attention in softmax favor relu; do
    echo "$attention $layers layers: $(build/eval --ckpt "runs/fashion-$attention-$layers/model.ckpt" \
      --max-batches 125 | tail -1)"
  done
done
build/sample --ckpt runs/fashion-favor-6/model.ckpt --n 36 --out results/fashion_samples.png --seed 1
build/sample --ckpt runs/fashion-favor-6/model.ckpt --complete 10 --out results/fashion_completions.png --seed 1
