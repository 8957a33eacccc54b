#!/usr/bin/env bash
# distributed.sh — data-parallel training on this machine, measured: the reference model
# of `build/bench_model` (D 256, 4 layers, 4 heads, L 1024, batch 8) trained by one
# process of 2 threads and by 2 processes of 1 thread (mpirun), one after the other,
# twice (the machine is noisy); then build/scaling's model of N = 1..64 machines from
# the measured figures (results/scaling-ROUND.{csv,md,png}).
#
#   bash tools/experiments/distributed.sh      # after `make` and `make data`; ~3 minutes
set -euo pipefail
cd "$(dirname "$0")/../.."
STEPS=${STEPS:-16}
COMMON=(--task text --layers 4 --dim 256 --heads 4 --ff 1024 --seq-len 1024 --batch 8
        --steps "$STEPS" --eval-every 100000 --eval-batches 1 --seed 1)
# As root, Open MPI wants to be told twice; --oversubscribe lets 2 processes share fewer cores.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
for round in 1 2; do
  rm -rf "runs/dp-1x2-$round" "runs/dp-2x1-$round"
  build/train "${COMMON[@]}" --threads 2 --out "runs/dp-1x2-$round"
  mpirun --oversubscribe -np 2 build/train "${COMMON[@]}" --threads 1 --out "runs/dp-2x1-$round"
done
for round in 1 2; do
  build/scaling --one "runs/dp-1x2-$round" --many "runs/dp-2x1-$round" --out "results/scaling-$round"
done
