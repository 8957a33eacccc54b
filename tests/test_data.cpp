// test_data.cpp — the data layer: text corpora, FASTA and protein batches.
//
// Every test writes its own small files into a fresh temporary folder and removes it
// afterwards. Expected values come from the inputs the test wrote, worked out by hand
// or by a formula independent of the loader. The test tagged [proteins] reads the
// installed data set and only warns when it is absent.
#include "engine/error.h"
#include "tools/data/fasta.h"
#include "tools/data/text.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

using namespace pf;
using namespace pf::data;
namespace fs = std::filesystem;
using Catch::Contains;

namespace {

// A fresh folder under the system temp dir, removed with its contents at scope exit.
struct TempDir {
    fs::path path;
    TempDir() {
        static int counter = 0;
        path = fs::temp_directory_path() / fmt::format("pf_test_data_{}_{}", ::getpid(), counter++);
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string file(const std::string& name) const { return (path / name).string(); }
};

void write_plain(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), std::streamsize(bytes.size()));
    REQUIRE(out.good());
}

void write_gzip(const std::string& path, const std::string& bytes) {
    gzFile file = gzopen(path.c_str(), "wb");
    REQUIRE(file != nullptr);
    REQUIRE(gzwrite(file, bytes.data(), unsigned(bytes.size())) == int(bytes.size()));
    REQUIRE(gzclose(file) == Z_OK);
}

std::string read_plain(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

// ============================================================================
// Text
// ============================================================================

TEST_CASE("a corpus directory gives train.txt and valid.txt as they are", "[data]") {
    TempDir dir;
    write_plain(dir.file("train.txt"), "It is a truth universally acknowledged,\n");
    write_plain(dir.file("valid.txt"), "Sir Walter Elliot, of Kellynch Hall\n");
    TextCorpus corpus = load_text_corpus(dir.path.string());
    REQUIRE(corpus.train == "It is a truth universally acknowledged,\n");
    REQUIRE(corpus.valid == "Sir Walter Elliot, of Kellynch Hall\n");
    REQUIRE_THAT(corpus.description, Contains("train.txt") && Contains("valid.txt"));

    fs::remove(dir.path / "valid.txt");
    REQUIRE_THROWS_WITH(load_text_corpus(dir.path.string()), Contains("valid.txt"));
}

TEST_CASE("a single text file holds out its last 10% from a line start", "[data]") {
    TempDir dir;
    std::string text;
    for (int i = 0; i < 100; ++i)
        text += fmt::format("line {:3d} of the book{}\n", i, std::string(i % 7, '.'));
    for (bool gzipped : {false, true}) {
        std::string path = dir.file(gzipped ? "book.txt.gz" : "book.txt");
        if (gzipped)
            write_gzip(path, text);
        else
            write_plain(path, text);
        TextCorpus corpus = load_text_corpus(path);
        REQUIRE(corpus.train + corpus.valid == text);
        REQUIRE(corpus.train.back() == '\n');  // valid begins a line
        // The first line start at or after 90% of the text: no earlier, at most a line later.
        REQUIRE(double(corpus.train.size()) >= 0.9 * double(text.size()));
        REQUIRE(corpus.train.size() < size_t(0.9 * double(text.size())) + 30);
    }
    // One line without a newline: cut at 90% exactly.
    write_plain(dir.file("one_line.txt"), std::string(50, 'a') + std::string(50, 'b'));
    TextCorpus one = load_text_corpus(dir.file("one_line.txt"));
    REQUIRE(one.train == std::string(50, 'a') + std::string(40, 'b'));
    REQUIRE(one.valid == std::string(10, 'b'));
}

TEST_CASE("comma-separated text files: the last is valid, the others train", "[data]") {
    TempDir dir;
    write_plain(dir.file("a.txt"), "first book, no final newline");
    write_plain(dir.file("b.txt"), "second book\n");
    write_plain(dir.file("c.txt"), "held-out book\n");
    TextCorpus corpus =
        load_text_corpus(dir.file("a.txt") + "," + dir.file("b.txt") + "," + dir.file("c.txt"));
    REQUIRE(corpus.train == "first book, no final newline\nsecond book\n");
    REQUIRE(corpus.valid == "held-out book\n");
}

TEST_CASE("text corpus errors name the file", "[data]") {
    TempDir dir;
    write_plain(dir.file("empty.txt"), "");
    write_plain(dir.file("good.txt"), "some text\nmore text\n");
    REQUIRE_THROWS_WITH(load_text_corpus(dir.file("missing.txt")),
                        Contains("missing.txt") && Contains("no such file"));
    REQUIRE_THROWS_WITH(load_text_corpus(dir.file("empty.txt")),
                        Contains("empty.txt") && Contains("empty"));
    REQUIRE_THROWS_WITH(load_text_corpus(dir.file("good.txt") + "," + dir.file("gone.txt")),
                        Contains("gone.txt"));
    REQUIRE_THROWS_WITH(load_text_corpus(dir.file("gone.txt") + "," + dir.file("good.txt")),
                        Contains("gone.txt"));
    // A gzip file cut short is reported, not read as shorter text.
    std::string long_text;
    for (int i = 0; i < 3000; ++i)
        long_text += fmt::format("{} bottles of beer\n", i * 7919 % 10007);
    write_gzip(dir.file("whole.txt.gz"), long_text);
    std::string compressed = read_plain(dir.file("whole.txt.gz"));
    write_plain(dir.file("cut.txt.gz"), compressed.substr(0, compressed.size() / 2));
    REQUIRE_THROWS_WITH(load_text_corpus(dir.file("cut.txt.gz")),
                        Contains("cut.txt.gz") && Contains("truncated"));
}

TEST_CASE("sample_windows cuts windows of L + 1 bytes: inputs, then targets one later", "[data]") {
    // Distinct bytes, so each window's start can be read from its first byte; two
    // bytes above 127 must come out as 128..255, never negative.
    std::string text = "abcdefghijkl";
    text += char(0xC3);
    text += char(0xA9);
    const int64_t length = 4, batch = 8;
    std::set<int> starts;
    Generator gen(3);
    for (int draw = 0; draw < 50; ++draw) {
        TokenBatch b = sample_windows(text, batch, length, gen);
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
    TokenBatch reference = sample_windows(text, batch, length, first);
    REQUIRE(sample_windows(text, batch, length, same_seed).inputs == reference.inputs);
    REQUIRE(sample_windows(text, batch, length, other_seed).inputs != reference.inputs);

    REQUIRE_NOTHROW(sample_windows("abcde", 2, 4, gen));
    REQUIRE_THROWS_WITH(sample_windows("abcd", 2, 4, gen), Contains("shorter"));
}

// ============================================================================
// FASTA and the protein vocabulary
// ============================================================================

TEST_CASE("read_fasta: multi-line records, comments, blank lines, case, unknown letters",
          "[data]") {
    const std::string fasta =
        "; a comment before everything\n"
        ">sp|P1|FIRST a protein\n"
        "MKTAY\n"
        "iaKQR\n"
        "\n"
        ">second record, CRLF lines and a stop\r\n"
        "ACDJ\r\n"
        "; a comment inside a record\r\n"
        "bzuo*\r\n"
        ">third\n"
        "W Y\tV\n";  // spaces and tabs inside a line are ignored
    const std::vector<std::string> expected = {"MKTAYIAKQR", "ACDXBZUO", "WYV"};
    TempDir dir;
    write_plain(dir.file("small.fasta"), fasta);
    write_gzip(dir.file("small.fasta.gz"), fasta);
    REQUIRE(read_fasta(dir.file("small.fasta")) == expected);
    REQUIRE(read_fasta(dir.file("small.fasta.gz")) == expected);
}

TEST_CASE("read_fasta: malformed input names the file and the line", "[data]") {
    TempDir dir;
    auto error_of = [&](const std::string& name, const std::string& content) {
        write_plain(dir.file(name), content);
        try {
            read_fasta(dir.file(name));
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    REQUIRE_THAT(error_of("headless.fa", "\nMKV\n>x\nAC\n"),
                 Contains("headless.fa:2:") && Contains("before the first '>'"));
    REQUIRE_THAT(error_of("empty_record.fa", ">a\nMK\n>b\n; only a comment\n>c\nAC\n"),
                 Contains("empty_record.fa:3:") && Contains("no residues"));
    REQUIRE_THAT(error_of("empty_last.fa", ">a\nMK\n>b\n"), Contains("empty_last.fa:3:"));
    REQUIRE_THAT(error_of("only_stop.fa", ">a\n*\n"),
                 Contains("only_stop.fa:1:") && Contains("no residues"));
    REQUIRE_THAT(error_of("digit.fa", ">a\nMKV\nAC7D\n"),
                 Contains("digit.fa:3:") && Contains("'7'"));
    REQUIRE_THAT(error_of("gap.fa", ">a\nMK-V\n"), Contains("gap.fa:2:") && Contains("'-'"));
    REQUIRE_THAT(error_of("inner_stop.fa", ">a\nMK*\nVV\n"),
                 Contains("inner_stop.fa:3:") && Contains("'*'"));
    REQUIRE_THAT(error_of("no_records.fa", "; nothing here\n\n"),
                 Contains("no_records.fa") && Contains("no FASTA records"));
    REQUIRE_THROWS_WITH(read_fasta(dir.file("absent.fa")), Contains("absent.fa"));
}

TEST_CASE("read_fasta: corrupt or truncated gzip is an error, not fewer sequences", "[data]") {
    TempDir dir;
    std::string fasta;
    Generator gen(5);
    for (int record = 0; record < 300; ++record) {
        fasta += fmt::format(">protein {}\n", record);
        for (int residue = 0; residue < 120; ++residue)
            fasta += protein::kResidues[gen.below(protein::kStandardResidues)];
        fasta += '\n';
    }
    write_gzip(dir.file("whole.fa.gz"), fasta);
    REQUIRE(read_fasta(dir.file("whole.fa.gz")).size() == 300);

    std::string compressed = read_plain(dir.file("whole.fa.gz"));
    write_plain(dir.file("cut.fa.gz"), compressed.substr(0, compressed.size() / 2));
    REQUIRE_THROWS_WITH(read_fasta(dir.file("cut.fa.gz")),
                        Contains("cut.fa.gz") && Contains("truncated") && Contains("line"));

    std::string damaged = compressed;
    for (size_t i = damaged.size() / 2; i < damaged.size() / 2 + 16; ++i)
        damaged[i] = char(~damaged[i]);
    write_plain(dir.file("damaged.fa.gz"), damaged);
    REQUIRE_THROWS_WITH(read_fasta(dir.file("damaged.fa.gz")),
                        Contains("damaged.fa.gz") && Contains("corrupt"));
}

TEST_CASE("protein vocabulary: specials first, then 25 letters, round trip", "[data]") {
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
// Splits
// ============================================================================

TEST_CASE("split_proteins: deduplicated, disjoint, sized as asked, same seed same split",
          "[data]") {
    Generator gen(11);
    std::vector<std::string> distinct;
    for (int i = 0; i < 200; ++i) {
        std::string sequence = fmt::format("M{:03d}", i);  // distinct by construction
        for (char& c : sequence)
            if (std::isdigit(uint8_t(c))) c = protein::kResidues[size_t(c - '0')];
        for (int k = 0; k < 10; ++k) sequence += protein::kResidues[gen.below(20)];
        distinct.push_back(sequence);
    }
    std::vector<std::string> input = distinct;
    for (int i = 0; i < 30; ++i) input.push_back(distinct[size_t(i * 6)]);  // exact duplicates

    ProteinSplits splits = split_proteins(input, 7, 0.05, 0.10);
    REQUIRE(splits.valid.size() == 10);  // round(200 * 0.05)
    REQUIRE(splits.test.size() == 20);   // round(200 * 0.10)
    REQUIRE(splits.train.size() == 170);

    std::map<std::string, int> seen;
    for (const auto* part : {&splits.train, &splits.valid, &splits.test})
        for (const std::string& sequence : *part) seen[sequence] += 1;
    REQUIRE(seen.size() == 200);  // every distinct sequence somewhere ...
    for (const auto& [sequence, times] : seen) REQUIRE(times == 1);  // ... exactly once
    for (const std::string& sequence : distinct) REQUIRE(seen.count(sequence) == 1);

    // Each part keeps the input order.
    auto position = [&](const std::string& s) {
        return std::find(distinct.begin(), distinct.end(), s) - distinct.begin();
    };
    for (const auto* part : {&splits.train, &splits.valid, &splits.test})
        for (size_t i = 1; i < part->size(); ++i)
            REQUIRE(position((*part)[i - 1]) < position((*part)[i]));

    ProteinSplits same = split_proteins(input, 7, 0.05, 0.10);
    REQUIRE(same.train == splits.train);
    REQUIRE(same.valid == splits.valid);
    REQUIRE(same.test == splits.test);
    ProteinSplits other = split_proteins(input, 8, 0.05, 0.10);
    REQUIRE(other.test != splits.test);

    ProteinSplits defaults = split_proteins(distinct, 1);
    REQUIRE(defaults.valid.size() == 10);
    REQUIRE(defaults.test.size() == 10);
    REQUIRE_THROWS_WITH(split_proteins(distinct, 1, 0.6, 0.6), Contains("fractions"));
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
          "[data]") {
    using namespace protein;
    Generator gen(21);
    ProteinBatch b = sample_causal_batch({"ACD"}, 2, 8, gen);
    REQUIRE(b.batch == 2);
    REQUIRE(b.length == 8);
    const std::vector<int32_t> tokens = {kBos, encode('A'), encode('C'), encode('D'),
                                         kPad, kPad,        kPad,        kPad};
    const std::vector<int32_t> targets = {encode('A'), encode('C'), encode('D'), kEos,
                                          kIgnore,     kIgnore,     kIgnore,     kIgnore};
    const std::vector<float> key_mask = {1, 1, 1, 1, 0, 0, 0, 0};
    for (int64_t row = 0; row < 2; ++row) {
        REQUIRE(std::vector<int32_t>(b.tokens.begin() + row * 8, b.tokens.begin() + row * 8 + 8) ==
                tokens);
        REQUIRE(std::vector<int32_t>(b.targets.begin() + row * 8,
                                     b.targets.begin() + row * 8 + 8) == targets);
        REQUIRE(std::vector<float>(b.key_mask.begin() + row * 8,
                                   b.key_mask.begin() + row * 8 + 8) == key_mask);
    }
}

TEST_CASE("causal protein batch: long rows are cropped to contiguous windows", "[data]") {
    Generator gen(22);
    const std::vector<std::string> sequences = {random_protein(gen, 40), random_protein(gen, 55)};
    const int64_t length = 8, batch = 16;
    bool saw_start = false, saw_end = false;
    for (int draw = 0; draw < 20; ++draw) {
        ProteinBatch b = sample_causal_batch(sequences, batch, length, gen);
        for (int64_t row = 0; row < batch; ++row) {
            const int32_t* tokens = b.tokens.data() + row * length;
            const int32_t* targets = b.targets.data() + row * length;
            for (int64_t t = 0; t + 1 < length; ++t) REQUIRE(targets[t] == tokens[t + 1]);
            for (int64_t t = 0; t < length; ++t)
                REQUIRE(b.key_mask[size_t(row * length + t)] == 1.0f);
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
    REQUIRE(sample_causal_batch(sequences, 4, length, a).tokens ==
            sample_causal_batch(sequences, 4, length, b).tokens);
}

TEST_CASE("masked protein batch: 15% of residues chosen, then 80/10/10", "[data]") {
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
        ProteinBatch b = sample_masked_batch({sequence}, batch, length, gen);
        for (int64_t row = 0; row < batch; ++row)
            for (int64_t t = 0; t < length; ++t) {
                size_t at = size_t(row * length + t);
                int32_t token = b.tokens[at], target = b.targets[at];
                REQUIRE(b.key_mask[at] == (original[size_t(t)] == kPad ? 0.0f : 1.0f));
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

TEST_CASE("masked protein batch: long rows are cropped to contiguous windows", "[data]") {
    Generator gen(32);
    const std::vector<std::string> sequences = {random_protein(gen, 30), random_protein(gen, 70)};
    const int64_t length = 16, batch = 16;
    for (int draw = 0; draw < 10; ++draw) {
        ProteinBatch b = sample_masked_batch(sequences, batch, length, gen);
        for (int64_t row = 0; row < batch; ++row) {
            // Undo the corruption with the targets, then look for the window.
            std::vector<int32_t> restored(b.tokens.begin() + row * length,
                                          b.tokens.begin() + (row + 1) * length);
            for (int64_t t = 0; t < length; ++t)
                if (b.targets[size_t(row * length + t)] != protein::kIgnore)
                    restored[size_t(t)] = b.targets[size_t(row * length + t)];
            std::string window = decode_all(restored.data(), length);
            bool found = false;
            for (const std::string& sequence : sequences)
                found = found || row_letters(sequence).find(window) != std::string::npos;
            REQUIRE(found);
        }
    }
}

TEST_CASE("concatenated protein batch: windows of the [SEP]-joined stream, no padding", "[data]") {
    using namespace protein;
    const std::vector<std::string> sequences = {"ACD", "EFGHI", "KL"};
    const std::string sep(1, decode(kSep));
    const std::string stream = "ACD" + sep + "EFGHI" + sep + "KL" + sep;  // read cyclically
    const std::string twice = stream + stream;
    const int64_t length = 6, batch = 8;
    Generator gen(41);

    std::set<size_t> starts;
    for (int draw = 0; draw < 40; ++draw) {
        ProteinBatch b =
            sample_concatenated_batch(sequences, batch, length, Objective::Causal, gen);
        for (int64_t row = 0; row < batch; ++row) {
            const int32_t* tokens = b.tokens.data() + row * length;
            const int32_t* targets = b.targets.data() + row * length;
            for (int64_t t = 0; t + 1 < length; ++t) REQUIRE(targets[t] == tokens[t + 1]);
            for (int64_t t = 0; t < length; ++t)
                REQUIRE(b.key_mask[size_t(row * length + t)] == 1.0f);
            std::string window = decode_all(tokens, length) + decode(targets[length - 1]);
            size_t start = twice.find(window);
            REQUIRE(start < stream.size());
            starts.insert(start);
        }
    }
    REQUIRE(starts.size() == stream.size());  // every stream position starts some window

    int64_t separators = 0;
    for (int draw = 0; draw < 40; ++draw) {
        ProteinBatch b =
            sample_concatenated_batch(sequences, batch, length, Objective::Masked, gen);
        for (int64_t row = 0; row < batch; ++row) {
            std::vector<int32_t> restored(b.tokens.begin() + row * length,
                                          b.tokens.begin() + (row + 1) * length);
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
    REQUIRE_THROWS_WITH(sample_concatenated_batch({"AC", "D"}, 1, 5, Objective::Causal, gen),
                        Contains("fewer"));
}

TEST_CASE("protein FASTA from the mmseqs2 examples reads as ~20000 valid sequences",
          "[data][proteins]") {
    const std::string path = "/usr/share/doc/mmseqs2/example-data/DB.fasta.gz";
    if (!fs::exists(path)) {
        WARN(path << " is absent (Debian package mmseqs2-examples); skipped");
        return;
    }
    std::vector<std::string> sequences = read_fasta(path);
    REQUIRE(sequences.size() > 19000);
    REQUIRE(sequences.size() < 21000);
    int64_t residues = 0;
    for (const std::string& sequence : sequences) {
        REQUIRE_FALSE(sequence.empty());
        for (char c : sequence)
            if (protein::kResidues.find(c) == std::string_view::npos)
                FAIL("unexpected letter " << c);
        residues += int64_t(sequence.size());
    }
    REQUIRE(residues > 100 * int64_t(sequences.size()));  // proteins are hundreds long
}
