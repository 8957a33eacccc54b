// text.h — byte-level text corpora: a training part and a held-out part.
//
//   TextCorpus corpus = load_text_corpus("data/austen");    // made by `make data`
//   // corpus.train, corpus.valid: the bytes of each part
//
// The model sees bytes, not characters: UTF-8 text is just a longer byte sequence,
// and the vocabulary is always 256. Windows of it as inputs and targets (the causal
// shift) are made by models/objective.h.
//
// load_text_corpus(path) accepts three forms of `path`:
//   - a directory holding train.txt and valid.txt (as `make data` prepares them);
//   - one text file: the last 10% is held out as valid, cut where a line begins;
//   - several files separated by commas, "a.txt,b.txt,c.txt": the last one is valid,
//     the others, joined in order, are train.
// Files may be gzipped. A missing, empty or unreadable file throws pf::Error naming it.
#pragma once

#include <string>

namespace pf::data {

struct TextCorpus {
    std::string train, valid;
    std::string description;  // where each part came from and its size, for logs
};

TextCorpus load_text_corpus(const std::string& path);

}  // namespace pf::data
