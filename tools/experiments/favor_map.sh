#!/usr/bin/env bash
# favor_map.sh — where does FAVOR+ hold? Small causal byte-level models of Jane Austen
# (2 layers, width 64, L = 128, batch 16, the same seed and STEPS each), with the head
# width d = 16, 32, 64 (4, 2, 1 heads) and m = 16 .. 256 random features, against
# a softmax model of each head width. Each cell: the held-out bits per byte on all of
# Persuasion (build/eval), the gap to softmax, and Lemma 2's prediction for the trained
# model (build/eval --attention-shift: the relative RMS error of one attention entry,
# sqrt((e^|x+y|^2 - 1) / m) at the norms the model reached, its worst layer).
# FEATURE_KINDS picks the feature maps (default: orthogonal = FAVOR+, and favor++).
#
#   bash tools/experiments/favor_map.sh      # after `make` and `make data`
# → results/favor_map.md (tables) and results/favor_map.png (heat maps of the gap)
set -euo pipefail
cd "$(dirname "$0")/../.."
source tools/experiments/common.sh
STEPS=${STEPS:-2000}
WIDTHS=${WIDTHS:-"16 32 64"}
FEATURES=${FEATURES:-"16 32 64 128 256"}
FEATURE_KINDS=${FEATURE_KINDS:-"orthogonal favor++"}
COMMON=(--task text --layers 2 --dim 64 --seq-len 128 --batch 16 --steps "$STEPS"
        --lr 2e-3 --eval-batches 4 --seed 1)
mkdir -p results runs/favor-map

# The held-out bits per byte of a run (cached beside its checkpoint).
score() {
  local run=$1
  if [ ! -s "$run/heldout.txt" ]; then
    build/eval --ckpt "$run/model.ckpt" | tail -1 |
      sed -n 's/.*bits_per_byte=\([0-9.]*\).*/\1/p' > "$run/heldout.tmp"
    mv "$run/heldout.tmp" "$run/heldout.txt"
  fi
  cat "$run/heldout.txt"
}
# Lemma 2's relative RMS error of an entry, the largest over layers.
lemma2() {
  local run=$1
  if [ ! -s "$run/lemma2.txt" ]; then
    build/eval --ckpt "$run/model.ckpt" --attention-shift |
      sed -n 's/.*relative RMS error of an entry \([0-9.e+]*\).*/\1/p' |
      sort -g | tail -1 > "$run/lemma2.tmp"
    mv "$run/lemma2.tmp" "$run/lemma2.txt"
  fi
  cat "$run/lemma2.txt"
}

table=results/favor_map.md
data=$(mktemp)
trap 'rm -f "$data"' EXIT
{
  echo "# Where FAVOR+ holds: the gap to softmax over head width and m"
  echo
  echo "Held-out bits per byte on Persuasion after $STEPS steps (2 layers, width 64, L = 128,"
  echo "batch 16, seed 1); each cell: the gap to the softmax model of the same head width,"
  echo "and in brackets Lemma 2's relative RMS error of one attention entry at the norms"
  echo "the trained model reached (its worst layer)."
} > "$table"
for d in $WIDTHS; do
  heads=$((64 / d))
  train_once "runs/favor-map/softmax-d$d" "${COMMON[@]}" --attention softmax --heads "$heads"
done
for kind in $FEATURE_KINDS; do
  {
    echo
    echo "## --feature-kind $kind"
    echo
    printf "| head width | softmax |"; for m in $FEATURES; do printf " m = %s |" "$m"; done; echo
    printf "|---|---|"; for m in $FEATURES; do printf -- "---|"; done; echo
  } >> "$table"
  for d in $WIDTHS; do
    heads=$((64 / d))
    base=$(score "runs/favor-map/softmax-d$d")
    row="| $d | $base |"
    for m in $FEATURES; do
      run="runs/favor-map/$kind-d$d-m$m"
      train_once "$run" "${COMMON[@]}" --attention favor --heads "$heads" --features "$m" \
        --feature-kind "$kind"
      bpb=$(score "$run")
      gap=$(awk -v a="$bpb" -v b="$base" 'BEGIN { printf "%.1f", 100 * (a / b - 1) }')
      row="$row $bpb: ${gap}% ($(lemma2 "$run" | awk '{ printf "%.3g", $1 }')) |"
      echo "$kind $d $m $gap" >> "$data"
    done
    echo "$row" >> "$table"
  done
done
cat "$table"

# Heat maps: one panel per feature kind, head width against m, coloured by the gap.
kinds=($FEATURE_KINDS)
{
  echo "set terminal pngcairo size $((520 * ${#kinds[@]})),420 font ',10'"
  echo "set output 'results/favor_map.png'"
  echo "set multiplot layout 1,${#kinds[@]} title 'Held-out bits per byte: gap to softmax (%), after $STEPS steps'"
  echo "set xlabel 'random features m'; set ylabel 'head width d'"
  echo "set cbrange [-2:10]; set cblabel 'gap (%)'; set palette defined (-2 '#4575b4', 0 '#1a9850', 3 '#fee08b', 6 '#fc8d59', 10 '#d73027')"
  echo "unset key; set tics nomirror"
  for kind in "${kinds[@]}"; do
    echo "set title '--feature-kind $kind'"
    echo "set xtics ($(i=0; for m in $FEATURES; do printf "%s'%s' %d" "$([ $i -gt 0 ] && echo ', ')" "$m" "$i"; i=$((i+1)); done))"
    echo "set ytics ($(i=0; for d in $WIDTHS; do printf "%s'%s' %d" "$([ $i -gt 0 ] && echo ', ')" "$d" "$i"; i=$((i+1)); done))"
    echo "plot '-' using 1:2:3 with image, '-' using 1:2:(sprintf('%.1f', \$3)) with labels"
    for pass in 1 2; do
      yi=0
      for d in $WIDTHS; do
        xi=0
        for m in $FEATURES; do
          echo "$xi $yi $(awk -v k="$kind" -v d="$d" -v m="$m" '$1 == k && $2 == d && $3 == m { print $4 }' "$data")"
          xi=$((xi + 1))
        done
        yi=$((yi + 1))
      done
      echo e
    done
  done
  echo "unset multiplot"
} | gnuplot
echo "results/favor_map.png"
