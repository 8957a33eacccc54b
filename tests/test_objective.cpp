// test_objective.cpp — what turns tokens into inputs and targets (models/objective.h):
// the causal shift of text windows, the start token of image rows, and the causal,
// masked and concatenated rows of proteins, training samples and held-out sets; and
// the protein vocabulary they are written in.
//
// Expected values are worked out by hand or read back from the input (a window is
// found again in the text or row it came from); rates of random choices are checked
// within a few binomial standard errors.
#include "engine/error.h"
#include "engine/random.h"
#include "models/objective.h"
#include "models/vocabulary.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <set>
#include <string>
#include <vector>

using namespace pf;
using namespace pf::models;
using Catch::Contains;

// ============================================================================
// Text: the causal shift
// ============================================================================

TEST_CASE("sample_text_windows cuts windows of L + 1 bytes: inputs, then targets one later",
          "[objective]") {
    // Distinct bytes, so each window's start can be read from its first byte; two
    // bytes above 127 must come out as 128..255, never negative.
    std::string text = "abcdefghijkl";
    text += char(0xC3);
    text += char(0xA9);
    const int64_t length = 4, batch = 8;
    std::set<int> starts;
    Generator gen(3);
    for (int draw = 0; draw < 50; ++draw) {
        Batch b = sample_text_windows(text, batch, length, gen);
        REQUIRE(b.batch == batch);
        REQUIRE(b.length == length);
        REQUIRE(b.inputs.size() == size_t(batch * length));
        REQUIRE(b.targets.size() == size_t(batch * length));
        for (int64_t row = 0; row < batch; ++row) {
            std::string window;
            for (int64_t t = 0; t < length; ++t) {
                int32_t input = b.inputs[size_t(row * length + t)];
                REQUIRE((input >= 0 && input <= 255));
                window += char(input);
                if (t + 1 < length)
                    REQUIRE(b.targets[size_t(row * length + t)] ==
                            b.inputs[size_t(row * length + t + 1)]);
            }
            window += char(b.targets[size_t(row * length + length - 1)]);
            size_t start = text.find(window);
            REQUIRE(start != std::string::npos);
            starts.insert(int(start));
        }
    }
    // Every start 0 .. size - L - 1 is drawn, including the one ending at the last byte.
    REQUIRE(starts.size() == text.size() - size_t(length));
    REQUIRE(*starts.rbegin() == int(text.size()) - length - 1);

    Generator first(3), same_seed(3), other_seed(4);
    Batch reference = sample_text_windows(text, batch, length, first);
    REQUIRE(sample_text_windows(text, batch, length, same_seed).inputs == reference.inputs);
    REQUIRE(sample_text_windows(text, batch, length, other_seed).inputs != reference.inputs);

    REQUIRE_NOTHROW(sample_text_windows("abcde", 2, 4, gen));
    REQUIRE_THROWS_WITH(sample_text_windows("abcd", 2, 4, gen), Contains("shorter"));
}

TEST_CASE("text_windows: consecutive held-out windows, each row the same in any batch",
          "[objective]") {
    const std::string text = "abcdefghij";  // 10 bytes: windows of 3 + 1 start at 0, 3, 6
    REQUIRE(text_window_count(text, 3) == 3);
    REQUIRE(text_window_count(text, 9) == 1);
    REQUIRE(text_window_count(text, 10) == 0);
    Batch all = text_windows(text, 0, 3, 3);
    REQUIRE(all.batch == 3);
    REQUIRE(all.length == 3);
    REQUIRE_FALSE(all.key_mask.defined());
    REQUIRE(all.inputs == std::vector<int32_t>{'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'});
    REQUIRE(all.targets == std::vector<int32_t>{'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'});
    Batch last = text_windows(text, 2, 1, 3);
    REQUIRE(last.inputs == std::vector<int32_t>{'g', 'h', 'i'});
    REQUIRE(last.targets == std::vector<int32_t>{'h', 'i', 'j'});
    REQUIRE(text_windows(std::string(1, char(0xE9)) + "a", 0, 1, 1).inputs ==
            std::vector<int32_t>{0xE9});  // bytes, never negative
    REQUIRE_THROWS_WITH(text_windows(text, 2, 2, 3), Contains("outside"));
}

// ============================================================================
// Images: a start token, then raster order
// ============================================================================

TEST_CASE("image_batch: inputs begin with the start token, targets are the intensities",
          "[objective]") {
    Batch b = image_batch({{10, 20, 30, 40}, {0, 255, 7, 8}});
    REQUIRE(b.batch == 2);
    REQUIRE(b.length == 4);
    REQUIRE_FALSE(b.key_mask.defined());
    REQUIRE(b.inputs == std::vector<int32_t>{kImageStartToken, 10, 20, 30,  //
                                             kImageStartToken, 0, 255, 7});
    REQUIRE(b.targets == std::vector<int32_t>{10, 20, 30, 40, 0, 255, 7, 8});
    REQUIRE_THROWS_WITH(image_batch({{1, 2, 3}, {1, 2}}), Contains("intensities"));
    REQUIRE_THROWS(image_batch({}));
}

// ============================================================================
// The protein vocabulary
// ============================================================================

TEST_CASE("protein vocabulary: specials first, then 25 letters, round trip", "[objective]") {
    using namespace protein;
    REQUIRE(vocab_size() == 30);
    REQUIRE(kResidues.size() == 25);
    REQUIRE(kResidues.substr(0, 20) == "ACDEFGHIKLMNPQRSTVWY");
    std::set<int32_t> tokens;
    for (char letter : kResidues) {
        int32_t token = encode(letter);
        REQUIRE(token >= kFirstResidue);
        REQUIRE(token < vocab_size());
        REQUIRE(encode(char(std::tolower(letter))) == token);
        REQUIRE(decode(token) == letter);
        tokens.insert(token);
    }
    REQUIRE(tokens.size() == 25);
    REQUIRE(encode('J') == encode('X'));  // a letter outside the alphabet is unknown
    std::set<char> special_letters;
    for (int32_t special : {kPad, kMask, kBos, kEos, kSep}) {
        REQUIRE(special < kFirstResidue);
        REQUIRE_FALSE(std::isalpha(uint8_t(decode(special))));
        special_letters.insert(decode(special));
    }
    REQUIRE(special_letters.size() == 5);
    REQUIRE_THROWS_WITH(encode('7'), Contains("not an amino-acid letter"));
    REQUIRE_THROWS(decode(vocab_size()));
    REQUIRE_THROWS(decode(-1));
}
// ============================================================================
// Protein batches
// ============================================================================

namespace {

std::string decode_all(const int32_t* tokens, int64_t n) {
    std::string text;
    for (int64_t i = 0; i < n; ++i) text += protein::decode(tokens[i]);
    return text;
}

std::string random_protein(Generator& gen, int64_t length) {
    std::string sequence;
    for (int64_t i = 0; i < length; ++i)
        sequence += protein::kResidues[gen.below(protein::kStandardResidues)];
    return sequence;
}

// |observed - expected| within `sigmas` binomial standard errors of n trials.
void require_rate(int64_t hits, int64_t trials, double expected, double sigmas = 4) {
    REQUIRE(trials > 0);
    double observed = double(hits) / double(trials);
    double standard_error = std::sqrt(expected * (1 - expected) / double(trials));
    INFO(fmt::format("{} of {} = {:.4f}, expected {:.4f} +- {:.4f}", hits, trials, observed,
                     expected, sigmas * standard_error));
    REQUIRE(std::fabs(observed - expected) <= sigmas * standard_error);
}

// The row [BOS] residues [EOS] as decoded letters.
std::string row_letters(const std::string& sequence) {
    return protein::decode(protein::kBos) + sequence + protein::decode(protein::kEos);
}

}  // namespace

TEST_CASE("causal protein batch: short rows are padded, pads have key_mask 0 and target -100",
          "[objective]") {
    using namespace protein;
    Generator gen(21);
    Batch b = protein::sample_causal_batch({"ACD"}, 2, 8, gen);
    REQUIRE(b.batch == 2);
    REQUIRE(b.length == 8);
    const std::vector<int32_t> tokens = {kBos, encode('A'), encode('C'), encode('D'),
                                         kPad, kPad,        kPad,        kPad};
    const std::vector<int32_t> targets = {encode('A'), encode('C'), encode('D'), kEos,
                                          kIgnore,     kIgnore,     kIgnore,     kIgnore};
    const std::vector<float> key_mask = {1, 1, 1, 1, 0, 0, 0, 0};
    for (int64_t row = 0; row < 2; ++row) {
        REQUIRE(std::vector<int32_t>(b.inputs.begin() + row * 8, b.inputs.begin() + row * 8 + 8) ==
                tokens);
        REQUIRE(std::vector<int32_t>(b.targets.begin() + row * 8,
                                     b.targets.begin() + row * 8 + 8) == targets);
        REQUIRE(std::vector<float>(b.key_mask.data() + row * 8, b.key_mask.data() + row * 8 + 8) ==
                key_mask);
    }
}

TEST_CASE("causal protein batch: long rows are cropped to contiguous windows", "[objective]") {
    Generator gen(22);
    const std::vector<std::string> sequences = {random_protein(gen, 40), random_protein(gen, 55)};
    const int64_t length = 8, batch = 16;
    bool saw_start = false, saw_end = false;
    for (int draw = 0; draw < 20; ++draw) {
        Batch b = protein::sample_causal_batch(sequences, batch, length, gen);
        for (int64_t row = 0; row < batch; ++row) {
            const int32_t* tokens = b.inputs.data() + row * length;
            const int32_t* targets = b.targets.data() + row * length;
            for (int64_t t = 0; t + 1 < length; ++t) REQUIRE(targets[t] == tokens[t + 1]);
            for (int64_t t = 0; t < length; ++t)
                REQUIRE(b.key_mask.data()[row * length + t] == 1.0f);
            // The L inputs and the last target: L + 1 consecutive tokens of one row.
            std::string window = decode_all(tokens, length) + protein::decode(targets[length - 1]);
            bool found = false;
            for (const std::string& sequence : sequences)
                found = found || row_letters(sequence).find(window) != std::string::npos;
            REQUIRE(found);
            saw_start = saw_start || tokens[0] == protein::kBos;
            saw_end = saw_end || targets[length - 1] == protein::kEos;
        }
    }
    REQUIRE(saw_start);  // windows reach both ends of the row
    REQUIRE(saw_end);

    Generator a(5), b(5);
    REQUIRE(protein::sample_causal_batch(sequences, 4, length, a).inputs ==
            protein::sample_causal_batch(sequences, 4, length, b).inputs);
}

TEST_CASE("masked protein batch: 15% of residues chosen, then 80/10/10", "[objective]") {
    using namespace protein;
    // One sequence shorter than L, so every row is [BOS] sequence [EOS] pad... and the
    // original token at every position is known.
    Generator gen(31);
    const std::string sequence = random_protein(gen, 100);
    const int64_t length = 128, batch = 8;
    std::vector<int32_t> original(length, kPad);
    original[0] = kBos;
    for (size_t i = 0; i < sequence.size(); ++i) original[i + 1] = encode(sequence[i]);
    original[sequence.size() + 1] = kEos;

    int64_t residues = 0, chosen = 0, masked = 0, kept = 0, replaced = 0;
    for (int draw = 0; draw < 60; ++draw) {
        Batch b = protein::sample_masked_batch({sequence}, batch, length, gen);
        for (int64_t row = 0; row < batch; ++row)
            for (int64_t t = 0; t < length; ++t) {
                size_t at = size_t(row * length + t);
                int32_t token = b.inputs[at], target = b.targets[at];
                REQUIRE(b.key_mask.data()[at] == (original[size_t(t)] == kPad ? 0.0f : 1.0f));
                if (!is_residue(original[size_t(t)])) {  // specials and pads: never chosen
                    REQUIRE(token == original[size_t(t)]);
                    REQUIRE(target == kIgnore);
                    continue;
                }
                ++residues;
                if (target == kIgnore) {
                    REQUIRE(token == original[size_t(t)]);
                    continue;
                }
                ++chosen;
                REQUIRE(target == original[size_t(t)]);
                if (token == kMask) {
                    ++masked;
                } else if (token == original[size_t(t)]) {
                    ++kept;
                } else {
                    ++replaced;
                    REQUIRE(token >= kFirstResidue);  // a standard amino acid
                    REQUIRE(token < kFirstResidue + kStandardResidues);
                }
            }
    }
    REQUIRE(residues == 60 * batch * 100);
    require_rate(chosen, residues, 0.15);
    require_rate(masked, chosen, 0.8);
    // The random 10% draws the original itself one time in 20.
    require_rate(kept, chosen, 0.1 + 0.1 / 20);
    require_rate(replaced, chosen, 0.1 * 19 / 20);
}

TEST_CASE("masked protein batch: long rows are cropped to contiguous windows", "[objective]") {
    Generator gen(32);
    const std::vector<std::string> sequences = {random_protein(gen, 30), random_protein(gen, 70)};
    const int64_t length = 16, batch = 16;
    for (int draw = 0; draw < 10; ++draw) {
        Batch b = protein::sample_masked_batch(sequences, batch, length, gen);
        for (int64_t row = 0; row < batch; ++row) {
            // Undo the corruption with the targets, then look for the window.
            std::vector<int32_t> restored(b.inputs.begin() + row * length,
                                          b.inputs.begin() + (row + 1) * length);
            for (int64_t t = 0; t < length; ++t)
                if (b.targets[size_t(row * length + t)] != kIgnore)
                    restored[size_t(t)] = b.targets[size_t(row * length + t)];
            std::string window = decode_all(restored.data(), length);
            bool found = false;
            for (const std::string& sequence : sequences)
                found = found || row_letters(sequence).find(window) != std::string::npos;
            REQUIRE(found);
        }
    }
}

TEST_CASE("concatenated protein batch: windows of the [SEP]-joined stream, no padding", "[objective]") {
    using namespace protein;
    const std::vector<std::string> sequences = {"ACD", "EFGHI", "KL"};
    const std::string sep(1, decode(kSep));
    const std::string stream = "ACD" + sep + "EFGHI" + sep + "KL" + sep;  // read cyclically
    const std::string twice = stream + stream;
    const int64_t length = 6, batch = 8;
    Generator gen(41);

    std::set<size_t> starts;
    for (int draw = 0; draw < 40; ++draw) {
        Batch b =
            protein::sample_concatenated_batch(sequences, batch, length, Objective::Causal, gen);
        REQUIRE_FALSE(b.key_mask.defined());  // no padding: every position is real
        for (int64_t row = 0; row < batch; ++row) {
            const int32_t* tokens = b.inputs.data() + row * length;
            const int32_t* targets = b.targets.data() + row * length;
            for (int64_t t = 0; t + 1 < length; ++t) REQUIRE(targets[t] == tokens[t + 1]);
            std::string window = decode_all(tokens, length) + decode(targets[length - 1]);
            size_t start = twice.find(window);
            REQUIRE(start < stream.size());
            starts.insert(start);
        }
    }
    REQUIRE(starts.size() == stream.size());  // every stream position starts some window

    int64_t separators = 0;
    for (int draw = 0; draw < 40; ++draw) {
        Batch b =
            protein::sample_concatenated_batch(sequences, batch, length, Objective::Masked, gen);
        for (int64_t row = 0; row < batch; ++row) {
            std::vector<int32_t> restored(b.inputs.begin() + row * length,
                                          b.inputs.begin() + (row + 1) * length);
            for (int64_t t = 0; t < length; ++t) {
                int32_t target = b.targets[size_t(row * length + t)];
                if (restored[size_t(t)] == kSep) {
                    ++separators;
                    REQUIRE(target == kIgnore);  // separators are never chosen
                }
                if (target != kIgnore) restored[size_t(t)] = target;
            }
            REQUIRE(twice.find(decode_all(restored.data(), length)) < stream.size());
        }
    }
    REQUIRE(separators > 0);
    REQUIRE_THROWS_WITH(protein::sample_concatenated_batch({"AC", "D"}, 1, 5, Objective::Causal, gen),
                        Contains("fewer"));
}

TEST_CASE("protein held-out windows: every token scored once, each row the same in any batch",
          "[objective]") {
    using namespace protein;
    // Rows [BOS] A C D E F G [EOS] (8 tokens, 7 next-token pairs) and [BOS] K L [EOS].
    const std::vector<std::string> sequences = {"ACDEFG", "KL"};
    const int64_t length = 3;
    const std::vector<HeldOutWindow> causal =
        held_out_windows(sequences, length, Objective::Causal, false);
    REQUIRE(causal.size() == 4);  // pairs 0..2, 3..5, 6 of the first row; 0..2 of the second
    REQUIRE(causal[2].sequence == 0);
    REQUIRE(causal[2].start == 6);
    REQUIRE(causal[3].sequence == 1);
    Batch b = held_out_batch(sequences, causal, 0, 4, length, Objective::Causal, false, 1);
    REQUIRE(b.batch == 4);
    REQUIRE(b.length == length);
    REQUIRE(std::vector<int32_t>(b.inputs.begin(), b.inputs.begin() + 3) ==
            std::vector<int32_t>{kBos, encode('A'), encode('C')});
    REQUIRE(std::vector<int32_t>(b.targets.begin() + 6, b.targets.begin() + 9) ==
            std::vector<int32_t>{kEos, kIgnore, kIgnore});
    REQUIRE(std::vector<float>(b.key_mask.data() + 6, b.key_mask.data() + 9) ==
            std::vector<float>{1, 0, 0});
    int64_t scored = 0;
    for (int32_t target : b.targets) scored += target != kIgnore;
    REQUIRE(scored == 7 + 3);

    // Masked: every token of every row is an input once; the masks come from the seed and
    // the row's number, so a row built alone equals the same row built in a batch.
    const std::vector<HeldOutWindow> masked =
        held_out_windows(sequences, length, Objective::Masked, false);
    REQUIRE(masked.size() == 5);  // tokens 0..2, 3..5, 6..7 of the first row; 0..2, 3 of the second
    Batch all = held_out_batch(sequences, masked, 0, 5, length, Objective::Masked, false, 7);
    double real = 0;
    for (float m : all.key_mask.to_vector()) real += m;
    REQUIRE(real == 8 + 4);
    for (int64_t row = 0; row < 5; ++row) {
        Batch alone = held_out_batch(sequences, masked, row, 1, length, Objective::Masked, false, 7);
        REQUIRE(alone.inputs == std::vector<int32_t>(all.inputs.begin() + row * length,
                                                     all.inputs.begin() + (row + 1) * length));
        REQUIRE(alone.targets == std::vector<int32_t>(all.targets.begin() + row * length,
                                                      all.targets.begin() + (row + 1) * length));
    }

    // Concatenated: the stream A C D E F G [SEP] K L [SEP] (10 tokens) in full windows,
    // with no padding and so no key_mask.
    REQUIRE(held_out_windows(sequences, length, Objective::Causal, true).size() == 3);  // 9 pairs
    const std::vector<HeldOutWindow> stream =
        held_out_windows(sequences, length, Objective::Masked, true);
    REQUIRE(stream.size() == 3);
    Batch packed = held_out_batch(sequences, stream, 1, 2, length, Objective::Masked, true, 7);
    REQUIRE_FALSE(packed.key_mask.defined());
    REQUIRE_THROWS_WITH(held_out_batch(sequences, stream, 2, 2, length, Objective::Masked, true, 7),
                        Contains("outside"));
}
