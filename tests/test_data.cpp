// test_data.cpp — the readers of tools/data: text corpora, FASTA files and their
// splits, images; and the n-gram baseline. (The batches made of their bytes and
// strings are tested in test_objective.cpp.)
//
// Every test writes its own small files into a fresh temporary folder and removes it
// afterwards. Expected values come from the inputs the test wrote, worked out by hand
// or by a formula independent of the loader. The tests tagged [fashion] and
// [proteins] read the installed data sets and only warn when they are absent.
#include "engine/error.h"
#include "engine/random.h"
#include "tools/data/fasta.h"
#include "tools/data/images.h"
#include "tools/data/ngram.h"
#include "tools/data/text.h"
#include "engine/files.h"
#include "models/vocabulary.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
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
namespace protein = pf::models::protein;  // the alphabet read_fasta is given
namespace fs = std::filesystem;
using Catch::Contains;

namespace {

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
    TextCorpus corpus = load_text_corpus(dir.path().string());
    REQUIRE(corpus.train == "It is a truth universally acknowledged,\n");
    REQUIRE(corpus.valid == "Sir Walter Elliot, of Kellynch Hall\n");
    REQUIRE_THAT(corpus.description, Contains("train.txt") && Contains("valid.txt"));

    fs::remove(dir.path() / "valid.txt");
    REQUIRE_THROWS_WITH(load_text_corpus(dir.path().string()), Contains("valid.txt"));
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

// ============================================================================
// FASTA
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
    REQUIRE(read_fasta(dir.file("small.fasta"), protein::kResidues) == expected);
    REQUIRE(read_fasta(dir.file("small.fasta.gz"), protein::kResidues) == expected);
    // The alphabet is the caller's: with the 20 standard amino acids only, B Z U O are unknown.
    const std::vector<std::string> standard = {"MKTAYIAKQR", "ACDXXXXX", "WYV"};
    REQUIRE(read_fasta(dir.file("small.fasta"), "ACDEFGHIKLMNPQRSTVWY") == standard);
}

TEST_CASE("read_fasta: malformed input names the file and the line", "[data]") {
    TempDir dir;
    auto error_of = [&](const std::string& name, const std::string& content) {
        write_plain(dir.file(name), content);
        try {
            read_fasta(dir.file(name), protein::kResidues);
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
    REQUIRE_THROWS_WITH(read_fasta(dir.file("absent.fa"), protein::kResidues),
                        Contains("absent.fa"));
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
    REQUIRE(read_fasta(dir.file("whole.fa.gz"), protein::kResidues).size() == 300);

    std::string compressed = read_plain(dir.file("whole.fa.gz"));
    write_plain(dir.file("cut.fa.gz"), compressed.substr(0, compressed.size() / 2));
    REQUIRE_THROWS_WITH(read_fasta(dir.file("cut.fa.gz"), protein::kResidues),
                        Contains("cut.fa.gz") && Contains("truncated") && Contains("line"));

    std::string damaged = compressed;
    for (size_t i = damaged.size() / 2; i < damaged.size() / 2 + 16; ++i)
        damaged[i] = char(~damaged[i]);
    write_plain(dir.file("damaged.fa.gz"), damaged);
    REQUIRE_THROWS_WITH(read_fasta(dir.file("damaged.fa.gz"), protein::kResidues),
                        Contains("damaged.fa.gz") && Contains("corrupt"));
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

TEST_CASE("protein FASTA from the mmseqs2 examples reads as ~20000 valid sequences",
          "[data][proteins]") {
    const std::string path = "/usr/share/doc/mmseqs2/example-data/DB.fasta.gz";
    if (!fs::exists(path)) {
        WARN(path << " is absent (Debian package mmseqs2-examples); skipped");
        return;
    }
    std::vector<std::string> sequences = read_fasta(path, protein::kResidues);
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

TEST_CASE("n-gram predictor: majority, longest seen context, back-off, no crossing", "[data]") {
    // Counts by hand. Train: 1 2 1 2 1 2 and 3 3 1. Tokens: 1 x4, 2 x3, 3 x2.
    NgramPredictor ngram({{1, 2, 1, 2, 1, 2}, {3, 3, 1}}, 2);
    const std::vector<int32_t> test = {3, 3, 2, 1, 2};
    // Order 0: always 1, the most frequent token.
    for (int64_t i = 0; i < 5; ++i) REQUIRE(ngram.predict(test, i, 0) == 1);
    // Order 1: after 3 comes 3 once and 1 once: the tie goes to 1; after 2 comes 1 (x2);
    // after 1 comes 2 (x3). Position 0 has no context: the majority.
    REQUIRE(ngram.predict(test, 0, 1) == 1);
    REQUIRE(ngram.predict(test, 1, 1) == 1);
    REQUIRE(ngram.predict(test, 2, 1) == 1);
    REQUIRE(ngram.predict(test, 3, 1) == 1);
    REQUIRE(ngram.predict(test, 4, 1) == 2);
    // Order 2: "3 3" is followed by 1; "3 2" never occurred (backs off to "2" → 1);
    // "2 1" is followed by 2.
    REQUIRE(ngram.predict(test, 2, 2) == 1);
    REQUIRE(ngram.predict(test, 3, 2) == 1);
    REQUIRE(ngram.predict(test, 4, 2) == 2);
    // Contexts never cross sequences: "2 3" (end of one, start of the next) is unseen,
    // so after [2, 3] the order-2 guess backs off to "3" (3 or 1: tie → 1).
    REQUIRE(ngram.predict({2, 3, 3}, 2, 2) == 1);
    // accuracy() agrees with predict() position by position: test targets 3 3 2 1 2.
    std::vector<double> accuracy = ngram.accuracy({test});
    REQUIRE(accuracy.size() == 3);
    REQUIRE(accuracy[0] == Approx(1.0 / 5));  // position 3
    REQUIRE(accuracy[1] == Approx(2.0 / 5));  // positions 3, 4
    REQUIRE(accuracy[2] == Approx(2.0 / 5));
    REQUIRE_THROWS_WITH(NgramPredictor({{1, 40}}, 1), Catch::Contains("token 40"));
    REQUIRE_THROWS_WITH(NgramPredictor({{1}}, 11), Catch::Contains("order 11"));
}

// ============================================================================
// Images: IDX
// ============================================================================

namespace {

// An IDX file of unsigned bytes: magic, big-endian sizes, data.
std::string idx_file(uint32_t magic, const std::vector<uint32_t>& sizes, const std::string& data) {
    std::string bytes;
    auto put = [&](uint32_t v) {
        for (int shift = 24; shift >= 0; shift -= 8) bytes += char((v >> shift) & 0xff);
    };
    put(magic);
    for (uint32_t size : sizes) put(size);
    return bytes + data;
}

// Three 2x3 images with pixel (i, r, c) = 40 i + 10 r + c, and their labels.
std::string idx_pixels() {
    std::string data;
    for (int i = 0; i < 3; ++i)
        for (int r = 0; r < 2; ++r)
            for (int c = 0; c < 3; ++c) data += char(40 * i + 10 * r + c);
    return data;
}

}  // namespace

TEST_CASE("read_idx_images reads gzipped or plain IDX images and labels", "[data]") {
    TempDir dir;
    write_gzip(dir.file("images.gz"), idx_file(0x803, {3, 2, 3}, idx_pixels()));
    write_plain(dir.file("labels"), idx_file(0x801, {3}, std::string{7, 0, 9}));
    ImageSet set = read_idx_images(dir.file("images.gz"), dir.file("labels"));
    REQUIRE(set.count == 3);
    REQUIRE(set.height == 2);
    REQUIRE(set.width == 3);
    REQUIRE(set.channels == 1);
    REQUIRE(set.labels == std::vector<int32_t>{7, 0, 9});
    REQUIRE(set.pixels.size() == 18);
    for (int i = 0; i < 3; ++i)
        for (int r = 0; r < 2; ++r)
            for (int c = 0; c < 3; ++c)
                REQUIRE(int(set.image(i)[r * 3 + c]) == 40 * i + 10 * r + c);
    REQUIRE(read_idx_images(dir.file("images.gz")).labels.empty());
}

TEST_CASE("read_idx_images: truncated, wrong magic, extra bytes, label count mismatch", "[data]") {
    TempDir dir;
    write_plain(dir.file("cut_images"), idx_file(0x803, {3, 2, 3}, idx_pixels().substr(1)));
    REQUIRE_THROWS_WITH(read_idx_images(dir.file("cut_images")), Contains("cut_images") &&
                                                                     Contains("truncated") &&
                                                                     Contains("promises 18 bytes"));
    write_plain(dir.file("short_header"), idx_file(0x803, {3}, ""));
    REQUIRE_THROWS_WITH(read_idx_images(dir.file("short_header")),
                        Contains("short_header") && Contains("truncated"));
    write_plain(dir.file("extra"), idx_file(0x803, {3, 2, 3}, idx_pixels() + "xy"));
    REQUIRE_THROWS_WITH(read_idx_images(dir.file("extra")),
                        Contains("extra") && Contains("2 unexpected bytes"));

    write_plain(dir.file("labels_as_images"), idx_file(0x801, {3}, std::string{1, 2, 3}));
    REQUIRE_THROWS_WITH(read_idx_images(dir.file("labels_as_images")),
                        Contains("labels_as_images") && Contains("magic number 0x00000801"));
    write_plain(dir.file("tiny"), "ab");
    REQUIRE_THROWS_WITH(read_idx_images(dir.file("tiny")),
                        Contains("tiny") && Contains("not an IDX"));

    write_plain(dir.file("images"), idx_file(0x803, {3, 2, 3}, idx_pixels()));
    write_plain(dir.file("four_labels"), idx_file(0x801, {4}, std::string{1, 2, 3, 4}));
    REQUIRE_THROWS_WITH(read_idx_images(dir.file("images"), dir.file("four_labels")),
                        Contains("four_labels") && Contains("4 labels") && Contains("3 images"));
    REQUIRE_THROWS_WITH(read_idx_images(dir.file("images"), dir.file("images")),
                        Contains("magic number 0x00000803"));
}

TEST_CASE("load_image_dataset reads Fashion-MNIST-named files from a folder, with a limit",
          "[data]") {
    TempDir dir;
    write_gzip(dir.file("t10k-images-idx3-ubyte.gz"), idx_file(0x803, {3, 2, 3}, idx_pixels()));
    write_plain(dir.file("t10k-labels-idx1-ubyte"), idx_file(0x801, {3}, std::string{5, 6, 7}));
    const std::string spec = "fashion-mnist:" + dir.path().string();
    ImageSet test = load_image_dataset(spec, "test", 2);
    REQUIRE(test.count == 2);
    REQUIRE(test.pixels.size() == 12);
    REQUIRE(test.labels == std::vector<int32_t>{5, 6});
    REQUIRE(int(test.image(1)[5]) == 40 + 10 + 2);
    REQUIRE(load_image_dataset(spec, "valid").count == 3);  // valid means test

    REQUIRE_THROWS_WITH(load_image_dataset(spec, "train"),
                        Contains("train-images-idx3-ubyte") && Contains("dataset-fashion-mnist"));
    REQUIRE_THROWS_WITH(load_image_dataset(spec, "dev"), Contains("'dev'"));
    REQUIRE_THROWS_WITH(load_image_dataset("cifar:" + dir.path().string(), "train"),
                        Contains("unknown image data set"));
}

TEST_CASE("Fashion-MNIST test set: 10000 images of 28x28, labels 0..9", "[data][fashion]") {
    const std::string path = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
    if (!fs::exists(path)) {
        WARN(path << " is absent (Debian package dataset-fashion-mnist); skipped");
        return;
    }
    ImageSet set = load_image_dataset("fashion-mnist", "test");
    REQUIRE(set.count == 10000);
    REQUIRE(set.height == 28);
    REQUIRE(set.width == 28);
    REQUIRE(set.channels == 1);
    REQUIRE(set.pixels.size() == size_t(10000 * 28 * 28));
    REQUIRE(*std::min_element(set.pixels.begin(), set.pixels.end()) == 0);
    REQUIRE(*std::max_element(set.pixels.begin(), set.pixels.end()) == 255);
    REQUIRE(set.labels.size() == 10000);
    std::set<int32_t> classes(set.labels.begin(), set.labels.end());
    REQUIRE(classes == std::set<int32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
}

// ============================================================================
// Images: PNG folders
// ============================================================================

namespace {

// Writes a PNG with stb directly (not through the code under test).
void write_test_png(const std::string& path, int width, int height, int channels,
                    const std::vector<uint8_t>& pixels) {
    REQUIRE(pixels.size() == size_t(width * height * channels));
    REQUIRE(stbi_write_png(path.c_str(), width, height, channels, pixels.data(),
                           width * channels) != 0);
}

// An RGB image whose column c has colour colours[c] on every row.
std::vector<uint8_t> columns_image(const std::vector<std::array<uint8_t, 3>>& colours, int height) {
    std::vector<uint8_t> pixels;
    for (int r = 0; r < height; ++r)
        for (const auto& colour : colours)
            pixels.insert(pixels.end(), colour.begin(), colour.end());
    return pixels;
}

std::array<int, 3> pixel_at(const ImageSet& set, int64_t index, int64_t r, int64_t c) {
    const uint8_t* p = set.image(index) + (r * set.width + c) * 3;
    return {p[0], p[1], p[2]};
}

}  // namespace

TEST_CASE("load_png_folder centre-crops to a square and resizes", "[data]") {
    TempDir dir;
    // 4 wide x 2 high, four coloured columns: the centred square is columns 1 and 2.
    const std::array<uint8_t, 3> c0{255, 0, 0}, c1{0, 200, 0}, c2{0, 0, 100}, c3{9, 9, 9};
    write_test_png(dir.file("wide.png"), 4, 2, 3, columns_image({c0, c1, c2, c3}, 2));

    ImageSet same = load_png_folder(dir.path().string(), 2);
    REQUIRE(same.count == 1);
    REQUIRE((same.height == 2 && same.width == 2 && same.channels == 3));
    for (int r = 0; r < 2; ++r) {
        REQUIRE(pixel_at(same, 0, r, 0) == std::array<int, 3>{0, 200, 0});
        REQUIRE(pixel_at(same, 0, r, 1) == std::array<int, 3>{0, 0, 100});
    }
    // Shrunk to 1x1: the mean of the square.
    ImageSet one = load_png_folder(dir.path().string(), 1);
    REQUIRE(pixel_at(one, 0, 0, 0) == std::array<int, 3>{0, 100, 50});
    // Enlarged to 4x4: pixel centres at x = -0.25, 0.25, 0.75, 1.25 of the 2-wide square,
    // clamped to [0, 1]: weights of column 2 are 0, 1/4, 3/4, 1.
    ImageSet big = load_png_folder(dir.path().string(), 4);
    const double weight[4] = {0, 0.25, 0.75, 1};
    for (int r = 0; r < 4; ++r)
        for (int c = 0; c < 4; ++c) {
            auto p = pixel_at(big, 0, r, c);
            REQUIRE(p[0] == 0);
            REQUIRE(p[1] == int(std::lround(200 * (1 - weight[c]))));
            REQUIRE(p[2] == int(std::lround(100 * weight[c])));
        }
}

TEST_CASE("load_png_folder: area averaging for non-integer shrinking, tall crops, grey input",
          "[data]") {
    TempDir dir;
    // 3x3 grey columns 0, 90, 180 shrunk to 2: output 0 covers [0, 1.5): (0 + 90 / 2) / 1.5
    // = 30; output 1 covers [1.5, 3): (90 / 2 + 180) / 1.5 = 150.
    write_test_png(dir.file("a_grey.png"), 3, 3, 1, {0, 90, 180, 0, 90, 180, 0, 90, 180});
    // 1 wide x 3 high, rows 10, 20, 30: the centred square is row 1.
    write_test_png(dir.file("b_tall.png"), 1, 3, 3, {10, 10, 10, 20, 20, 20, 30, 30, 30});
    write_plain(dir.file("c_notes.txt"), "not an image");
    ImageSet set = load_png_folder(dir.path().string(), 2);
    REQUIRE(set.count == 2);  // the .txt is ignored
    for (int r = 0; r < 2; ++r) {
        REQUIRE(pixel_at(set, 0, r, 0) == std::array<int, 3>{30, 30, 30});
        REQUIRE(pixel_at(set, 0, r, 1) == std::array<int, 3>{150, 150, 150});
        for (int c = 0; c < 2; ++c)
            REQUIRE(pixel_at(set, 1, r, c) == std::array<int, 3>{20, 20, 20});
    }
}

TEST_CASE("load_png_folder: sorted by name, limit, errors name the file or folder", "[data]") {
    TempDir dir;
    for (const auto& [name, value] :
         std::vector<std::pair<std::string, uint8_t>>{{"b.png", 2}, {"c.png", 3}, {"a.png", 1}})
        write_test_png(dir.file(name), 2, 2, 3, std::vector<uint8_t>(12, value));
    ImageSet two = load_png_folder(dir.path().string(), 2, 2);
    REQUIRE(two.count == 2);
    REQUIRE(two.image(0)[0] == 1);  // a.png
    REQUIRE(two.image(1)[0] == 2);  // b.png

    // A PNG cut in half, then one that is not a PNG at all.
    std::string png = read_plain(dir.file("c.png"));
    write_plain(dir.file("c.png"), png.substr(0, png.size() / 2));
    REQUIRE_THROWS_WITH(load_png_folder(dir.path().string(), 2), Contains("c.png"));
    write_plain(dir.file("c.png"), "definitely not a PNG file");
    REQUIRE_THROWS_WITH(load_png_folder(dir.path().string(), 2),
                        Contains("c.png") && Contains("cannot decode"));

    TempDir empty;
    REQUIRE_THROWS_WITH(load_png_folder(empty.path().string(), 2),
                        Contains(empty.path().string()) && Contains("no .png"));
    REQUIRE_THROWS_WITH(load_png_folder(empty.file("missing"), 2), Contains("missing"));
}

TEST_CASE("imagenet64 spec: train_64x64/valid_64x64 folders, or the last 5% as test", "[data]") {
    TempDir dir;
    fs::create_directories(dir.path() / "train_64x64");
    fs::create_directories(dir.path() / "valid_64x64");
    for (int i = 0; i < 3; ++i)
        write_test_png((dir.path() / "train_64x64" / fmt::format("{}.png", i)).string(), 8, 8, 3,
                       std::vector<uint8_t>(192, 50));
    write_test_png((dir.path() / "valid_64x64" / "0.png").string(), 8, 8, 3,
                   std::vector<uint8_t>(192, 60));
    const std::string spec = "imagenet64:" + dir.path().string();
    ImageSet train = load_image_dataset(spec, "train");
    REQUIRE((train.count == 3 && train.height == 64 && train.width == 64 && train.channels == 3));
    REQUIRE(
        std::all_of(train.pixels.begin(), train.pixels.end(), [](uint8_t v) { return v == 50; }));
    ImageSet test = load_image_dataset(spec, "test");
    REQUIRE(test.count == 1);
    REQUIRE(test.image(0)[0] == 60);
    REQUIRE(load_image_dataset(spec, "train", 2).count == 2);

    // A plain folder of 20 images: the last one by name (5% of 20) is the test split.
    TempDir flat;
    for (int i = 0; i < 20; ++i)
        write_test_png(flat.file(fmt::format("img{:02d}.png", i)), 4, 4, 3,
                       std::vector<uint8_t>(48, uint8_t(i)));
    const std::string flat_spec = "imagenet64:" + flat.path().string();
    ImageSet flat_train = load_image_dataset(flat_spec, "train");
    ImageSet flat_test = load_image_dataset(flat_spec, "test");
    REQUIRE(flat_train.count == 19);
    REQUIRE(flat_test.count == 1);
    REQUIRE(flat_test.image(0)[0] == 19);
    REQUIRE(flat_train.image(18)[0] == 18);
    REQUIRE_THROWS_WITH(load_image_dataset("imagenet64:", "train"), Contains("imagenet64:DIR"));
}

// ============================================================================
// Tokens and PNG writing
// ============================================================================

TEST_CASE("image tokens are in raster order and round-trip exactly", "[data]") {
    ImageSet set;
    set.count = 2;
    set.height = 3;
    set.width = 4;
    set.channels = 3;
    auto value = [](int64_t i, int64_t r, int64_t c, int64_t ch) {
        return uint8_t((i * 97 + r * 31 + c * 7 + ch * 101) % 256);
    };
    for (int64_t i = 0; i < 2; ++i)
        for (int64_t r = 0; r < 3; ++r)
            for (int64_t c = 0; c < 4; ++c)
                for (int64_t ch = 0; ch < 3; ++ch) set.pixels.push_back(value(i, r, c, ch));

    std::vector<int32_t> tokens = image_to_tokens(set, 1);
    REQUIRE(tokens.size() == 36);
    for (int64_t r = 0; r < 3; ++r)
        for (int64_t c = 0; c < 4; ++c)
            for (int64_t ch = 0; ch < 3; ++ch)
                REQUIRE(tokens[size_t((r * 4 + c) * 3 + ch)] == value(1, r, c, ch));

    std::vector<uint8_t> back(36);
    tokens_to_image(tokens, 3, 4, 3, back.data());
    REQUIRE(back == std::vector<uint8_t>(set.image(1), set.image(1) + 36));

    REQUIRE_THROWS(image_to_tokens(set, 2));
    tokens[5] = 256;
    REQUIRE_THROWS_WITH(tokens_to_image(tokens, 3, 4, 3, back.data()), Contains("256"));
    REQUIRE_THROWS_WITH(tokens_to_image(tokens, 3, 3, 3, back.data()), Contains("36 tokens"));
}

TEST_CASE("write_png writes a PNG that decodes to the same pixels", "[data]") {
    TempDir dir;
    std::vector<uint8_t> pixels;
    for (int i = 0; i < 5 * 3 * 3; ++i) pixels.push_back(uint8_t(i * 5));
    write_png(dir.file("small.png"), pixels.data(), 5, 3, 3);
    for (const auto& entry : fs::directory_iterator(dir.path()))  // no temporary file left
        REQUIRE(entry.path().filename() == "small.png");

    int width = 0, height = 0, channels = 0;
    uint8_t* decoded = stbi_load(dir.file("small.png").c_str(), &width, &height, &channels, 0);
    REQUIRE(decoded != nullptr);
    REQUIRE((width == 5 && height == 3 && channels == 3));
    REQUIRE(std::vector<uint8_t>(decoded, decoded + pixels.size()) == pixels);
    stbi_image_free(decoded);

    // Missing folders are created; a folder that is really a file is named in the error.
    write_png(dir.file("new/folder/x.png"), pixels.data(), 5, 3, 3);
    REQUIRE(fs::is_regular_file(dir.file("new/folder/x.png")));
    REQUIRE_THROWS_WITH(write_png(dir.file("small.png/x.png"), pixels.data(), 5, 3, 3),
                        Contains("small.png/x.png"));
    REQUIRE_THROWS(write_png(dir.file("bad.png"), pixels.data(), 5, 3, 5));
}

TEST_CASE("write_image_grid tiles scaled images with gaps", "[data]") {
    TempDir dir;
    const int64_t H = 2, W = 3, C = 1, columns = 2, scale = 3, gap = 1;
    std::vector<std::vector<uint8_t>> images;
    for (int i = 0; i < 5; ++i) {
        std::vector<uint8_t> image;
        for (int p = 0; p < H * W; ++p)
            image.push_back(uint8_t(10 * i + p));  // never the white 255
        images.push_back(image);
    }
    write_image_grid(dir.file("grid.png"), images, H, W, C, columns, scale, gap);

    int width = 0, height = 0, channels = 0;
    uint8_t* grid = stbi_load(dir.file("grid.png").c_str(), &width, &height, &channels, 0);
    REQUIRE(grid != nullptr);
    // 2 columns and 3 rows of 9x6 cells, each followed by a 1-pixel gap, plus a leading gap.
    REQUIRE(width == gap + columns * (W * scale + gap));
    REQUIRE(height == gap + 3 * (H * scale + gap));
    REQUIRE(channels == 1);
    int64_t image_pixels = 0;
    for (int64_t y = 0; y < height; ++y)
        for (int64_t x = 0; x < width; ++x) {
            // Which cell and where inside it, measured from the leading gap.
            int64_t cell_y = (y - gap) / (H * scale + gap),
                    inside_y = (y - gap) % (H * scale + gap);
            int64_t cell_x = (x - gap) / (W * scale + gap),
                    inside_x = (x - gap) % (W * scale + gap);
            int64_t index = cell_y * columns + cell_x;
            bool in_image =
                y >= gap && x >= gap && inside_y < H * scale && inside_x < W * scale && index < 5;
            int expected =
                in_image ? images[size_t(index)][size_t((inside_y / scale) * W + inside_x / scale)]
                         : 255;
            image_pixels += in_image;
            REQUIRE(int(grid[y * width + x]) == expected);
        }
    REQUIRE(image_pixels == 5 * H * W * scale * scale);
    stbi_image_free(grid);

    REQUIRE_THROWS_WITH(
        write_image_grid(dir.file("bad.png"), {std::vector<uint8_t>(5)}, H, W, C, 2),
        Contains("image 0 has 5 bytes"));
}
