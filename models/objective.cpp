// objective.cpp — batches of inputs and targets: text windows, image rows, protein rows.
#include "models/objective.h"

#include "engine/error.h"
#include "models/vocabulary.h"

#include <algorithm>

namespace pf::models {

// ---- text -------------------------------------------------------------------------

Batch sample_text_windows(std::string_view text, int64_t batch, int64_t length, Generator& gen) {
    PF_CHECK(batch > 0 && length > 0,
             "sample_text_windows: batch and length must be positive, got {} and {}", batch,
             length);
    const int64_t size = int64_t(text.size());
    PF_CHECK(size >= length + 1,
             "sample_text_windows: text of {} bytes is shorter than a window of {} + 1", size,
             length);
    Batch out;
    out.batch = batch;
    out.length = length;
    out.inputs.resize(size_t(batch * length));
    out.targets.resize(size_t(batch * length));
    for (int64_t b = 0; b < batch; ++b) {
        // Window [start, start + length]: every start in 0 .. size - length - 1 is equally likely.
        int64_t start = int64_t(gen.below(uint64_t(size - length)));
        const auto* bytes = reinterpret_cast<const unsigned char*>(text.data()) + start;
        for (int64_t t = 0; t < length; ++t) {
            out.inputs[size_t(b * length + t)] = bytes[t];
            out.targets[size_t(b * length + t)] = bytes[t + 1];
        }
    }
    return out;
}

int64_t text_window_count(std::string_view text, int64_t length) {
    PF_CHECK(length > 0, "text_window_count: length must be positive, got {}", length);
    return (int64_t(text.size()) - 1) / length;
}

Batch text_windows(std::string_view text, int64_t first, int64_t rows, int64_t length) {
    PF_CHECK(first >= 0 && rows > 0 && first + rows <= text_window_count(text, length),
             "text_windows: rows {}..{} outside the {} windows of {} + 1 bytes", first,
             first + rows - 1, text_window_count(text, length), length);
    Batch out{{}, {}, rows, length, {}};
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t t = 0; t < length; ++t) {
            size_t at = size_t((first + r) * length + t);
            out.inputs.push_back(uint8_t(text[at]));
            out.targets.push_back(uint8_t(text[at + 1]));
        }
    return out;
}

// ---- images -----------------------------------------------------------------------

Batch image_batch(const std::vector<std::vector<int32_t>>& images) {
    PF_CHECK(!images.empty() && !images[0].empty(), "image_batch: no images, or an empty one");
    const int64_t length = int64_t(images[0].size());
    Batch out{{}, {}, int64_t(images.size()), length, {}};
    for (const std::vector<int32_t>& tokens : images) {
        PF_CHECK(int64_t(tokens.size()) == length,
                 "image_batch: images of {} and {} intensities in one batch", length,
                 tokens.size());
        // inputs: [start, x_0, ..., x_{L-2}], targets: [x_0, ..., x_{L-1}]
        out.inputs.push_back(kImageStartToken);
        out.inputs.insert(out.inputs.end(), tokens.begin(), tokens.end() - 1);
        out.targets.insert(out.targets.end(), tokens.begin(), tokens.end());
    }
    return out;
}

// ---- proteins ---------------------------------------------------------------------

namespace protein {

namespace {

constexpr float kMaskProbability = 0.15f;   // of each residue being chosen
constexpr float kReplaceWithMask = 0.8f;    // of a chosen residue becoming [MASK]
constexpr float kReplaceWithRandom = 0.1f;  // ... becoming a random amino acid (else kept)

void check_sampling_arguments(const char* name, const std::vector<std::string>& sequences,
                              int64_t batch, int64_t length) {
    PF_CHECK(!sequences.empty(), "{}: no sequences to sample from", name);
    PF_CHECK(batch > 0 && length > 0, "{}: batch and length must be positive, got {} and {}", name,
             batch, length);
}

// An all-padding batch: inputs kPad, targets kIgnore, and if `padded`, key_mask (B, L) 0;
// else no key_mask (concatenated rows, which are never padded).
Batch padding_batch(int64_t batch, int64_t length, bool padded) {
    Batch out;
    out.batch = batch;
    out.length = length;
    out.inputs.assign(size_t(batch * length), kPad);
    out.targets.assign(size_t(batch * length), kIgnore);
    if (padded) out.key_mask = Tensor::zeros({batch, length});
    return out;
}

// Token i of the row [BOS] residues [EOS] of `sequence`.
int32_t row_token(const std::string& sequence, int64_t i) {
    if (i == 0) return kBos;
    if (i == int64_t(sequence.size()) + 1) return kEos;
    return encode(sequence[size_t(i - 1)]);
}

// A random window of `window` tokens in a row of `row_length`, or 0 if the row fits.
int64_t window_start(int64_t row_length, int64_t window, Generator& gen) {
    return row_length > window ? int64_t(gen.below(uint64_t(row_length - window + 1))) : 0;
}

// BERT-style corruption of n tokens in place; targets get the originals of the chosen.
void mask_residues(int32_t* tokens, int32_t* targets, int64_t n, Generator& gen) {
    for (int64_t t = 0; t < n; ++t) {
        if (!is_residue(tokens[t]) || gen.uniform() >= kMaskProbability) continue;
        targets[t] = tokens[t];
        float r = gen.uniform();
        if (r < kReplaceWithMask)
            tokens[t] = kMask;
        else if (r < kReplaceWithMask + kReplaceWithRandom)
            tokens[t] = kFirstResidue + int32_t(gen.below(kStandardResidues));
    }
}

// Row b of `out`: the (input, next token) pairs of `sequence`'s row from token `start`,
// at most L of them; the rest stays padding.
void fill_causal_row(Batch& out, int64_t b, const std::string& sequence, int64_t start) {
    const int64_t length = out.length, row_length = int64_t(sequence.size()) + 2;
    int64_t pairs = std::min(row_length - start, length + 1) - 1;
    float* key_mask = out.key_mask.mutable_data() + b * length;
    for (int64_t t = 0; t < pairs; ++t) {
        size_t at = size_t(b * length + t);
        out.inputs[at] = row_token(sequence, start + t);
        out.targets[at] = row_token(sequence, start + t + 1);
        key_mask[t] = 1.0f;
    }
}

// Row b of `out`: up to L tokens of `sequence`'s row from token `start`, corrupted by
// mask_residues with `gen`; the rest stays padding.
void fill_masked_row(Batch& out, int64_t b, const std::string& sequence, int64_t start,
                     Generator& gen) {
    const int64_t length = out.length, row_length = int64_t(sequence.size()) + 2;
    int64_t real = std::min(row_length - start, length);
    int32_t* tokens = out.inputs.data() + b * length;
    float* key_mask = out.key_mask.mutable_data() + b * length;
    for (int64_t t = 0; t < real; ++t) {
        tokens[t] = row_token(sequence, start + t);
        key_mask[t] = 1.0f;
    }
    mask_residues(tokens, out.targets.data() + b * length, real, gen);
}

// The stream s0 [SEP] s1 [SEP] ...: where each sequence starts in it; the last entry
// is the stream's length.
std::vector<int64_t> stream_offsets(const std::vector<std::string>& sequences) {
    std::vector<int64_t> offset(sequences.size() + 1, 0);
    for (size_t i = 0; i < sequences.size(); ++i)
        offset[i + 1] = offset[i] + int64_t(sequences[i].size()) + 1;
    return offset;
}

// Row b of `out` from the stream, read cyclically from `position`: causal, L + 1 tokens
// whose next-token pairs are the row; masked, L tokens corrupted with `gen`.
void fill_stream_row(Batch& out, int64_t b, const std::vector<std::string>& sequences,
                     const std::vector<int64_t>& offset, int64_t position, Objective objective,
                     Generator& gen) {
    const int64_t length = out.length;
    const int64_t window = objective == Objective::Causal ? length + 1 : length;
    std::vector<int32_t> tokens(static_cast<size_t>(window));
    size_t i = size_t(std::upper_bound(offset.begin(), offset.end(), position) - offset.begin() - 1);
    int64_t within = position - offset[i];  // == size() means the [SEP] after it
    for (int64_t t = 0; t < window; ++t) {
        const std::string& sequence = sequences[i];
        tokens[size_t(t)] = within < int64_t(sequence.size()) ? encode(sequence[size_t(within)]) : kSep;
        if (++within > int64_t(sequence.size())) {  // past the [SEP]: next sequence
            i = (i + 1) % sequences.size();
            within = 0;
        }
    }
    int32_t* row_inputs = out.inputs.data() + b * length;
    int32_t* row_targets = out.targets.data() + b * length;
    if (objective == Objective::Causal) {
        std::copy(tokens.begin(), tokens.begin() + length, row_inputs);
        std::copy(tokens.begin() + 1, tokens.end(), row_targets);
    } else {
        std::copy(tokens.begin(), tokens.end(), row_inputs);
        mask_residues(row_inputs, row_targets, length, gen);
    }
}

}  // namespace

Batch sample_causal_batch(const std::vector<std::string>& sequences, int64_t batch,
                          int64_t length, Generator& gen) {
    check_sampling_arguments("sample_causal_batch", sequences, batch, length);
    Batch out = padding_batch(batch, length, /*padded=*/true);
    for (int64_t b = 0; b < batch; ++b) {
        const std::string& sequence = sequences[gen.below(sequences.size())];
        // A window of up to L + 1 row tokens gives up to L (input, next token) pairs.
        int64_t start = window_start(int64_t(sequence.size()) + 2, length + 1, gen);
        fill_causal_row(out, b, sequence, start);
    }
    return out;
}

Batch sample_masked_batch(const std::vector<std::string>& sequences, int64_t batch,
                          int64_t length, Generator& gen) {
    check_sampling_arguments("sample_masked_batch", sequences, batch, length);
    Batch out = padding_batch(batch, length, /*padded=*/true);
    for (int64_t b = 0; b < batch; ++b) {
        const std::string& sequence = sequences[gen.below(sequences.size())];
        int64_t start = window_start(int64_t(sequence.size()) + 2, length, gen);
        fill_masked_row(out, b, sequence, start, gen);
    }
    return out;
}

Batch sample_concatenated_batch(const std::vector<std::string>& sequences, int64_t batch,
                                int64_t length, Objective objective, Generator& gen) {
    check_sampling_arguments("sample_concatenated_batch", sequences, batch, length);
    const std::vector<int64_t> offset = stream_offsets(sequences);
    const int64_t stream_length = offset.back();
    const int64_t window = objective == Objective::Causal ? length + 1 : length;
    PF_CHECK(stream_length >= window,
             "sample_concatenated_batch: all sequences together make {} tokens, fewer than a "
             "window of {}",
             stream_length, window);
    Batch out = padding_batch(batch, length, /*padded=*/false);
    for (int64_t b = 0; b < batch; ++b) {
        int64_t position = int64_t(gen.below(uint64_t(stream_length)));
        fill_stream_row(out, b, sequences, offset, position, objective, gen);
    }
    return out;
}

std::vector<HeldOutWindow> held_out_windows(const std::vector<std::string>& sequences,
                                            int64_t length, Objective objective,
                                            bool concatenated) {
    PF_CHECK(length > 0, "held_out_windows: length must be positive, got {}", length);
    std::vector<HeldOutWindow> windows;
    if (concatenated) {
        const int64_t stream_length = stream_offsets(sequences).back();
        // Full windows only; a causal window of L pairs reads L + 1 tokens.
        const int64_t count = objective == Objective::Causal ? (stream_length - 1) / length
                                                              : stream_length / length;
        for (int64_t w = 0; w < count; ++w) windows.push_back({0, w * length});
        return windows;
    }
    for (size_t i = 0; i < sequences.size(); ++i) {
        // Causal: the row's pairs (row length - 1 of them) L at a time; masked: its tokens.
        const int64_t row_length = int64_t(sequences[i].size()) + 2;
        const int64_t scored = objective == Objective::Causal ? row_length - 1 : row_length;
        for (int64_t start = 0; start < scored; start += length) windows.push_back({i, start});
    }
    return windows;
}

Batch held_out_batch(const std::vector<std::string>& sequences,
                     const std::vector<HeldOutWindow>& windows, int64_t first, int64_t rows,
                     int64_t length, Objective objective, bool concatenated, uint64_t mask_seed) {
    PF_CHECK(first >= 0 && rows > 0 && first + rows <= int64_t(windows.size()),
             "held_out_batch: rows {}..{} outside the {} windows", first, first + rows - 1,
             windows.size());
    Batch out = padding_batch(rows, length, /*padded=*/!concatenated);
    const std::vector<int64_t> offset = concatenated ? stream_offsets(sequences) : std::vector<int64_t>{};
    for (int64_t b = 0; b < rows; ++b) {
        const HeldOutWindow& window = windows[size_t(first + b)];
        Generator gen(mask_seed + uint64_t(first + b));  // this row's masks, whatever the batch
        if (concatenated)
            fill_stream_row(out, b, sequences, offset, window.start, objective, gen);
        else if (objective == Objective::Causal)
            fill_causal_row(out, b, sequences[window.sequence], window.start);
        else
            fill_masked_row(out, b, sequences[window.sequence], window.start, gen);
    }
    return out;
}

}  // namespace protein

}  // namespace pf::models
