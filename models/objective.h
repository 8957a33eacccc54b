// objective.h — what turns a task's tokens into a model's inputs and targets.
//
// The readers of tools/data return bytes and strings; here they become batches
// (models::Batch, models/task.h): B rows of L tokens, row-major (B, L), holding
//   inputs    what the model reads;
//   targets   what it should predict at each position, or kIgnore where nothing is
//             scored (padding, residues that are not masked);
//   key_mask  1 for real tokens, 0 for padding (attention must not look at padding);
//             undefined when no row is padded.
//
//   Batch text = sample_text_windows(corpus.train, 16, 256, gen);       // the causal shift
//   Batch images = image_batch({intensities_0, intensities_1});         // start token first
//   Batch causal = protein::sample_causal_batch(splits.train, 8, 256, gen);
//   Batch masked = protein::sample_masked_batch(splits.train, 8, 256, gen);
//   Batch packed = protein::sample_concatenated_batch(splits.train, 8, 1024, Objective::Masked, gen);
//
// What each task does (the tokens are those of models/vocabulary.h):
//   text     the causal shift: a window of L + 1 bytes x_0 .. x_L gives inputs
//            x_0 .. x_{L-1} and targets x_1 .. x_L (the next byte);
//   image    the start token, then the intensities in raster order: inputs
//            [start, x_0, ..., x_{L-2}], targets [x_0, ..., x_{L-1}];
//   protein  as in the Performer paper's protein experiments, three ways to make rows:
//     causal        [BOS] residues [EOS], a random window of L + 1 tokens if longer,
//                   padded if shorter; targets are the next token (unidirectional LM).
//     masked        [BOS] residues [EOS] cropped or padded to L; BERT-style corruption of
//                   15% of the residues, targets only there (bidirectional LM).
//     concatenated  all sequences joined by [SEP] into one stream and windows of L cut
//                   from it, no padding (the paper's long-sequence setting), either objective.
//
// Training batches are drawn from a generator: the same generator state gives the same
// batch. Held-out rows are a fixed set, the same on every call (text_windows,
// protein::held_out_batch), so that evaluations are comparable.
#pragma once

#include "engine/random.h"
#include "models/task.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pf::models {

// ---- text: bytes and the causal shift -------------------------------------------------

// B rows, each a window of L + 1 consecutive bytes of `text` at a uniformly random offset
// (one gen.below draw per row): inputs its first L bytes, targets its last L, as tokens
// 0..255. inputs, targets: (B, L). The text must hold L + 1 bytes.
Batch sample_text_windows(std::string_view text, int64_t batch, int64_t length, Generator& gen);

// The held-out text cut into consecutive windows of L + 1 bytes, each starting where the
// one before ended its inputs: row i reads bytes [i L, i L + L], inputs [i L, i L + L),
// targets one later. text_window_count is how many fit, (size - 1) / L; text_windows gives
// rows [first, first + rows) of them: inputs, targets (rows, L).
int64_t text_window_count(std::string_view text, int64_t length);
Batch text_windows(std::string_view text, int64_t first, int64_t rows, int64_t length);

// ---- images: a start token, then raster order -----------------------------------------

// One row per image, each given as its L = H W C intensities x_0 .. x_{L-1} (0..255) in
// raster order (row, column, channel; tools/data/images.h image_to_tokens):
//   inputs  [kImageStartToken, x_0, ..., x_{L-2}]   (B, L)
//   targets [x_0, ..., x_{L-1}]                      (B, L)
// so that the first intensity is predicted too. All images must have the same length.
Batch image_batch(const std::vector<std::vector<int32_t>>& images);

// ---- proteins: rows of residues, causal or masked --------------------------------------

namespace protein {

// Rows of random sequences (uniform over the list), as described at the top; padded rows
// carry a key_mask.
Batch sample_causal_batch(const std::vector<std::string>& sequences, int64_t batch,
                          int64_t length, Generator& gen);

// Each real residue (not a special token, not padding) is chosen with probability
// 15%; a chosen one becomes kMask 80% of the time, a random standard amino acid 10%,
// and stays itself 10%. Targets hold the original token at chosen positions.
Batch sample_masked_batch(const std::vector<std::string>& sequences, int64_t batch,
                          int64_t length, Generator& gen);

// The stream s0 [SEP] s1 [SEP] ... s(n-1) [SEP], read cyclically, with each window
// starting at a uniformly random stream position. Causal: windows of L + 1 tokens,
// targets the next token. Masked: windows of L tokens, corrupted as above. No padding,
// so no key_mask.
Batch sample_concatenated_batch(const std::vector<std::string>& sequences, int64_t batch,
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

// Windows [first, first + rows) as a batch of `rows` rows of L tokens (a key_mask unless
// concatenated).
Batch held_out_batch(const std::vector<std::string>& sequences,
                     const std::vector<HeldOutWindow>& windows, int64_t first, int64_t rows,
                     int64_t length, Objective objective, bool concatenated, uint64_t mask_seed);

}  // namespace protein

}  // namespace pf::models
