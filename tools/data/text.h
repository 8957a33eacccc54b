// text.h — byte-level text corpora and random training windows from them.
//
//   TextCorpus corpus = load_text_corpus("data/austen");    // made by `make data`
//   Generator gen(1);
//   TokenBatch batch = sample_windows(corpus.train, 16, 256, gen);
//   // batch.inputs[b * 256 + t] is byte t of window b (0..255);
//   // batch.targets[b * 256 + t] is the byte after it.
//
// The model sees bytes, not characters: UTF-8 text is just a longer byte sequence,
// and the vocabulary is always 256.
//
// load_text_corpus(path) accepts three forms of `path`:
//   - a directory holding train.txt and valid.txt (as `make data` prepares them);
//   - one text file: the last 10% is held out as valid, cut where a line begins;
//   - several files separated by commas, "a.txt,b.txt,c.txt": the last one is valid,
//     the others, joined in order, are train.
// Files may be gzipped. A missing, empty or unreadable file throws pf::Error naming it.
#pragma once

#include "engine/random.h"

#include <cstdint>
#include <string>
#include <vector>

namespace pf::data {

struct TextCorpus {
    std::string train, valid;
    std::string description;  // where each part came from and its size, for logs
};

TextCorpus load_text_corpus(const std::string& path);

// B windows of L tokens: inputs (B, L) and targets (B, L), row-major.
struct TokenBatch {
    std::vector<int32_t> inputs, targets;
    int64_t batch = 0, length = 0;
};

// Each row is a window of length + 1 consecutive bytes starting at a uniformly random
// offset (one gen.below draw per row): inputs are its first L bytes, targets its last L.
// The same generator state gives the same batch. The text must hold length + 1 bytes.
TokenBatch sample_windows(const std::string& text, int64_t batch, int64_t length, Generator& gen);

}  // namespace pf::data
