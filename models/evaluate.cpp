// evaluate.cpp — batch loss, scores, held-out evaluation, and recurrent scoring.
#include "models/evaluate.h"

#include "engine/ops.h"
#include "models/generate.h"
#include "models/vocabulary.h"

#include <algorithm>

namespace pf::models {

Tensor batch_loss(const Tensor& logits, const std::vector<int32_t>& targets) {
    const int64_t V = logits.shape().back();
    return cross_entropy(reshape(logits, {int64_t(targets.size()), V}), targets, kIgnore);
}

void Score::add(const Tensor& logits, const std::vector<int32_t>& targets) {
    const int64_t V = logits.shape().back();
    target_counts.resize(size_t(V), 0);
    int64_t scored = 0;
    const float* l = logits.data();
    for (size_t i = 0; i < targets.size(); ++i) {
        if (targets[i] == kIgnore) continue;
        PF_CHECK(targets[i] >= 0 && targets[i] < V, "score: target {} is outside the vocabulary "
                 "of {}", targets[i], V);
        const float* row = l + int64_t(i) * V;
        correct += std::max_element(row, row + V) - row == targets[i];
        target_counts[size_t(targets[i])]++;
        scored++;
    }
    if (scored == 0) return;
    loss_sum += double(batch_loss(logits, targets).item()) * double(scored);
    tokens += scored;
}

Evaluation evaluate(SequenceModel& model, TaskKind kind, const HeldOutSet& held_out,
                    int64_t batch_rows, int64_t max_batches, Reading reading,
                    const EvaluationShare& share) {
    NoGradGuard no_grad;
    const bool was_training = model.training();
    model.eval();
    const int64_t batches = std::min(max_batches, (held_out.rows + batch_rows - 1) / batch_rows);
    std::vector<double> batch_losses(size_t(batches), 0.0);
    Score total;
    total.target_counts.assign(size_t(model.config().vocab), 0);
    for (int64_t k = share.index; k < batches; k += share.count) {
        const int64_t first = k * batch_rows;
        const Batch b = held_out.batch(first, std::min(batch_rows, held_out.rows - first));
        Score part;
        if (reading == Reading::Whole)
            part.add(model.forward(b.inputs, b.batch, b.length, b.key_mask), b.targets);
        else
            score_recurrently(model, b.inputs, b.targets, b.batch, b.length, part);
        batch_losses[size_t(k)] = part.loss_sum;
        total.tokens += part.tokens;
        total.correct += part.correct;
        for (size_t t = 0; t < part.target_counts.size(); ++t) total.target_counts[t] += part.target_counts[t];
    }
    model.train(was_training);
    if (share.sum) {
        std::vector<int64_t> counts = total.target_counts;
        counts.insert(counts.end(), {total.tokens, total.correct});
        share.sum(batch_losses, counts);
        total.correct = counts.back(), counts.pop_back();
        total.tokens = counts.back(), counts.pop_back();
        total.target_counts = counts;
    }
    for (double loss : batch_losses) total.loss_sum += loss;  // in batch order
    PF_CHECK(total.tokens > 0, "evaluation: the held-out data has no scored tokens");
    Evaluation e;
    e.loss = total.loss_sum / double(total.tokens);
    e.accuracy = double(total.correct) / double(total.tokens);
    e.majority = double(*std::max_element(total.target_counts.begin(), total.target_counts.end())) /
                 double(total.tokens);
    e.tokens = total.tokens;
    e.metrics = task_metrics(kind, e.loss, e.accuracy);
    return e;
}

// Each token's loss is log sum_v exp(logit_v) - logit_target, computed in double.
void score_recurrently(const SequenceModel& model, const std::vector<int32_t>& inputs,
                       const std::vector<int32_t>& targets, int64_t batch, int64_t length,
                       Score& score) {
    PF_CHECK(int64_t(inputs.size()) == batch * length && targets.size() == inputs.size(),
             "score: {} inputs and {} targets for ({}, {}) sequences", inputs.size(), targets.size(),
             batch, length);
    WindowedDecoder decoder(model, batch);
    std::vector<int32_t> step_tokens(batch), step_targets(batch);
    for (int64_t t = 0; t < length; ++t) {
        for (int64_t b = 0; b < batch; ++b) {
            step_tokens[b] = inputs[b * length + t];
            step_targets[b] = targets[b * length + t];
        }
        score.add(decoder.step(step_tokens), step_targets);  // logits (B, V)
    }
}

}  // namespace pf::models
