// files.h — the one module for files: whole-file reads (gzip or plain), atomic writes,
// append-only logs, lock files and scratch folders, each refusing what is not a regular
// file and naming the path in every error.
//
//   std::string text = pf::read_file("data/austen.txt");   // pf::Error if unreadable
//   pf::write_file("run/summary.json", text);               // atomic: old or new, never half
//   pf::AppendFile log("run/log.csv");                       // a regular file, links refused
//   log.write("1,2.5\n");
//   pf::FileLock lock("run/train.lock");                     // throws if another holds it
//   pf::TempDir scratch;                                     // removed when it dies
//
// Every output of the programs (checkpoints, plots, CSV tables, summaries, samples) goes
// through write_file or AppendFile, so none of them follows a symbolic link or writes
// into a device or a FIFO planted under its name.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace pf {

// The machine's physical memory in bytes (sysconf), the base of the limits below.
uint64_t machine_memory_bytes();

// The whole file as bytes; gzip-compressed files are decompressed (zlib passes plain
// files through), so every loader accepts both. Throws pf::Error "<path>: <reason>" if
// it is missing, a directory, not a regular file (a device or a FIFO might never end),
// unreadable, larger than half the machine's memory, or if gzip data is corrupt, cut
// short (then with how far it got, bytes and line), or inflates to more than
// kMaxInflation times its size on disk (and at least 256 MiB): a gzip bomb.
inline constexpr uint64_t kMaxInflation = 100;
std::string read_file(const std::string& path);

// Writes `contents` to `path` so that it holds either its old content or all of the new,
// never a mix: a unique temporary file beside it (path.tmp.XXXXXX), fsync, rename over
// path, fsync of the folder; parent folders are created first. The rename replaces a
// regular file or nothing: a symbolic link (even to a regular file), a directory, a FIFO
// or a device under that name is refused before anything is written. On failure the
// temporary file is removed, the old file untouched, and pf::Error names the path.
void write_file(const std::string& path, const std::string& contents);

// pf::Error naming the path unless it is a regular file or nothing (a link is not
// followed): what write_file checks before writing, for callers that check every output
// of a long job before it starts.
void check_replaceable(const std::string& path);

// Removes the temporary files that writes of `path` interrupted by a crash left beside
// it. Call only while no other process can be writing `path` (e.g. under a FileLock).
void remove_stale_temporary_files(const std::string& path);

// Creates the folders above `path` (nothing if it has none); pf::Error on failure.
void create_parent_directories(const std::string& path);

// pf::Error naming `what` unless `path` is a usable name for a file to write: not empty,
// not a folder's name ("dir/"). E.g. check_output_path(out, "--out").
void check_output_path(const std::string& path, const std::string& what);

// A file that grows by whole writes (a log): created if missing (parent folders too),
// opened for appending without following a symbolic link; a link, a FIFO or a device
// under the name is refused. Each write goes to the end at once (O_APPEND, no buffer).
class AppendFile {
public:
    explicit AppendFile(const std::string& path);
    ~AppendFile();
    AppendFile(const AppendFile&) = delete;
    AppendFile& operator=(const AppendFile&) = delete;
    void write(const std::string& bytes);

private:
    std::string path_;
    int fd_ = -1;
};

// A new, empty, uniquely named folder in the system's temp folder, removed with
// everything in it when the object is destroyed. Used by tests and for gnuplot's scripts.
class TempDir {
public:
    explicit TempDir(const std::string& prefix = "pf");
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const { return path_; }
    std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
    std::filesystem::path path_;
};

// An exclusive lock on the file `path` (created if missing; a link or anything but a
// regular file is refused), held until the object is destroyed — or the process ends,
// however it ends: flock(2), released by the kernel. The holder writes its pid into the
// file, so that a second FileLock on the same path (in this or any other process) throws
// pf::Error naming the path and the holder.
class FileLock {
public:
    explicit FileLock(const std::string& path);
    ~FileLock();
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;

private:
    int fd_ = -1;
};

}  // namespace pf
