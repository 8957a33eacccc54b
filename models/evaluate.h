// evaluate.h — the loss of a batch (the one formula training and evaluation share), and
// a model's figures on held-out data.
//
//   Tensor logits = model.forward(b.inputs, b.batch, b.length, b.key_mask);
//   Tensor loss = batch_loss(logits, b.targets);          // training: backward from here
//
//   HeldOutSet held_out{rows, [&](int64_t first, int64_t count) { return ...; }};
//   Evaluation e = evaluate(model, TaskKind::Text, held_out, 8, 100);
//   // e.loss (nats per token), e.metrics: bits_per_byte, accuracy
#pragma once

#include "models/sequence_model.h"
#include "models/task.h"

#include <functional>
#include <vector>

namespace pf::models {

// Mean cross-entropy (nats) of logits (..., V) against targets (one per row of V),
// over the scored targets (kIgnore skipped).
Tensor batch_loss(const Tensor& logits, const std::vector<int32_t>& targets);

// Sums over scored tokens, added up batch by batch.
struct Score {
    double loss_sum = 0;                 // nats
    int64_t tokens = 0;                  // scored targets
    int64_t correct = 0;                 // scored targets that were the most likely token
    std::vector<int64_t> target_counts;  // per token: how often it was the target
    // logits (N, V) and N targets: adds their loss (batch_loss), argmax hits and counts.
    void add(const Tensor& logits, const std::vector<int32_t>& targets);
};

struct Evaluation {
    double loss = 0;       // mean nats per scored token
    double accuracy = 0;   // share of scored tokens whose argmax is the target
    double majority = 0;   // the accuracy of always predicting the most common target
    int64_t tokens = 0;
    std::vector<Metric> metrics;  // the task's, headline first (models/task.h)
};

// A fixed held-out set of `rows` rows: batch(first, count) gives rows [first, first +
// count), the same on every call (tools/training/tasks.h builds them from the data with
// models/objective.h).
struct HeldOutSet {
    int64_t rows = 0;
    std::function<Batch(int64_t first, int64_t count)> batch;
};

// Evaluation shared out over processes: this one scores the batches k with
// k % count == index; `sum` adds up over the processes the per-batch loss sums (each is
// non-zero in one process only, so the sum is exact) and the counts. The figures are then
// those of one process, bit for bit.
struct EvaluationShare {
    int index = 0, count = 1;
    std::function<void(std::vector<double>& batch_losses, std::vector<int64_t>& counts)> sum;
};

// How the model reads each row: all positions in one forward pass, or one token at a
// time as generate() reads (recurrent decoding; beyond the training length, the sliding
// window of models/generate.h).
enum class Reading { Whole, TokenByToken };

// Scores the model on the held-out set, `batch_rows` rows at a time, at most `max_batches`
// batches, in evaluation mode without gradients. pf::Error if no token is scored.
Evaluation evaluate(SequenceModel& model, TaskKind kind, const HeldOutSet& held_out,
                    int64_t batch_rows, int64_t max_batches, Reading reading = Reading::Whole,
                    const EvaluationShare& share = {});

// Adds to `score` the next-token scores of B sequences of L tokens read as generate()
// reads them (token by token, with the sliding window): inputs and targets (B, L),
// row-major. evaluate() with Reading::TokenByToken calls it
// (models/generate.h's WindowedDecoder does the reading).
void score_recurrently(const SequenceModel& model, const std::vector<int32_t>& inputs,
                       const std::vector<int32_t>& targets, int64_t batch, int64_t length,
                       Score& score);

}  // namespace pf::models
