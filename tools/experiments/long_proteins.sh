#!/usr/bin/env bash
# long_proteins.sh — the paper's long-sequence protein setting (TrEMBL, L = 8192) at equal
# memory and equal time: UniProt sequences joined by separators into windows of 8192
# residues (--concatenated), causal, batch 1. For each attention, the largest model of a
# grid (width 256 or 128, 6 layers down to 1, ff 4 x width, m = 64) whose training
# peaks under BUDGET_MIB of resident memory: found by training each candidate for 3
# steps, the most parameters first, then as many heads (4, 2, 1) as still fit. Each
# chosen model then trains for TRAIN_SECONDS seconds of training; its schedule (--steps) is
# set from the speed its probe measured, so that the learning rate decays over that
# time. About an hour on 2 cores. Writes results/long_proteins.{png,md} (held-out
# accuracy against steps and against seconds) and the test figures of each model.
#
#   bash tools/experiments/long_proteins.sh                 # after `make` and `make data`
#   TRAIN_SECONDS=300 ATTENTIONS="favor softmax" bash tools/experiments/long_proteins.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source tools/experiments/common.sh
BUDGET_MIB=${BUDGET_MIB:-2048}
TRAIN_SECONDS=${TRAIN_SECONDS:-900}
LENGTH=${LENGTH:-8192}
ATTENTIONS=(${ATTENTIONS-softmax favor relu})
DATA=(--task protein --objective causal --concatenated --seq-len "$LENGTH" --batch 1
      --features 64 --lr 1e-3 --seed 1)
mkdir -p runs results

# probe ATTENTION LAYERS WIDTH HEADS: trains 3 steps; prints the peak resident memory
# (MiB) and the speed (tokens/s) of the steps after the first.
probe() {
  local run="runs/long-probe-$1-$2-$3-$4"
  rm -rf "$run"
  if ! build/train "${DATA[@]}" --attention "$1" --layers "$2" --dim "$3" --ff $((4 * $3)) \
      --heads "$4" --steps 3 --eval-every 3 --eval-batches 1 --out "$run" > "$run.log" 2>&1; then
    echo "1e18 0"  # did not run (out of memory, say): fits no budget
    return
  fi
  local rss
  rss=$(grep -o '"peak_rss_mib": [0-9.e+-]*' "$run/summary.json" | awk '{ print $2 }')
  awk -F, -v rss="$rss" -v window="$LENGTH" '$2 == "train" { n++; if (n == 1) first = $8; last = $8 }
    END { print rss, (n - 1) * window / (last - first) }' "$run/log.csv"
}
fits() { awk -v rss="$1" -v budget="$BUDGET_MIB" 'BEGIN { exit !(rss <= budget) }'; }

runs=()
for attention in "${ATTENTIONS[@]}"; do
  chosen=""
  for width in 256 128; do
    for layers in 6 5 4 3 2 1; do
      read -r rss speed < <(probe "$attention" "$layers" "$width" 1)
      echo "probe $attention: $layers layers, width $width, 1 head: peak ${rss} MiB"
      if fits "$rss"; then chosen="$layers $width 1 $speed"; break 2; fi
    done
  done
  [ -n "$chosen" ] || { echo "$attention: no model of the grid fits $BUDGET_MIB MiB"; continue; }
  read -r layers width heads speed <<< "$chosen"
  for more in 4 2; do
    read -r rss more_speed < <(probe "$attention" "$layers" "$width" "$more")
    echo "probe $attention: $layers layers, width $width, $more heads: peak ${rss} MiB"
    if fits "$rss"; then heads=$more speed=$more_speed; break; fi
  done
  # The schedule: the steps the probe's speed allows in TRAIN_SECONDS, and a tenth more,
  # so that the time limit, not the step count, ends the run.
  steps=$(awk -v s="$speed" -v t="$TRAIN_SECONDS" -v l="$LENGTH" 'BEGIN { n = int(1.1 * t * s / l); print (n < 20 ? 20 : n) }')
  echo "$attention: $layers layers, width $width, $heads heads; schedule of $steps steps"
  run="runs/long-$attention"
  STEPS=$steps train_once "$run" "${DATA[@]}" --attention "$attention" --layers "$layers" \
    --dim "$width" --ff $((4 * width)) --heads "$heads" --steps "$steps" \
    --eval-every $(( (steps + 9) / 10 )) --eval-batches 4 --time-limit "$TRAIN_SECONDS"
  runs+=("$run")
done
rm -rf runs/long-probe-*
build/compare --metric accuracy --seconds --out results/long_proteins \
  --title "UniProt windows of $LENGTH: held-out accuracy" --runs "$(IFS=,; echo "${runs[*]}")"
for run in "${runs[@]}"; do
  echo "$run: $(build/eval --ckpt "$run/model.ckpt" --batch 1 --max-batches 16 | tail -1)"
done
# The second view, the same steps: each run's held-out accuracy at its last evaluation
# at or before the step where the first run ended.
last=$(awk -F, '$2 == "valid" { s = $1 } END { print s }' "${runs[0]}/log.csv")
for run in "${runs[@]}"; do
  awk -F, -v last="$last" -v run="$run" '$2 == "valid" && $1 <= last { s = $1; a = $5 }
    END { printf "%s: held-out accuracy %s at step %s (the first run ended at %s)\n", run, a, s, last }' "$run/log.csv"
done
