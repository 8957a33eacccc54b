// generate.h — sampling new tokens from a causal model.
//
//   Generator gen(1);
//   auto rows = generate(model, {prompt}, 200, /*temperature=*/0.8f, gen);  // prompt + 200 tokens
//
// generate() decodes recurrently: each prompt token, then each new one, goes through
// decode_step() once, so a token costs the same at position 10 as at 10,000 (for the
// linear mechanisms; softmax attends over its KV cache). generate_by_full_forward()
// recomputes the whole prefix for every new token, as a model without a recurrent
// form must: the baseline for the decoding speed-up (and the same tokens, given the
// same generator).
#pragma once

#include "models/sequence_model.h"

#include <vector>

namespace pf::models {

// prompts: B sequences of equal length (at least 1 token each). Returns each prompt
// followed by `count` sampled tokens, drawn among the first `sample_vocab` tokens
// (0: all; an image model must not draw its start token). Temperature: finite, >= 0
// (0 takes the most likely token).
std::vector<std::vector<int32_t>> generate(const SequenceModel& model,
                                           const std::vector<std::vector<int32_t>>& prompts,
                                           int64_t count, float temperature, Generator& gen,
                                           int64_t sample_vocab = 0);

std::vector<int32_t> generate_by_full_forward(SequenceModel& model, const std::vector<int32_t>& prompt,
                                              int64_t count, float temperature, Generator& gen,
                                              int64_t sample_vocab = 0);

}  // namespace pf::models
