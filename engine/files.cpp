// files.cpp — whole-file reads (through zlib, bounded), atomic writes, append-only files,
// lock files and temp folders (see files.h).
#include "engine/files.h"

#include "engine/error.h"

#include <fcntl.h>
#include <stdlib.h>    // mkdtemp, mkstemp
#include <sys/file.h>  // flock
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <vector>

namespace pf {

namespace fs = std::filesystem;

namespace {

std::string errno_text() { return std::strerror(errno); }

std::string mebibytes(uint64_t bytes) { return fmt::format("{:.0f} MiB", double(bytes) / (1 << 20)); }

// What is under `path` when it is not a regular file, for messages; "" if it is one.
std::string kind_of(const struct stat& info) {
    if (S_ISREG(info.st_mode)) return "";
    return S_ISLNK(info.st_mode)                              ? "a symbolic link"
           : S_ISDIR(info.st_mode)                            ? "a directory"
           : S_ISFIFO(info.st_mode)                           ? "a FIFO"
           : S_ISCHR(info.st_mode) || S_ISBLK(info.st_mode)   ? "a device"
                                                              : "a socket";
}

}  // namespace

uint64_t machine_memory_bytes() {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? uint64_t(pages) * uint64_t(page) : uint64_t(4) << 30;
}

std::string read_file(const std::string& path) {
    PF_CHECK(!path.empty(), "read_file: an empty file name");
    // Look before opening: open(2) on a FIFO blocks until a writer comes, maybe never.
    struct stat info {};
    PF_CHECK(::stat(path.c_str(), &info) == 0, "{}: cannot open: {}", path,
             errno == ENOENT ? "no such file" : errno_text());
    PF_CHECK(!S_ISDIR(info.st_mode), "{}: is a directory, not a file", path);
    PF_CHECK(S_ISREG(info.st_mode),
             "{}: not a regular file (a device or a pipe cannot be read as data)", path);
    // O_NONBLOCK too, in case a FIFO took the file's place since: a regular file ignores it.
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    PF_CHECK(fd >= 0, "{}: cannot open: {}", path, errno_text());
    if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
        ::close(fd);
        throw Error(fmt::format("{}: not a regular file (a device or a pipe cannot be read as "
                                "data)", path));
    }
    const uint64_t on_disk = uint64_t(info.st_size), memory_limit = machine_memory_bytes() / 2;
    if (on_disk > memory_limit) {
        ::close(fd);
        throw Error(fmt::format("{}: {} on disk, more than half of this machine's memory ({})",
                                path, mebibytes(on_disk), mebibytes(2 * memory_limit)));
    }
    const uint64_t inflation_limit =
        std::min(memory_limit, std::max<uint64_t>(uint64_t(256) << 20, kMaxInflation * on_disk));

    gzFile file = gzdopen(fd, "rb");  // owns fd from here on
    if (file == nullptr) {
        ::close(fd);
        throw Error(fmt::format("{}: cannot open: {}", path, errno_text()));
    }
    gzbuffer(file, 1 << 17);
    std::string bytes;
    constexpr size_t kChunk = 1 << 20;
    int got = 0;
    do {
        if (bytes.size() > inflation_limit) {
            gzclose_r(file);
            throw Error(fmt::format(
                "{}: its {} on disk inflate to more than {} ({}): refusing to read on (a gzip "
                "bomb?)", path, mebibytes(on_disk), mebibytes(inflation_limit),
                inflation_limit == memory_limit ? "half of this machine's memory"
                                                : fmt::format("{} times its size on disk", kMaxInflation)));
        }
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
        if (status == Z_ERRNO) reason = errno_text();
        // zlib's message may start with a name; keep only what follows it.
        if (size_t colon = reason.find(": "); status != Z_BUF_ERROR && colon != std::string::npos)
            reason = reason.substr(colon + 2);
        int64_t line = 1 + std::count(bytes.begin(), bytes.end(), '\n');
        throw Error(fmt::format("{}: corrupt or truncated gzip data after {} bytes (line {}): {}",
                                path, bytes.size(), line, reason));
    }
    return bytes;
}

void check_replaceable(const std::string& path) {
    struct stat existing {};
    if (::lstat(path.c_str(), &existing) != 0) return;
    const std::string kind = kind_of(existing);
    PF_CHECK(kind.empty(), "cannot write {}: it is {}, not a regular file (refusing to write "
             "through it or rename over it)", path, kind);
}

void create_parent_directories(const std::string& path) {
    fs::path parent = fs::path(path).parent_path();
    if (parent.empty()) return;
    std::error_code error;
    fs::create_directories(parent, error);
    PF_CHECK(!error, "cannot write {}: cannot create the folder {}: {}", path, parent.string(),
             error.message());
}

void check_output_path(const std::string& path, const std::string& what) {
    PF_CHECK(!path.empty(), "{}: an empty path; give a file name", what);
    PF_CHECK(!fs::path(path).filename().empty() && fs::path(path).filename() != "." &&
                 fs::path(path).filename() != "..",
             "{} {}: names a folder, not a file", what, path);
}

void write_file(const std::string& path, const std::string& contents) {
    PF_CHECK(!path.empty(), "write_file: an empty file name");
    check_replaceable(path);
    create_parent_directories(path);
    // mkstemp fills in the X's with a name no other file has, and creates it.
    std::string temp_path = path + ".tmp.XXXXXX";
    int fd = ::mkstemp(temp_path.data());
    PF_CHECK(fd >= 0, "cannot write {}: cannot create a temporary file beside it: {}", path,
             errno_text());
    // Any failure from here on: close, remove the temporary file, report.
    auto fail = [&](const std::string& what) {
        std::string why = errno_text();
        if (fd >= 0) ::close(fd);
        ::unlink(temp_path.c_str());
        throw Error(fmt::format("cannot write {}: {} failed: {}", path, what, why));
    };
    size_t done = 0;
    while (done < contents.size()) {
        ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n == 0) errno = EIO;  // no progress and no error code: should not happen
        if (n <= 0) fail(fmt::format("writing {} bytes", contents.size()));
        done += size_t(n);
    }
    // Unbuffered write(2), so nothing to flush; fsync puts the bytes on the disk before
    // the rename makes them visible under the real name.
    if (::fchmod(fd, 0644) != 0) fail("fchmod");
    if (::fsync(fd) != 0) fail("fsync");
    int closing = fd;
    fd = -1;
    if (::close(closing) != 0) fail("close");
    check_replaceable(path);  // again: a link may have been planted meanwhile
    if (::rename(temp_path.c_str(), path.c_str()) != 0) fail("rename");

    // The rename itself is durable only once the folder is synced.
    fs::path directory = fs::path(path).parent_path();
    if (directory.empty()) directory = fs::path(".");
    int dir_fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    PF_CHECK(dir_fd >= 0, "cannot write {}: opening its folder to fsync failed: {}", path,
             errno_text());
    int synced = ::fsync(dir_fd);
    std::string why = errno_text();
    ::close(dir_fd);
    PF_CHECK(synced == 0, "cannot write {}: fsync of its folder failed: {}", path, why);
}

void remove_stale_temporary_files(const std::string& path) {
    const fs::path target(path);
    const fs::path folder = target.parent_path().empty() ? fs::path(".") : target.parent_path();
    const std::string prefix = target.filename().string() + ".tmp.";
    std::error_code error;
    std::vector<fs::path> stale;
    for (const auto& entry : fs::directory_iterator(folder, error))
        if (entry.path().filename().string().rfind(prefix, 0) == 0 &&
            entry.is_regular_file(error) && !entry.is_symlink(error))
            stale.push_back(entry.path());
    for (const fs::path& file : stale) fs::remove(file, error);
}

AppendFile::AppendFile(const std::string& path) : path_(path) {
    PF_CHECK(!path.empty(), "AppendFile: an empty file name");
    create_parent_directories(path);
    fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
    if (fd_ < 0) {
        struct stat existing {};
        PF_CHECK(::lstat(path.c_str(), &existing) != 0 || S_ISREG(existing.st_mode),
                 "cannot write {}: it is {}, not a regular file (refusing to write through it)",
                 path, kind_of(existing));
        throw Error(fmt::format("{}: cannot open for writing: {}", path, errno_text()));
    }
    struct stat info {};
    if (::fstat(fd_, &info) != 0 || !S_ISREG(info.st_mode)) {
        ::close(fd_);
        throw Error(fmt::format("cannot write {}: it is {}, not a regular file (refusing to "
                                "write through it)", path, kind_of(info)));
    }
}

AppendFile::~AppendFile() { ::close(fd_); }

void AppendFile::write(const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        PF_CHECK(n > 0, "{}: write failed: {}", path_, n == 0 ? "no progress" : errno_text());
        done += size_t(n);
    }
}

TempDir::TempDir(const std::string& prefix) {
    std::string pattern = (fs::temp_directory_path() / (prefix + "-XXXXXX")).string();
    std::vector<char> name(pattern.begin(), pattern.end());
    name.push_back('\0');
    PF_CHECK(mkdtemp(name.data()) != nullptr, "{}: cannot create a temp directory: {}", pattern,
             errno_text());
    path_ = name.data();
}

TempDir::~TempDir() {
    std::error_code ignored;  // a destructor must not throw; a leftover /tmp entry is harmless
    fs::remove_all(path_, ignored);
}

FileLock::FileLock(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
    struct stat info {};
    if (fd_ < 0 && ::lstat(path.c_str(), &info) == 0 && !S_ISREG(info.st_mode))
        throw Error(fmt::format("{}: the lock file is {}, not a regular file", path, kind_of(info)));
    PF_CHECK(fd_ >= 0, "{}: cannot open the lock file: {}", path, errno_text());
    if (::fstat(fd_, &info) != 0 || !S_ISREG(info.st_mode)) {
        ::close(fd_);
        throw Error(fmt::format("{}: the lock file is {}, not a regular file", path, kind_of(info)));
    }
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
                   errno_text());
}

FileLock::~FileLock() {
    ::close(fd_);  // releases the lock; the file stays (removing it would race a new holder)
}

}  // namespace pf
