// fasta.h — protein data: FASTA files and their train / valid / test splits.
//
//   std::vector<std::string> all =
//       read_fasta("/usr/share/doc/mmseqs2/example-data/DB.fasta.gz", "ACDEFGHIKLMNPQRSTVWYXBZUO");
//   ProteinSplits splits = split_proteins(all, /*seed=*/1);      // 90% / 5% / 5%
//
// Sequences are strings of residue letters, in the alphabet the caller gives (the
// protein model's is models::protein::kResidues). What turns them into a model's inputs
// and targets (causal, masked, concatenated rows) is models/objective.h.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pf::data {

// Records of a plain or gzipped FASTA file, in file order, as upper-case residue
// strings. Records may span many lines; lines starting with ';' are comments; blank
// lines are skipped; letters (either case) outside `alphabet` (upper-case letters)
// become 'X', unknown; a '*' ending a sequence is dropped. Sequence data before the
// first '>', a record without residues, a character that is not a letter (a digit,
// '-', ...) or damaged gzip data throw pf::Error as "FILE:LINE: what is wrong".
std::vector<std::string> read_fasta(const std::string& path, std::string_view alphabet);

struct ProteinSplits {
    std::vector<std::string> train, valid, test;
};

// Drops exact duplicates (keeping the first), then assigns each distinct sequence to
// test, valid or train by a random permutation drawn from `seed`: the same seed gives
// the same split, the three parts never share a sequence, and valid and test hold
// round(n * fraction) sequences. Each part keeps the input order.
ProteinSplits split_proteins(std::vector<std::string> sequences, uint64_t seed,
                             double valid_fraction = 0.05, double test_fraction = 0.05);

}  // namespace pf::data
