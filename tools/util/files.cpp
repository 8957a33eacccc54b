// files.cpp — whole-file reads and writes, parent directories, temp directories.
#include "tools/util/files.h"

#include "engine/error.h"

#include <stdlib.h>  // mkdtemp

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>
#include <vector>

namespace pf {

namespace fs = std::filesystem;

std::string read_file(const std::string& path) {
    std::error_code error;
    PF_CHECK(!fs::is_directory(path, error), "{}: is a directory, not a file", path);
    std::ifstream in(path, std::ios::binary);
    PF_CHECK(in, "{}: cannot open: {}", path, std::strerror(errno));
    std::ostringstream contents;
    contents << in.rdbuf();
    PF_CHECK(!in.bad(), "{}: read failed: {}", path, std::strerror(errno));
    return std::move(contents).str();
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
