// generate.cpp — recurrent decoding with a sliding window, and sampling.
#include "models/generate.h"

#include "engine/ops.h"

#include <cmath>

namespace pf::models {

namespace {

// Tokens the window re-reads when it restarts (at positions 0 .. W/2 - 1).
int64_t reread_length(int64_t window) { return window / 2; }

// Sampling divides the logits by the temperature: NaN would draw only the last token.
void check_temperature(float temperature) {
    PF_CHECK(std::isfinite(temperature) && temperature >= 0,
             "generate: temperature {} (must be a finite number >= 0; 0 takes the most likely token)",
             temperature);
}

}  // namespace

WindowedDecoder::WindowedDecoder(const SequenceModel& model, int64_t batch)
    : model_(model),
      window_(model.config().image_positions()
                  ? model.config().image_height * model.config().image_width * model.config().image_channels
                  : model.config().attention.max_length),
      decoder_(model.start_decoding(batch)) {}

Tensor WindowedDecoder::step(const std::vector<int32_t>& tokens) {
    if (decoder_.position == window_) {
        PF_CHECK(!model_.config().image_positions(),
                 "generate: an image model decodes at most {} positions (one image)", window_);
        // Restart: a fresh state that has read only the last W/2 tokens, at positions 0...
        decoder_ = model_.start_decoding(decoder_.batch);
        for (const std::vector<int32_t>& past : recent_) model_.decode_step(past, decoder_);
    }
    Tensor logits = model_.decode_step(tokens, decoder_);  // ...and this one right after them
    const int64_t keep = model_.config().image_positions() ? 0 : reread_length(window_);
    if (keep > 0) {
        recent_.push_back(tokens);
        if (int64_t(recent_.size()) > keep) recent_.pop_front();
    }
    return logits;
}

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
    WindowedDecoder decoder(model, B);
    std::vector<int32_t> step_tokens(B);
    for (int64_t t = 0; t < P + count - 1; ++t) {
        for (int64_t b = 0; b < B; ++b) step_tokens[b] = rows[b][t];
        Tensor logits = decoder.step(step_tokens);  // predicts token t + 1
        if (t + 1 < P) continue;  // still reading the prompt
        for (int64_t b = 0; b < B; ++b)
            rows[b].push_back(sample_token(logits.data() + b * V, drawn, temperature, gen));
    }
    return rows;
}

// Restarts happen at tokens W, W + P, W + 2P, ... with period P = W - W/2 (the new
// tokens between two restarts); the one before `index` begins with its W/2 re-read tokens.
int64_t window_start(int64_t index, int64_t window) {
    if (index < window) return 0;
    const int64_t period = window - reread_length(window);
    const int64_t last_restart = window + (index - window) / period * period;
    return last_restart - reread_length(window);
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
        const int64_t last = int64_t(row.size()) - 1;
        const int64_t start = model.config().image_positions()
                                  ? 0
                                  : window_start(last, model.config().attention.max_length);
        const int64_t L = last + 1 - start;
        std::vector<int32_t> seen(row.begin() + start, row.end());
        Tensor logits = model.forward(seen, 1, L);  // (1, L, V): only the last row is used
        row.push_back(sample_token(logits.data() + (L - 1) * V, drawn, temperature, gen));
    }
    return row;
}

}  // namespace pf::models
