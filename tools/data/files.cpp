// files.cpp — whole-file reads through zlib and atomic writes.
#include "tools/data/files.h"

#include "engine/error.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace pf::data {

std::string read_file(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    PF_CHECK(!path.empty(), "read_file: empty file name");
    PF_CHECK(fs::exists(path, ec), "{}: no such file", path);
    PF_CHECK(!fs::is_directory(path, ec), "{}: is a directory, expected a file", path);

    gzFile file = gzopen(path.c_str(), "rb");
    PF_CHECK(file != nullptr, "{}: cannot open: {}", path, std::strerror(errno));
    gzbuffer(file, 1 << 17);

    std::string bytes;
    constexpr size_t kChunk = 1 << 20;
    int got = 0;
    do {
        size_t old_size = bytes.size();
        bytes.resize(old_size + kChunk);
        got = gzread(file, bytes.data() + old_size, unsigned(kChunk));
        bytes.resize(old_size + size_t(std::max(got, 0)));
    } while (got > 0);

    // gzread reports a damaged stream either by returning -1 (corrupt data) or by
    // stopping early with Z_BUF_ERROR (the file ends inside the compressed stream).
    int status = Z_OK;
    std::string reason = gzerror(file, &status);
    gzclose_r(file);
    if (got < 0 || status != Z_OK) {
        if (status == Z_BUF_ERROR) reason = "unexpected end of file";
        if (status == Z_ERRNO) reason = std::strerror(errno);
        // zlib's message starts with the path; keep only what follows it.
        if (reason.rfind(path + ": ", 0) == 0) reason = reason.substr(path.size() + 2);
        int64_t line = 1 + std::count(bytes.begin(), bytes.end(), '\n');
        throw Error(fmt::format("{}: corrupt or truncated gzip data after {} bytes (line {}): {}",
                                path, bytes.size(), line, reason));
    }
    return bytes;
}

}  // namespace pf::data
