// trainer.h — the training loop behind build/train, with logging and exact resume.
//
//   TrainOptions options;                 // task, model, batch, schedule, output folder
//   options.task.kind = models::TaskKind::Text;
//   options.steps = 2000;
//   return training::train(options);      // writes options.out/{log.csv, model.ckpt, ...}
//
// A run in named steps: settle its options at the gate of models/run.h (from the
// checkpoint on --resume), build the task, model and optimizer, open the run folder, then loop: each step a batch from
// the task's generator, forward, the batch's loss (models/evaluate.h), backward,
// gradient clipping, AdamW with warm-up and cosine decay. Every eval_every steps (and
// at the end) the model is scored on held-out data and the checkpoint is rewritten
// atomically (models::save_run). The checkpoint holds the model, its random features,
// the optimizer state, the step and every generator, so that --resume continues exactly
// where the run stopped (--stop-after K, or Ctrl-C, which finishes the step first).
//
// Data-parallel: `mpirun -np N build/train ...` trains one model on N processes (see
// tools/distributed/data_parallel.h). Every process draws the whole batch of each step and
// works on its rows (N parts as even as can be: a batch of 10 on 4 processes is 3, 3, 2,
// 2 rows); the gradients are summed; every process takes the same step. The result is
// that of one process with --micro-batches N, bit for bit. Only the first process writes
// files and prints; evaluation is shared out and summed. A checkpoint holds no trace of
// N: a run can be resumed with any number of processes.
//
// Files in `out`: log.csv (step, split, loss, the task's metric, accuracy, lr,
// tokens_per_s, elapsed_s), model.ckpt, summary.json and loss.png; and train.lock,
// locked for as long as a trainer uses the folder: a second trainer on the same folder
// is refused, naming the first one's pid. The data path is stored absolute, so that a
// run can be resumed or evaluated from any folder.
#pragma once

#include "models/run.h"

#include <string>
#include <vector>

namespace pf::training {

// The run's settings (task, model, schedule) and the session's (steps, out, resume, ...):
// models/run.h, where the checkpoint of a run is.
using models::TrainOptions;
using models::train_settings;

// Runs (or resumes) training; returns the process exit code. Throws pf::Error on bad
// input (missing data, a corrupt checkpoint, a folder that already holds a run).
int train(TrainOptions options);

}  // namespace pf::training
