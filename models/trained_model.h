// trained_model.h — a trained model read back from its checkpoint, for build/eval and
// build/sample (build/train resumes a run with tools/training/trainer.h instead).
//
//   Generator dropout(0);
//   TrainedModel trained = load_model("runs/austen/model.ckpt", dropout);
//   trained.model->forward(...);        // evaluation mode
//   trained.task.kind, trained.task.data // what it was trained on
//
// The checkpoint's settings are read through the settings tables (model_settings,
// task_settings), each value checked, and the model's shapes against the tensors in the
// file, before anything is built: a corrupt file is a pf::Error naming it and the key.
#pragma once

#include "models/sequence_model.h"
#include "models/task.h"
#include "nn/checkpoint.h"

#include <memory>
#include <string>

namespace pf::models {

// The model's and the task's settings of a checkpoint, checked (see above).
struct SavedSettings {
    ModelConfig model;
    TaskConfig task;
};
SavedSettings read_saved_settings(const nn::Checkpoint& checkpoint);

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
