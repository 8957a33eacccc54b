// generate.cpp — recurrent and full-recompute sampling.
#include "models/generate.h"

#include "engine/ops.h"

#include <cmath>

namespace pf::models {

namespace {

void check_temperature(float temperature) {
    PF_CHECK(std::isfinite(temperature) && temperature >= 0,
             "generate: temperature {} (must be a finite number >= 0; 0 takes the most likely token)",
             temperature);
}

}  // namespace

std::vector<std::vector<int32_t>> generate(const SequenceModel& model,
                                           const std::vector<std::vector<int32_t>>& prompts,
                                           int64_t count, float temperature, Generator& gen,
                                           int64_t sample_vocab) {
    PF_CHECK(!prompts.empty() && !prompts[0].empty(), "generate: needs a prompt of at least one token");
    check_temperature(temperature);
    const int64_t B = int64_t(prompts.size()), P = int64_t(prompts[0].size()), V = model.config().vocab;
    const int64_t drawn = sample_vocab > 0 ? std::min(sample_vocab, V) : V;
    for (const auto& p : prompts)
        PF_CHECK(int64_t(p.size()) == P, "generate: prompts of different lengths ({} and {})", p.size(), P);
    std::vector<std::vector<int32_t>> rows = prompts;
    Decoder decoder = model.start_decoding(B);
    std::vector<int32_t> step_tokens(B);
    for (int64_t t = 0; t < P + count - 1; ++t) {
        for (int64_t b = 0; b < B; ++b) step_tokens[b] = rows[b][t];
        Tensor logits = model.decode_step(step_tokens, decoder);  // predicts position t + 1
        if (t + 1 < P) continue;  // still reading the prompt
        for (int64_t b = 0; b < B; ++b)
            rows[b].push_back(sample_token(logits.data() + b * V, drawn, temperature, gen));
    }
    return rows;
}

std::vector<int32_t> generate_by_full_forward(SequenceModel& model, const std::vector<int32_t>& prompt,
                                              int64_t count, float temperature, Generator& gen,
                                              int64_t sample_vocab) {
    PF_CHECK(!prompt.empty(), "generate: needs a prompt of at least one token");
    check_temperature(temperature);
    NoGradGuard no_grad;
    const int64_t V = model.config().vocab;
    const int64_t drawn = sample_vocab > 0 ? std::min(sample_vocab, V) : V;
    std::vector<int32_t> row = prompt;
    for (int64_t i = 0; i < count; ++i) {
        int64_t L = int64_t(row.size());
        Tensor logits = model.forward(row, 1, L);  // (1, L, V): only the last row is used
        row.push_back(sample_token(logits.data() + (L - 1) * V, drawn, temperature, gen));
    }
    return row;
}

}  // namespace pf::models
