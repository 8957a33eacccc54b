// fasta.cpp — FASTA parsing and splits.
#include "tools/data/fasta.h"

#include "engine/error.h"
#include "engine/files.h"
#include "engine/random.h"

#include <algorithm>
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

std::vector<std::string> read_fasta(const std::string& path, std::string_view alphabet) {
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
            const char letter = char(std::toupper(uint8_t(c)));
            sequence.push_back(alphabet.find(letter) != std::string_view::npos ? letter : 'X');
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

}  // namespace pf::data
