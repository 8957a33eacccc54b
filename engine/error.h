// error.h — the one exception type the engine throws, and a check macro.
//
// Every op validates its inputs with PF_CHECK and says which op failed and with
// which shapes, e.g. "matmul: inner sizes differ: (2, 3) @ (4, 5)". Bad input
// never crashes; it throws pf::Error, which programs turn into exit code 2.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace pf {

struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

using Shape = std::vector<int64_t>;

// "(2, 3, 4)" — used in every error message about shapes.
inline std::string shape_str(const Shape& shape) {
    return fmt::format("({})", fmt::join(shape, ", "));
}

}  // namespace pf

// PF_CHECK(condition, "format {}", args...): throw pf::Error with the message if false.
#define PF_CHECK(condition, ...)                                  \
    do {                                                          \
        if (!(condition)) throw ::pf::Error(fmt::format(__VA_ARGS__)); \
    } while (0)
