// whole_model.cpp — a model's step on random tokens, and softmax's memory (whole_model.h).
#include "tools/bench/whole_model.h"

#include "models/evaluate.h"

namespace pf::bench {
namespace {

// `count` tokens drawn uniformly from the vocabulary.
std::vector<int32_t> random_tokens(int64_t count, int64_t vocab, Generator& gen) {
    std::vector<int32_t> tokens(count);
    for (auto& t : tokens) t = int32_t(gen.below(uint64_t(vocab)));
    return tokens;
}

}  // namespace

ModelStep::ModelStep(const models::ModelConfig& config, int64_t batch, int64_t length, bool train)
    : model(config, init, dropout), batch(batch), length(length),
      inputs(random_tokens(batch * length, config.vocab, gen)),
      targets(random_tokens(batch * length, config.vocab, gen)) {
    if (train) optimizer.emplace(model.named_parameters(), 1e-4f);
}

void ModelStep::operator()() {
    model.zero_grad();
    models::batch_loss(model.forward(inputs, batch, length), targets).backward();
    if (!optimizer) return;
    nn::clip_grad_norm(model.parameters(), 1.0f);
    optimizer->step();
}

double attention_matrix_mib(const models::ModelConfig& config, int64_t length) {
    return double(config.attention.heads) * double(length) * double(length) * 4 / (1 << 20);
}

double softmax_matrices_mib(const models::ModelConfig& config, int64_t length) {
    return double(config.layers + 2) * attention_matrix_mib(config, length);
}

}  // namespace pf::bench
