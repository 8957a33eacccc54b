// ngram.cpp — how far counting contexts goes on the protein task: the accuracy of
// back-off n-gram predictors (tools/data/ngram.h) on the test split, order 0 (the
// majority guess) up to --order.
//
//   build/ngram [--data FILE.fasta[.gz]] [--order 6] [--split test|valid]
//
// Counts come from the training split, every residue of the held-out sequences is
// predicted from the residues before it in the same sequence. On UniProt a long
// context predicts much more than a short one: many test proteins have relatives in
// the training split, so a context of 6 residues often occurred there already, followed
// by the same residue. A model gains those points only by memorising the training
// sequences.
#include "models/vocabulary.h"
#include "tools/data/ngram.h"
#include "tools/training/tasks.h"
#include "tools/util/cli.h"
#include "tools/util/result.h"

#include <fmt/format.h>

using namespace pf;

namespace {
std::vector<std::vector<int32_t>> encode_all(const std::vector<std::string>& sequences) {
    std::vector<std::vector<int32_t>> tokens;
    tokens.reserve(sequences.size());
    for (const std::string& s : sequences) {
        std::vector<int32_t> t(s.size());
        for (size_t i = 0; i < s.size(); ++i) t[i] = models::protein::encode(s[i]);
        tokens.push_back(std::move(t));
    }
    return tokens;
}
}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Accuracy of back-off n-gram predictors on the protein test split", "ngram"};
    std::string data, split = "test";
    int order = 6;
    app.add_option("--data", data, "FASTA file (default: the UniProt sequences of mmseqs2-examples)");
    app.add_option("--order", order, "longest context, in residues")
        ->check(in_range(0, data::NgramPredictor::kMaxOrder));
    app.add_option("--split", split, "test | valid")->check(CLI::IsMember({"test", "valid"}));
    return run_program(app, argc, argv, [&] {
        std::string description;
        data::ProteinSplits splits = training::protein_splits(data, &description);
        fmt::print("{} ({} train / {} valid / {} test)\n", description, splits.train.size(),
                   splits.valid.size(), splits.test.size());
        data::NgramPredictor ngram(encode_all(splits.train), order);
        std::vector<double> accuracy =
            ngram.accuracy(encode_all(split == "valid" ? splits.valid : splits.test));
        fmt::print("{:>7}  {:>9}\n", "context", "accuracy");
        ResultLine result;
        for (int k = 0; k <= order; ++k) {
            fmt::print("{:>7}  {:>8.2f}%{}\n", k, 100 * accuracy[k], k == 0 ? "  (majority guess)" : "");
            result.add(fmt::format("accuracy_order{}", k), accuracy[k]);
        }
        result.print();
        return 0;
    });
}
