// generate.h — sampling new tokens from a causal model, for any number of tokens.
//
//   Generator gen(1);
//   auto rows = generate(model, {prompt}, 2000, /*temperature=*/0.8f, gen);  // prompt + 2000 tokens
//
// generate() decodes recurrently: each prompt token, then each new one, goes through
// decode_step() once, so a token costs the same at position 10 as at 10,000 (for the
// linear mechanisms; softmax attends over its KV cache). generate_by_full_forward()
// recomputes the whole prefix for every new token, as a model without a recurrent
// form must: the baseline for the decoding speed-up (and the same tokens, given the
// same generator).
//
// The sliding window. A causal Performer is an RNN: its state (S, z) has the same size
// at every position. But a model with learned absolute positions knows only the W
// positions it was trained on (W = max_length, the training length). So when the next
// token would sit at position W, the decoder restarts: it drops every layer's state
// (favor's S and z, softmax's KV cache alike), re-reads the last W/2 tokens at positions
// 0 .. W/2 - 1 and puts the new token at position W/2; decoding then goes on until
// position W again. Every prediction after the first W therefore sees between W/2 + 1
// and W tokens; memory stays constant, and each token costs at most about 2 decode
// steps (W/2 re-read for every W - W/2 new). The first W positions are decoded exactly
// as without the window. Image models (factorised positions of one image) never slide:
// they stop with an error beyond the image's size.
//
//   tokens   0 1 2 3 4 5 6 7 | 8 9 10 11 | 12 ...        (W = 8)
//   position 0 1 2 3 4 5 6 7 | 4 5  6  7 | 4  ...        (token 8 sees tokens 4..8 at 0..4)
#pragma once

#include "models/sequence_model.h"

#include <deque>
#include <vector>

namespace pf::models {

// Recurrent decoding of B sequences with the sliding window above.
class WindowedDecoder {
public:
    WindowedDecoder(const SequenceModel& model, int64_t batch);

    // tokens: the next token of each of the B sequences → logits (B, vocab) of the one after.
    Tensor step(const std::vector<int32_t>& tokens);

    int64_t window() const { return window_; }

private:
    const SequenceModel& model_;
    int64_t window_;                             // W: positions the model knows
    Decoder decoder_;
    std::deque<std::vector<int32_t>> recent_;    // the last W/2 steps' tokens, (steps, B)
};

// prompts: B sequences of equal length (at least 1 token each). Returns each prompt
// followed by `count` sampled tokens, drawn among the first `sample_vocab` tokens
// (0: all; an image model must not draw its start token). Temperature: finite, >= 0
// (0 takes the most likely token).
std::vector<std::vector<int32_t>> generate(const SequenceModel& model,
                                           const std::vector<std::vector<int32_t>>& prompts,
                                           int64_t count, float temperature, Generator& gen,
                                           int64_t sample_vocab = 0);

// The same tokens as generate() (given the same generator), each drawn from a full
// forward pass over the tokens its prediction sees (window_start).
std::vector<int32_t> generate_by_full_forward(SequenceModel& model, const std::vector<int32_t>& prompt,
                                              int64_t count, float temperature, Generator& gen,
                                              int64_t sample_vocab = 0);

// The first token that the prediction after token `index` sees, in the sliding window
// of W = `window` positions: 0 while index < W.
int64_t window_start(int64_t index, int64_t window);

}  // namespace pf::models
