// files.cpp — whole-file reads (through zlib) and writes, parent and temp directories.
#include "tools/util/files.h"

#include "engine/error.h"

#include <stdlib.h>  // mkdtemp
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>
#include <vector>

namespace pf {

namespace fs = std::filesystem;

std::string read_file(const std::string& path) {
    std::error_code ec;
    PF_CHECK(!path.empty(), "read_file: empty file name");
    PF_CHECK(fs::exists(path, ec), "{}: cannot open: no such file", path);
    PF_CHECK(!fs::is_directory(path, ec), "{}: is a directory, not a file", path);

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

void create_parent_directories(const std::string& path) {
    fs::path parent = fs::path(path).parent_path();
    if (parent.empty()) return;
    std::error_code error;
    fs::create_directories(parent, error);
    PF_CHECK(!error, "{}: cannot create directory {}: {}", path, parent.string(), error.message());
}

void write_file(const std::string& path, const std::string& contents) {
    create_parent_directories(path);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    PF_CHECK(out, "{}: cannot open for writing: {}", path, std::strerror(errno));
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    out.flush();
    PF_CHECK(out, "{}: write failed: {}", path, std::strerror(errno));
}

TempDir::TempDir(const std::string& prefix) {
    std::string pattern = (fs::temp_directory_path() / (prefix + "-XXXXXX")).string();
    std::vector<char> name(pattern.begin(), pattern.end());
    name.push_back('\0');
    PF_CHECK(mkdtemp(name.data()) != nullptr, "{}: cannot create a temp directory: {}", pattern,
             std::strerror(errno));
    path_ = name.data();
}

TempDir::~TempDir() {
    std::error_code ignored;  // a destructor must not throw; a leftover /tmp entry is harmless
    fs::remove_all(path_, ignored);
}

}  // namespace pf
