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
