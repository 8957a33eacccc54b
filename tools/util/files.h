// files.h — reading and writing whole files, with errors that name the file.
//
//   std::string text = pf::read_file("data/austen.txt");   // throws pf::Error if unreadable
//   pf::write_file("results/summary.json", text);          // creates results/ if needed
//   pf::TempDir scratch;                                    // a fresh directory under /tmp,
//   std::string path = scratch.file("log.csv");             // removed when `scratch` dies
//   pf::FileLock lock("runs/austen/train.lock");            // throws if another holds it
//
// write_file is a plain write: a crash halfway leaves half a file. Checkpoints, which
// must never be half-written, use the nn layer's atomic write instead.
#pragma once

#include <filesystem>
#include <string>

namespace pf {

// The whole file as bytes; gzip-compressed files are decompressed (zlib's gzread
// passes plain files through), so every loader accepts both. Throws pf::Error
// "<path>: <reason>" if it is missing, a directory, not a regular file (a device or a
// FIFO might never end), unreadable, or if gzip data is
// corrupt or cut short — then with how far it got (bytes and line), so that a FASTA
// or text error can point at the line.
std::string read_file(const std::string& path);

// Replaces the file's contents, creating its parent directories first.
void write_file(const std::string& path, const std::string& contents);

// Creates the directories above `path` (nothing if it has none); pf::Error on failure.
void create_parent_directories(const std::string& path);

// A new, empty, uniquely named directory in the system's temp directory, removed with
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

// An exclusive lock on the file `path` (created if missing), held until the object is
// destroyed — or the process ends, however it ends: flock(2), released by the kernel.
// The holder writes its pid into the file, so that a second FileLock on the same path
// (in this or any other process) throws pf::Error naming the path and the holder.
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
