// test_data.cpp — the data layer: text corpora.
//
// Every test writes its own small files into a fresh temporary folder and removes it
// afterwards. Expected values come from the inputs the test wrote, worked out by hand
// or by a formula independent of the loader.
#include "engine/error.h"
#include "tools/data/text.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
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
