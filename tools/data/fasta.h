// fasta.h — protein data: FASTA files, splits and batches (tokens: models/vocabulary.h).
//
//   std::vector<std::string> all = read_fasta("/usr/share/doc/mmseqs2/example-data/DB.fasta.gz");
//   ProteinSplits splits = split_proteins(all, /*seed=*/1);      // 90% / 5% / 5%
//   Generator gen(2);
//   ProteinBatch causal = sample_causal_batch(splits.train, 8, 256, gen);
//   ProteinBatch masked = sample_masked_batch(splits.train, 8, 256, gen);
//   ProteinBatch packed = sample_concatenated_batch(splits.train, 8, 1024, Objective::Masked, gen);
//
// A batch holds B rows of L tokens, row-major (B, L):
//   tokens    the model's input;
//   targets   what the model should predict at each position, or kIgnore
//             (-100, cross_entropy's ignore_index) where nothing counts in the loss;
//   key_mask  1 for real tokens, 0 for padding: attention must not look at padding.
//
// Three ways to make rows, as in the Performer paper's protein experiments:
//   causal        [BOS] residues [EOS], a random window of L + 1 tokens if longer,
//                 padded if shorter; targets are the next token (unidirectional LM).
//   masked        [BOS] residues [EOS] cropped or padded to L; BERT-style corruption of
//                 15% of the residues, targets only there (bidirectional LM).
//   concatenated  all sequences joined by [SEP] into one stream and windows of L cut
//                 from it, no padding (the paper's long-sequence setting), either objective.
#pragma once

#include "engine/random.h"
#include "models/task.h"
#include "models/vocabulary.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pf::data {

// Records of a plain or gzipped FASTA file, in file order, as upper-case residue
// strings. Records may span many lines; lines starting with ';' are comments; blank
// lines are skipped; letters outside protein::kResidues become 'X'; a '*' ending a
// sequence is dropped. Sequence data before the first '>', a record without residues,
// a character that is not a letter (a digit, '-', ...) or damaged gzip data throw
// pf::Error as "FILE:LINE: what is wrong".
std::vector<std::string> read_fasta(const std::string& path);

// The protein alphabet is the model's vocabulary: models/vocabulary.h.
namespace protein = models::protein;
using models::kIgnore;

struct ProteinSplits {
    std::vector<std::string> train, valid, test;
};

// Drops exact duplicates (keeping the first), then assigns each distinct sequence to
// test, valid or train by a random permutation drawn from `seed`: the same seed gives
// the same split, the three parts never share a sequence, and valid and test hold
// round(n * fraction) sequences. Each part keeps the input order.
ProteinSplits split_proteins(std::vector<std::string> sequences, uint64_t seed,
                             double valid_fraction = 0.05, double test_fraction = 0.05);

// B rows of L tokens, (B, L) row-major; see the top of this file.
struct ProteinBatch {
    std::vector<int32_t> tokens, targets;
    std::vector<float> key_mask;
    int64_t batch = 0, length = 0;
};

using models::Objective;

// Rows of random sequences (uniform over the list), as described at the top.
ProteinBatch sample_causal_batch(const std::vector<std::string>& sequences, int64_t batch,
                                 int64_t length, Generator& gen);

// Each real residue (not a special token, not padding) is chosen with probability
// 15%; a chosen one becomes kMask 80% of the time, a random standard amino acid 10%,
// and stays itself 10%. Targets hold the original token at chosen positions.
ProteinBatch sample_masked_batch(const std::vector<std::string>& sequences, int64_t batch,
                                 int64_t length, Generator& gen);

// The stream s0 [SEP] s1 [SEP] ... s(n-1) [SEP], read cyclically, with each window
// starting at a uniformly random stream position. Causal: windows of L + 1 tokens,
// targets the next token. Masked: windows of L tokens, corrupted as above.
ProteinBatch sample_concatenated_batch(const std::vector<std::string>& sequences, int64_t batch,
                                       int64_t length, Objective objective, Generator& gen);

// ---- held-out rows: a fixed set instead of samples ------------------------------------
//
// Evaluation reads a split the same way every time, and scores every token once:
//   causal, masked  each sequence's row [BOS] residues [EOS] cut into consecutive windows
//                   from its start (causal: L next-token pairs each, so a window reads
//                   L + 1 tokens; masked: L tokens), the last one padded;
//   concatenated    the stream s0 [SEP] s1 [SEP] ... cut into consecutive full windows.
// Masked rows are corrupted as in training, by a generator seeded with mask_seed plus the
// row's number: any batch of rows can be built on its own, and is the same every time.
struct HeldOutWindow {
    size_t sequence = 0;  // the sequence whose row the window starts in (unused if concatenated)
    int64_t start = 0;    // the window's first token in that row (concatenated: in the stream)
};

std::vector<HeldOutWindow> held_out_windows(const std::vector<std::string>& sequences,
                                            int64_t length, Objective objective, bool concatenated);

// Windows [first, first + rows) as a batch of `rows` rows of L tokens.
ProteinBatch held_out_batch(const std::vector<std::string>& sequences,
                            const std::vector<HeldOutWindow>& windows, int64_t first, int64_t rows,
                            int64_t length, Objective objective, bool concatenated,
                            uint64_t mask_seed);

}  // namespace pf::data
