// run.h — one home for a training run: every setting it stores, the parts a checkpoint
// holds, and the checkpoint itself, saved and restored side by side.
//
//   TrainOptions options = settle_run_options(requested, &checkpoint, processes);  // the gate
//   RunParts run(options);              // generators from the seed, nothing built yet
//   build_model(run);                   // the model (options.model) and its optimizer
//   restore_run(checkpoint, run);       // on --resume: every part back, bit for bit
//   save_run("runs/austen/model.ckpt", run);
//
// A checkpoint of a run holds, in this order of the list (save_run, restore_run):
//   settings   every "task.*", "model.*" and "train.*" key of the tables below;
//   elapsed    "train.elapsed_s", the seconds spent in training steps;
//   step       the steps done;
//   model      "model.*" tensors: weights, random features, running statistics;
//   optimizer  "optim.*" tensors: AdamW's moments and step count;
//   generators "batches", "dropout", "features": (seed, offset) each.
// The settings are read first, by the gate, since they say what model to build; the
// other parts are restored into the model built from them.
//
// build/eval and build/sample read a run's model alone: load_model.
#pragma once

#include "models/sequence_model.h"
#include "models/settings.h"
#include "models/task.h"
#include "nn/checkpoint.h"
#include "nn/optim.h"

#include <memory>
#include <string>
#include <vector>

namespace pf::models {

// ---- the settings ------------------------------------------------------------------------

struct TrainOptions {
    // The run: stored in its checkpoint, each setting described once in a table
    // (task_settings, model_settings, train_settings), from which build/train's flags are made.
    TaskConfig task;
    ModelConfig model;          // the task fills in vocab, objective and positions
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
    double time_limit = 0;      // end the run once this many seconds of training (the
                                // run's total, evaluations excluded) are done; 0: never
    bool quiet = false;         // no progress bar (tests)
    bool recompute = false;     // attention recomputed in backward (nn::AttentionConfig)
    // With resume: the flags the command line gave (e.g. "--dim"). Each flag of a setting
    // must agree with the run's own value, or the resume is refused.
    std::vector<std::string> given_flags;
};

// Every setting a checkpoint stores, each with its key, flag, help and range:
const Settings<TaskConfig>& task_settings();     // "task.*" and "train.seq_len": --task, ...
const Settings<ModelConfig>& model_settings();   // "model.*": --attention, --dim, ...
const Settings<TrainOptions>& train_settings();  // "train.*", the schedule: --batch, --lr, ...

// Reads a checkpoint's settings as they are now written: fills the baselines' settings
// (model.linformer_k, model.hashes, model.buckets), which older checkpoints lack, with
// their defaults; and checkpoints written before there was a settings table kept the
// feature kind as "model.orthogonal" = 1 or 0: rewrites it as "model.feature_kind".
void upgrade_model_settings(SettingsMap& map);

// The model's and the task's settings of a checkpoint, each checked, and checked against
// the tensors the file holds (a configuration claiming 10^8 layers or a width of 10^6 is
// refused before anything is allocated): pf::Error naming the file and the key.
struct SavedSettings {
    ModelConfig model;
    TaskConfig task;
};
SavedSettings read_saved_settings(const nn::Checkpoint& checkpoint);

// The one gate of a training run: the options it goes on with. A new run's are
// `requested`; a resumed run's (`resumed` not null) are its checkpoint's settings, each
// flag given that disagrees refused, only the session's (steps, stop_after, out, quiet,
// recompute) as requested. Then every setting against its range, the batch against
// its `processes` x micro-batches parts, and a step's memory against the machine's,
// before anything is allocated; last the defaults that depend on other settings.
TrainOptions settle_run_options(TrainOptions requested, const nn::Checkpoint* resumed,
                                int64_t processes);

// ---- the parts -----------------------------------------------------------------------------

// A run's random streams, each its own: the data order, dropout masks, feature redraws.
struct Generators {
    Generator batches, dropout, features;
    explicit Generators(uint64_t seed)
        : batches(seed * 4 + 1), dropout(seed * 4 + 2), features(seed * 4 + 3) {}
};

// Everything a checkpoint of the run holds (see the top of this file).
struct RunParts {
    TrainOptions options;
    Generators generators;
    std::unique_ptr<SequenceModel> model;  // built by build_model
    std::unique_ptr<nn::AdamW> optimizer;
    int64_t step = 0;
    double elapsed = 0;  // seconds spent in training steps, over every session

    explicit RunParts(TrainOptions settled)
        : options(std::move(settled)), generators(options.seed) {}
};

// The model options.model describes (the task has set its vocabulary and positions;
// initialised from the seed) and its AdamW optimizer.
void build_model(RunParts& run);

// Writes every part of the run to `path`, atomically (nn::save_checkpoint).
void save_run(const std::string& path, const RunParts& run);
// Every part but the settings (which built the run) back from `checkpoint`: the model,
// the optimizer, the generators, the step and the elapsed seconds. pf::Error naming the
// part if one is missing or of another shape; nothing changes in the model then.
void restore_run(const nn::Checkpoint& checkpoint, RunParts& run);

// ---- a run's model alone, for build/eval and build/sample ----------------------------------

struct TrainedModel {
    std::unique_ptr<SequenceModel> model;
    TaskConfig task;
    int64_t step = 0;
};

// Overrides give the trained weights another attention mechanism or number of random
// features (drawn from `seed`): e.g. a softmax-trained model scored with FAVOR+.
struct ModelOverrides {
    std::string attention;  // a mechanism name; empty: as trained
    int64_t features = 0;   // 0: as trained
    uint64_t seed = 0;      // for the features the overrides call for
};

// `dropout` must outlive the model (it is in evaluation mode, so it draws nothing).
TrainedModel load_model(const std::string& checkpoint_path, Generator& dropout,
                        const ModelOverrides& overrides = {});

}  // namespace pf::models
