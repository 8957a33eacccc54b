// fasta.cpp — FASTA parsing, splits and batch sampling.
#include "tools/data/fasta.h"

#include "engine/error.h"
#include "engine/files.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <numeric>
#include <unordered_set>

namespace pf::data {

namespace {

// "'7'" for printable characters, "byte 0x07" for others.
std::string describe(char c) {
    if (std::isprint(uint8_t(c))) return fmt::format("'{}'", c);
    return fmt::format("byte 0x{:02x}", int(uint8_t(c)));
}

}  // namespace


// ---- FASTA -------------------------------------------------------------------

std::vector<std::string> read_fasta(const std::string& path) {
    const std::string text = read_file(path);
    std::vector<std::string> sequences;
    int64_t header_line = 0;  // of the record being read; 0 before the first '>'
    bool stopped = false;     // the record being read has seen its closing '*'

    auto check_last_record = [&] {
        PF_CHECK(header_line == 0 || !sequences.back().empty(), "{}:{}: record has no residues",
                 path, header_line);
    };

    int64_t line_number = 0;
    for (size_t begin = 0; begin < text.size();) {
        size_t end = std::min(text.find('\n', begin), text.size());
        std::string_view line(text.data() + begin, end - begin);
        begin = end + 1;
        ++line_number;

        while (!line.empty() && std::isspace(uint8_t(line.back()))) line.remove_suffix(1);
        if (line.empty() || line[0] == ';') continue;
        if (line[0] == '>') {
            check_last_record();
            sequences.emplace_back();
            header_line = line_number;
            stopped = false;
            continue;
        }
        PF_CHECK(header_line != 0, "{}:{}: sequence data before the first '>' header", path,
                 line_number);
        std::string& sequence = sequences.back();
        for (char c : line) {
            if (c == ' ' || c == '\t') continue;
            if (c == '*') {
                stopped = true;
                continue;
            }
            PF_CHECK(std::isalpha(uint8_t(c)), "{}:{}: {} is not an amino-acid letter", path,
                     line_number, describe(c));
            PF_CHECK(!stopped, "{}:{}: residues after '*', which may only end a sequence", path,
                     line_number);
            sequence.push_back(protein::decode(protein::encode(c)));  // upper case; unknown → 'X'
        }
    }
    check_last_record();
    PF_CHECK(!sequences.empty(), "{}: no FASTA records (lines starting with '>')", path);
    return sequences;
}

// ---- splits ------------------------------------------------------------------

ProteinSplits split_proteins(std::vector<std::string> sequences, uint64_t seed,
                             double valid_fraction, double test_fraction) {
    PF_CHECK(valid_fraction >= 0 && test_fraction >= 0 && valid_fraction + test_fraction <= 1,
             "split_proteins: fractions must be >= 0 and sum to at most 1, got {} and {}",
             valid_fraction, test_fraction);

    // Indices of first occurrences, in input order.
    std::vector<size_t> distinct;
    {
        std::unordered_set<std::string_view> seen;
        for (size_t i = 0; i < sequences.size(); ++i)
            if (seen.insert(sequences[i]).second) distinct.push_back(i);
    }
    const size_t n = distinct.size();
    size_t n_test = size_t(std::llround(double(n) * test_fraction));
    size_t n_valid = std::min(size_t(std::llround(double(n) * valid_fraction)), n - n_test);

    // A uniformly random permutation (Fisher-Yates): its first n_test entries go to
    // test, the next n_valid to valid, the rest to train.
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), size_t(0));
    Generator gen(seed);
    for (size_t i = n; i > 1; --i) std::swap(order[i - 1], order[gen.below(i)]);
    enum Part : uint8_t { Train, Valid, Test };
    std::vector<Part> part(n, Train);
    for (size_t k = 0; k < n_test + n_valid; ++k) part[order[k]] = k < n_test ? Test : Valid;

    ProteinSplits splits;
    for (size_t k = 0; k < n; ++k) {
        std::string& sequence = sequences[distinct[k]];
        (part[k] == Test    ? splits.test
         : part[k] == Valid ? splits.valid
                            : splits.train)
            .push_back(std::move(sequence));
    }
    return splits;
}

// ---- batches -----------------------------------------------------------------

namespace {

using namespace protein;

constexpr float kMaskProbability = 0.15f;   // of each residue being chosen
constexpr float kReplaceWithMask = 0.8f;    // of a chosen residue becoming [MASK]
constexpr float kReplaceWithRandom = 0.1f;  // ... becoming a random amino acid (else kept)

void check_sampling_arguments(const char* name, const std::vector<std::string>& sequences,
                              int64_t batch, int64_t length) {
    PF_CHECK(!sequences.empty(), "{}: no sequences to sample from", name);
    PF_CHECK(batch > 0 && length > 0, "{}: batch and length must be positive, got {} and {}", name,
             batch, length);
}

// An all-padding batch: tokens kPad, targets kIgnore, key_mask 0.
ProteinBatch padding_batch(int64_t batch, int64_t length) {
    ProteinBatch out;
    out.batch = batch;
    out.length = length;
    out.tokens.assign(size_t(batch * length), kPad);
    out.targets.assign(size_t(batch * length), kIgnore);
    out.key_mask.assign(size_t(batch * length), 0.0f);
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
void fill_causal_row(ProteinBatch& out, int64_t b, const std::string& sequence, int64_t start) {
    const int64_t length = out.length, row_length = int64_t(sequence.size()) + 2;
    int64_t pairs = std::min(row_length - start, length + 1) - 1;
    for (int64_t t = 0; t < pairs; ++t) {
        size_t at = size_t(b * length + t);
        out.tokens[at] = row_token(sequence, start + t);
        out.targets[at] = row_token(sequence, start + t + 1);
        out.key_mask[at] = 1.0f;
    }
}

// Row b of `out`: up to L tokens of `sequence`'s row from token `start`, corrupted by
// mask_residues with `gen`; the rest stays padding.
void fill_masked_row(ProteinBatch& out, int64_t b, const std::string& sequence, int64_t start,
                     Generator& gen) {
    const int64_t length = out.length, row_length = int64_t(sequence.size()) + 2;
    int64_t real = std::min(row_length - start, length);
    int32_t* tokens = out.tokens.data() + b * length;
    for (int64_t t = 0; t < real; ++t) {
        tokens[t] = row_token(sequence, start + t);
        out.key_mask[size_t(b * length + t)] = 1.0f;
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
void fill_stream_row(ProteinBatch& out, int64_t b, const std::vector<std::string>& sequences,
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
    int32_t* row_tokens = out.tokens.data() + b * length;
    int32_t* row_targets = out.targets.data() + b * length;
    std::fill(out.key_mask.begin() + b * length, out.key_mask.begin() + (b + 1) * length, 1.0f);
    if (objective == Objective::Causal) {
        std::copy(tokens.begin(), tokens.begin() + length, row_tokens);
        std::copy(tokens.begin() + 1, tokens.end(), row_targets);
    } else {
        std::copy(tokens.begin(), tokens.end(), row_tokens);
        mask_residues(row_tokens, row_targets, length, gen);
    }
}

}  // namespace

ProteinBatch sample_causal_batch(const std::vector<std::string>& sequences, int64_t batch,
                                 int64_t length, Generator& gen) {
    check_sampling_arguments("sample_causal_batch", sequences, batch, length);
    ProteinBatch out = padding_batch(batch, length);
    for (int64_t b = 0; b < batch; ++b) {
        const std::string& sequence = sequences[gen.below(sequences.size())];
        // A window of up to L + 1 row tokens gives up to L (input, next token) pairs.
        int64_t start = window_start(int64_t(sequence.size()) + 2, length + 1, gen);
        fill_causal_row(out, b, sequence, start);
    }
    return out;
}

ProteinBatch sample_masked_batch(const std::vector<std::string>& sequences, int64_t batch,
                                 int64_t length, Generator& gen) {
    check_sampling_arguments("sample_masked_batch", sequences, batch, length);
    ProteinBatch out = padding_batch(batch, length);
    for (int64_t b = 0; b < batch; ++b) {
        const std::string& sequence = sequences[gen.below(sequences.size())];
        int64_t start = window_start(int64_t(sequence.size()) + 2, length, gen);
        fill_masked_row(out, b, sequence, start, gen);
    }
    return out;
}

ProteinBatch sample_concatenated_batch(const std::vector<std::string>& sequences, int64_t batch,
                                       int64_t length, Objective objective, Generator& gen) {
    check_sampling_arguments("sample_concatenated_batch", sequences, batch, length);
    const std::vector<int64_t> offset = stream_offsets(sequences);
    const int64_t stream_length = offset.back();
    const int64_t window = objective == Objective::Causal ? length + 1 : length;
    PF_CHECK(stream_length >= window,
             "sample_concatenated_batch: all sequences together make {} tokens, fewer than a "
             "window of {}",
             stream_length, window);
    ProteinBatch out = padding_batch(batch, length);
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

ProteinBatch held_out_batch(const std::vector<std::string>& sequences,
                            const std::vector<HeldOutWindow>& windows, int64_t first, int64_t rows,
                            int64_t length, Objective objective, bool concatenated,
                            uint64_t mask_seed) {
    PF_CHECK(first >= 0 && rows > 0 && first + rows <= int64_t(windows.size()),
             "held_out_batch: rows {}..{} outside the {} windows", first, first + rows - 1,
             windows.size());
    ProteinBatch out = padding_batch(rows, length);
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

}  // namespace pf::data
