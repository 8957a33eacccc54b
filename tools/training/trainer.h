// trainer.h — the training loop behind build/train, with logging and exact resume.
//
//   TrainOptions options;                 // task, model, batch, schedule, output folder
//   options.task.kind = models::TaskKind::Text;
//   options.steps = 2000;
//   return training::train(options);      // writes options.out/{log.csv, model.ckpt, ...}
//
// A run in named steps: settle its options (from the checkpoint on --resume), build the
// task, model and optimizer, open the run folder, then loop: each step a batch from
// the task's generator, forward, the batch's loss (models/evaluate.h), backward,
// gradient clipping, AdamW with warm-up and cosine decay. Every eval_every steps (and
// at the end) the model is scored on held-out data and the checkpoint is rewritten
// atomically. The checkpoint holds the model, its random features, the optimizer
// state, the step and every generator, so that --resume continues exactly where the
// run stopped (--stop-after K, or Ctrl-C, which finishes the step first).
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

#include "models/sequence_model.h"
#include "models/settings.h"
#include "models/task.h"

#include <string>
#include <vector>

namespace pf::training {

struct TrainOptions {
    // The run: stored in its checkpoint, each setting described once in a table
    // (task_settings, model_settings, train_settings), from which build/train's flags are made.
    models::TaskConfig task;
    models::ModelConfig model;  // the task fills in vocab, objective and positions
    int64_t batch = 8;          // sequences per step, over all processes
    int64_t micro_batches = 1;  // parts of each process's share, run one after another
    float lr = 1e-3f, min_lr_ratio = 0.1f, weight_decay = 0.1f, clip = 1.0f;
    int64_t warmup = -1;        // steps of linear warm-up; -1: 5% of the steps, at most 200
    int64_t redraw = 0;         // redraw random features every N steps; 0: never
    uint64_t seed = 0;
    int64_t eval_every = 0;     // 0: ten evaluations per run
    int64_t eval_batches = 16;  // held-out batches per evaluation

    // The session: may differ from one --resume to the next.
    int64_t steps = 1000;       // the run's total; a resumed run goes on to this step
    std::string out = "runs/run";
    bool resume = false;        // continue the run in `out` (its own settings) to `steps`
    int64_t stop_after = 0;     // stop (with a checkpoint) once this step is done; 0: never;
                                // on resume a step already done is refused
    bool quiet = false;         // no progress bar (tests)
    bool recompute = false;     // attention recomputed in backward (nn::AttentionConfig)
    // With resume: the flags the command line gave (e.g. "--dim"). Each flag of a setting
    // must agree with the run's own value, or the resume is refused.
    std::vector<std::string> given_flags;
};

// The settings "train.*" of TrainOptions (the schedule), with their flags.
const models::Settings<TrainOptions>& train_settings();

// Runs (or resumes) training; returns the process exit code. Throws pf::Error on bad
// input (missing data, a corrupt checkpoint, a folder that already holds a run).
int train(TrainOptions options);

}  // namespace pf::training
