// files.cpp — whole-file reads through zlib and atomic writes.
#include "tools/data/files.h"

#include "engine/error.h"

#include <unistd.h>  // fsync
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

void write_file_atomically(const std::string& path, std::string_view bytes) {
    std::string temp = path + ".tmp";
    std::FILE* file = std::fopen(temp.c_str(), "wb");
    PF_CHECK(file != nullptr, "{}: cannot write: {}", path, std::strerror(errno));
    bool ok = std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size();
    ok = std::fflush(file) == 0 && ok;
    ok = ::fsync(fileno(file)) == 0 && ok;
    int saved_errno = errno;
    ok = std::fclose(file) == 0 && ok;
    if (!ok) {
        std::remove(temp.c_str());
        throw Error(fmt::format("{}: cannot write: {}", path, std::strerror(saved_errno)));
    }
    if (std::rename(temp.c_str(), path.c_str()) != 0) {
        saved_errno = errno;
        std::remove(temp.c_str());
        throw Error(fmt::format("{}: cannot rename {} over it: {}", path, temp,
                                std::strerror(saved_errno)));
    }
}

}  // namespace pf::data
