// whole_model.h — what the benchmarks of whole models share (build/bench --paper and
// build/bench_model): a step on random tokens, and the size of softmax's attention
// matrices.
#pragma once

#include "models/sequence_model.h"
#include "nn/optim.h"

#include <cstdint>
#include <optional>
#include <vector>

namespace pf::bench {

// A model on random tokens (`batch` sequences of `length`), ready to step again and
// again: gradients cleared first (as the trainer does), then forward and backward of the
// mean cross-entropy; with `train`, also gradient clipping (norm 1) and an AdamW step.
struct ModelStep {
    Generator init{1}, dropout{2}, gen{3};
    models::SequenceModel model;
    std::optional<nn::AdamW> optimizer;
    int64_t batch, length;
    std::vector<int32_t> inputs, targets;
    ModelStep(const models::ModelConfig& config, int64_t batch, int64_t length, bool train);
    void operator()();
};

// MiB of one (H, L, L) attention matrix of softmax at length L.
double attention_matrix_mib(const models::ModelConfig& config, int64_t length);

// MiB of softmax's attention matrices at a training step's peak: each layer keeps its
// probabilities for backward, and the last layer's backward adds two more (the
// gradients of the probabilities and of the scores).
double softmax_matrices_mib(const models::ModelConfig& config, int64_t length);

}  // namespace pf::bench
