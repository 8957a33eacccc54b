#!/usr/bin/env bash
# fashion.sh — the image experiment, the shape of the paper's ImageNet64 result at
# small scale: softmax, favor and relu attention and the paper's rival reformer (the
# models are causal, so linformer cannot take part) at 3 and 6 layers, same width, same
# steps, on Fashion-MNIST (L = 784 intensities); about 75 minutes on 2 cores. Then the
# held-out curves and tables (results/fashion-{3,6}.{png,md}), test bits/dim on the
# first 1000 test images, and grids of samples and completions from the 6-layer favor
# model.
#
#   bash tools/experiments/fashion.sh          # after `make` and `make data`
#   ATTENTIONS="favor reformer" LAYERS=3 bash tools/experiments/fashion.sh   # only those
set -euo pipefail
cd "$(dirname "$0")/../.."
source tools/experiments/common.sh
STEPS=${STEPS:-400}
COMMON=("${FASHION_RECIPE[@]}" --steps "$STEPS" --eval-every 100)
ATTENTIONS=(${ATTENTIONS-softmax favor relu reformer})
LAYERS=${LAYERS-3 6}
for layers in $LAYERS; do
  runs=()
  for attention in "${ATTENTIONS[@]}"; do
    run="runs/fashion-$attention-$layers"
    train_once "$run" "${COMMON[@]}" --layers "$layers" --attention "$attention"
    runs+=("$run")
  done
  build/compare --metric bits_per_dim --out "results/fashion-$layers" \
    --title "Fashion-MNIST, $layers layers: test bits per dimension" --runs "$(IFS=,; echo "${runs[*]}")"
done
for layers in $LAYERS; do
  for attention in "${ATTENTIONS[@]}"; do
    echo "$attention $layers layers: $(build/eval --ckpt "runs/fashion-$attention-$layers/model.ckpt" \
      --max-batches 125 | tail -1)"
  done
done
if [ -f runs/fashion-favor-6/model.ckpt ]; then
  build/sample --ckpt runs/fashion-favor-6/model.ckpt --n 36 --out results/fashion_samples.png --seed 1
  build/sample --ckpt runs/fashion-favor-6/model.ckpt --complete 10 --out results/fashion_completions.png --seed 1
fi
