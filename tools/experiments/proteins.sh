#!/usr/bin/env bash
# proteins.sh — the protein experiment (the paper's TrEMBL table at small scale):
# unidirectional (causal) and bidirectional (masked) language models over 18,801
# distinct UniProt sequences, with softmax, favor and relu attention and the paper's
# rivals (reformer both ways, linformer bidirectional only), same size and steps; about
# 80 minutes on 2 cores. Then the long-sequence setting: sequences joined into windows
# of L = 8192, a few training steps of each mechanism, time and memory.
#
#   bash tools/experiments/proteins.sh        # after `make` and `make data`
#   CAUSAL="favor reformer" MASKED="favor linformer" LONG= bash tools/experiments/proteins.sh
#                                             # only those runs
set -euo pipefail
cd "$(dirname "$0")/../.."
source tools/experiments/common.sh
STEPS=${STEPS:-800}
COMMON=(--task protein --dim 128 --heads 4 --ff 512 --layers 3 --features 64 --seq-len 256
        --batch 16 --steps "$STEPS" --lr 3e-3 --warmup 100 --eval-every 100 --eval-batches 16
        --seed 1)
# The rivals compress as much as FAVOR+'s m = 64: linformer projects to k = 64 rows;
# reformer hashes 2 rounds into 8 buckets (2L / 64), chunks of 64.
RIVALS=(--linformer-k 64 --hashes 2 --buckets 8 --chunk 64)
CAUSAL=${CAUSAL-softmax favor relu reformer}
MASKED=${MASKED-softmax favor relu linformer reformer}
LONG=${LONG-favor relu softmax}
for objective in causal masked; do
  if [ "$objective" = causal ]; then attentions=($CAUSAL); else attentions=($MASKED); fi
  [ ${#attentions[@]} -gt 0 ] || continue
  runs=()
  for attention in "${attentions[@]}"; do
    run="runs/protein-$objective-$attention"
    train_once "$run" "${COMMON[@]}" "${RIVALS[@]}" --objective "$objective" --attention "$attention"
    runs+=("$run")
  done
  build/compare --metric accuracy --out "results/protein-$objective" \
    --title "UniProt, $objective: test accuracy" --runs "$(IFS=,; echo "${runs[*]}")"
  for attention in "${attentions[@]}"; do
    echo "$objective $attention: $(build/eval --ckpt "runs/protein-$objective-$attention/model.ckpt" --max-batches 64 | tail -1)"
  done
done
# What counting contexts alone gets on the test split (back-off n-grams).
build/ngram --order 8
# Long sequences: windows of 8192 residues, batch 1, 10 steps each.
for attention in $LONG; do
  run="runs/protein-long-$attention"
  rm -rf "$run"
  build/train --task protein --objective causal --concatenated --seq-len 8192 --batch 1 \
    --dim 128 --heads 4 --ff 512 --layers 3 --features 64 --steps 10 --eval-every 10 \
    --eval-batches 1 --lr 1e-3 --attention "$attention" --out "$run" || echo "$attention: failed"
  echo "long $attention: $(grep -o '"tokens_per_s": [0-9.]*' "$run/summary.json") $(grep -o '"peak_rss_mib": [0-9.]*' "$run/summary.json")"
done
