// programs.h — helpers for tests that run the programs under build/ (make test builds
// them first) and read their `result:` lines, and for the small data sets those runs
// train on: a text corpus, and a folder of tiny images.
//
//   Command c = run("build/eval --ckpt " + path);   // c.exit_code, c.output (stdout + stderr)
//   parse_result_line(c.output).at("bits_per_byte")  // its `result:` line (tools/util/result.h)
//   std::string spec = write_image_folder(dir, 40, 6, 6);  // --data for --task image
#pragma once

#include "engine/error.h"
#include "engine/random.h"
#include "models/task.h"
#include "engine/files.h"

#include <catch2/catch.hpp>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>

namespace pf::testing {

struct Command {
    int exit_code;       // -1 if the program did not exit normally (a signal)
    std::string output;  // stdout and stderr
};

inline Command run(const std::string& command) {
    std::FILE* pipe = popen((command + " 2>&1").c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::string output;
    char buffer[4096];
    while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
    int status = pclose(pipe);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

// Runs a program for at most a minute, with at most 4 GiB of memory: a cap on its
// address space or, under AddressSanitizer (whose shadow memory reserves terabytes of
// address space), the sanitizer's own limit on resident memory.
inline Command run_bounded(const std::string& command) {
#ifdef __SANITIZE_ADDRESS__
    return run("ASAN_OPTIONS=hard_rss_limit_mb=4096 timeout 60 " + command);
#else
    return run("ulimit -v 4194304; timeout 60 " + command);
#endif
}

// The key=value pairs of the last line in `output` that starts with "result: ",
// quotes removed. pf::Error if there is no such line or it is malformed.
inline std::map<std::string, std::string> parse_result_line(const std::string& output) {
    const std::string prefix = "result:";
    std::string line;
    bool found = false;
    size_t start = 0;
    while (start < output.size()) {
        size_t end = output.find('\n', start);
        if (end == std::string::npos) end = output.size();
        std::string candidate = output.substr(start, end - start);
        if (!candidate.empty() && candidate.back() == '\r') candidate.pop_back();
        if (candidate.rfind(prefix, 0) == 0) line = candidate, found = true;
        start = end + 1;
    }
    PF_CHECK(found, "no line starting with '{}' in the output", prefix);

    std::map<std::string, std::string> pairs;
    size_t i = prefix.size();
    while (true) {
        while (i < line.size() && line[i] == ' ') ++i;
        if (i >= line.size()) break;
        size_t equals = line.find('=', i);
        size_t space = line.find(' ', i);
        PF_CHECK(equals != std::string::npos && equals < space,
                 "result line: '{}' is not key=value",
                 line.substr(i, space == std::string::npos ? std::string::npos : space - i));
        std::string key = line.substr(i, equals - i), value;
        i = equals + 1;
        if (i < line.size() && line[i] == '"') {
            for (++i; i < line.size() && line[i] != '"'; ++i) {
                if (line[i] == '\\' && i + 1 < line.size()) ++i;
                value += line[i];
            }
            PF_CHECK(i < line.size(), "result line: the quoted value of '{}' is never closed", key);
            ++i;
        } else {
            while (i < line.size() && line[i] != ' ') value += line[i++];
        }
        PF_CHECK(pairs.emplace(key, value).second, "result line: key '{}' appears twice", key);
    }
    return pairs;
}

// A small text corpus in `dir`: a few paragraphs, repeated (about 9 KB).
inline std::string write_corpus(const TempDir& dir) {
    std::string paragraph =
        "It is a truth universally acknowledged, that a single man in possession of a good "
        "fortune, must be in want of a wife. However little known the feelings or views of such "
        "a man may be on his first entering a neighbourhood, this truth is so well fixed.\n";
    std::string text;
    for (int i = 0; i < 40; ++i) text += paragraph;
    std::string path = dir.file("corpus.txt");
    write_file(path, text);
    return path;
}

inline void put_u32(std::string& out, uint32_t v) {  // big-endian, as IDX files are
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(char((v >> shift) & 0xff));
}

// A Fashion-MNIST-like folder of `count` H x W images in IDX format, train and test:
// left half bright, right half dark, with a little per-image noise. Returns the --data
// spec of the folder.
inline std::string write_image_folder(const TempDir& dir, int64_t count, int64_t H, int64_t W) {
    Generator gen(5);
    for (std::string prefix : {"train", "t10k"}) {
        std::string images, labels;
        put_u32(images, 0x803), put_u32(images, uint32_t(count)), put_u32(images, uint32_t(H)),
            put_u32(images, uint32_t(W));
        put_u32(labels, 0x801), put_u32(labels, uint32_t(count));
        for (int64_t i = 0; i < count; ++i) {
            for (int64_t r = 0; r < H; ++r)
                for (int64_t c = 0; c < W; ++c)
                    images.push_back(char(uint8_t((c < W / 2 ? 200 : 20) + gen.below(8))));
            labels.push_back(char(i % 10));
        }
        write_file(dir.file(prefix + "-images-idx3-ubyte"), images);
        write_file(dir.file(prefix + "-labels-idx1-ubyte"), labels);
    }
    return "fashion-mnist:" + dir.path().string();
}

// A FASTA file of 200 sequences built from a few motifs, so that there is something to learn.
inline std::string write_fasta(const TempDir& dir) {
    Generator gen(6);
    const char* motifs[] = {"MKTAYIAK", "QRQISFVK", "SHFSRQLE", "ERLGLIEV"};
    std::string fasta;
    for (int i = 0; i < 200; ++i) {
        fasta += ">seq" + std::to_string(i) + "\n";
        int parts = 2 + int(gen.below(4));
        for (int p = 0; p < parts; ++p) fasta += motifs[gen.below(4)];
        fasta += "\n";
    }
    write_file(dir.file("proteins.fasta"), fasta);
    return dir.file("proteins.fasta");
}

// The task of a name ("text", "image", "protein"), as --task reads it.
inline models::TaskKind task_kind(const std::string& name) {
    const std::vector<std::string>& names = models::task_names();
    return models::TaskKind(std::find(names.begin(), names.end(), name) - names.begin());
}

}  // namespace pf::testing
