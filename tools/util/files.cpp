// files.cpp — whole-file reads (through zlib) and writes, parent and temp directories,
// lock files.
#include "tools/util/files.h"

#include "engine/error.h"

#include <fcntl.h>
#include <stdlib.h>  // mkdtemp
#include <sys/file.h>  // flock
#include <unistd.h>
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
    // A device such as /dev/zero, or a FIFO, might never end: only regular files are read.
    PF_CHECK(fs::is_regular_file(path, ec),
             "{}: not a regular file (a device or a pipe cannot be read as data)", path);

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

FileLock::FileLock(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    PF_CHECK(fd_ >= 0, "{}: cannot open the lock file: {}", path, std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        int why = errno;
        char holder[32] = {};
        ssize_t n = ::pread(fd_, holder, sizeof holder - 1, 0);
        ::close(fd_);
        PF_CHECK(why == EWOULDBLOCK, "{}: cannot lock: {}", path, std::strerror(why));
        throw Error(fmt::format("{}: locked by another process (pid {}): it is still using this "
                                "folder", path, n > 0 ? std::string(holder) : "unknown"));
    }
    // Ours now: replace the previous holder's pid with ours (for the message above).
    std::string pid = std::to_string(::getpid());
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) != ssize_t(pid.size()))
        fmt::print(stderr, "warning: {}: cannot write the pid into the lock file: {}\n", path,
                   std::strerror(errno));
}

FileLock::~FileLock() {
    ::close(fd_);  // releases the lock; the file stays (removing it would race a new holder)
}

}  // namespace pf
