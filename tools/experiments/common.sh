# common.sh — sourced by the experiment scripts.
#
#   train_once RUN FLAGS...   train RUN with FLAGS unless it already finished
#                             (summary.json); a run stopped midway (model.ckpt, no
#                             summary) is resumed from its checkpoint, not restarted.
train_once() {
  local run=$1; shift
  if [ -f "$run/summary.json" ]; then
    echo "$run: already done"
  elif [ -f "$run/model.ckpt" ]; then
    build/train --resume --steps "$STEPS" --out "$run"
  else
    rm -rf "$run"
    build/train "$@" --out "$run"
  fi
}

# The image recipe of docs/images.md (fashion.sh, depth.sh): width 128, 4 heads, m = 64,
# batch 8, learning rate 3e-3; the Reformer hashes 2 rounds into 24 buckets (about
# 2L / 64), chunks of 64. The scripts add --steps and --eval-every.
FASHION_RECIPE=(--task image --dim 128 --heads 4 --ff 512 --features 64 --batch 8
                --lr 3e-3 --warmup 50 --eval-batches 12 --seed 1 --hashes 2 --buckets 24 --chunk 64)
