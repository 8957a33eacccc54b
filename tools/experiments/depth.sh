#!/usr/bin/env bash
# depth.sh — the paper's depth claim at small scale: a Performer matches a Reformer twice
# as deep (ImageNet64: 6-layer Performer ~ 12-layer Reformer). Fashion-MNIST with the
# recipe of docs/images.md (fashion.sh), causal FAVOR+ at 3 layers against the Reformer
# at 6, with FAVOR+ at 6 and the Reformer at 3 beside them to show whether depth helps each
# kind at this length of training; the same steps for all. About 95 minutes on 2 cores.
# Writes results/depth.{png,md} (held-out bits/dim against steps and seconds), then each
# model's test bits/dim and the step and seconds at which each model first reached the
# deepest Reformer's final held-out bits/dim.
#
#   bash tools/experiments/depth.sh                       # after `make` and `make data`
#   MODELS="favor:6 reformer:12" bash tools/experiments/depth.sh   # the next pair
set -euo pipefail
cd "$(dirname "$0")/../.."
source tools/experiments/common.sh
STEPS=${STEPS:-1500}
COMMON=("${FASHION_RECIPE[@]}" --steps "$STEPS" --eval-every 50)
MODELS=(${MODELS-favor:3 reformer:6 reformer:3 favor:6})
runs=()
for model in "${MODELS[@]}"; do
  attention=${model%:*} layers=${model#*:}
  run="runs/depth-$attention-$layers"
  train_once "$run" "${COMMON[@]}" --layers "$layers" --attention "$attention"
  runs+=("$run")
done
build/compare --metric bits_per_dim --seconds --out results/depth \
  --title "Fashion-MNIST: held-out bits per dimension" --runs "$(IFS=,; echo "${runs[*]}")"
for run in "${runs[@]}"; do
  echo "$run: $(build/eval --ckpt "$run/model.ckpt" --max-batches 125 | tail -1)"
done
# When each run first reached the deepest Reformer's final held-out bits/dim (log.csv's
# held-out rows: step, bits/dim, seconds of training).
deepest=$(printf '%s\n' "${runs[@]}" | grep -- '-reformer-' | sort -t- -k3 -n | tail -1 || true)
if [ -n "$deepest" ]; then
  target=$(awk -F, '$2 == "valid" { v = $4 } END { print v }' "$deepest/log.csv")
  echo "target: $deepest's final held-out bits/dim $target"
  for run in "${runs[@]}"; do
    awk -F, -v target="$target" -v run="$run" '
      $2 == "valid" && $4 <= target && !done { printf "%s: reached %s at step %s, %.0f s of training\n", run, target, $1, $8; done = 1 }
      END { if (!done) printf "%s: never reached %s\n", run, target }' "$run/log.csv"
  done
fi
