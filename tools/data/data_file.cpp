// data_file.cpp — reading a data file, refusing what is not a regular file.
#include "tools/data/data_file.h"

#include "engine/error.h"
#include "tools/util/files.h"

#include <filesystem>

namespace pf::data {

std::string read_data_file(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;  // a missing file is left to read_file, which says so
    PF_CHECK(!fs::exists(path, ec) || fs::is_directory(path, ec) || fs::is_regular_file(path, ec),
             "{}: not a regular file (a device or a pipe cannot be read as data)", path);
    return read_file(path);
}

}  // namespace pf::data
