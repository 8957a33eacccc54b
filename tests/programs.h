// programs.h — helpers for tests that run the programs under build/ (make test builds
// them first) and for the small text corpus those runs train on.
//
//   Command c = run("build/eval --ckpt " + path);   // c.exit_code, c.output (stdout + stderr)
#pragma once

#include "tools/util/files.h"

#include <catch2/catch.hpp>
#include <sys/wait.h>

#include <cstdio>
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

}  // namespace pf::testing
