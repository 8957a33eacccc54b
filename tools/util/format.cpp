// format.cpp — exact, compact and duration formatting (see format.h).
#include "tools/util/format.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <limits>

namespace pf {

std::string format_exact(double value) {
    if (std::isnan(value)) return "nan";
    if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
    // Whole numbers that a double holds exactly: plain digits (fmt would write 1e+16).
    if (std::fabs(value) < 0x1p53 && value == std::trunc(value))
        return fmt::format("{:.0f}", value);
    // fmt's "{}" is the shortest round-trip form, for float and for double.
    bool fits_float = std::fabs(value) <= std::numeric_limits<float>::max();
    if (fits_float && static_cast<double>(static_cast<float>(value)) == value)
        return fmt::format("{}", static_cast<float>(value));
    return fmt::format("{}", value);
}

namespace {

// Fixed-point with four significant digits, for 1e-3 <= |value| < 1e4.
std::string four_significant_digits(double value) {
    double magnitude = std::fabs(value);
    int decimals = magnitude >= 1000  ? 0
                   : magnitude >= 100 ? 1
                   : magnitude >= 10  ? 2
                   : magnitude >= 1   ? 3
                                      : 4;
    return fmt::format("{:.{}f}", value, decimals);
}

}  // namespace

std::string format_compact(double value) {
    if (std::isnan(value)) return "nan";
    if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
    double magnitude = std::fabs(value);
    if (magnitude == 0) return "0";
    if (magnitude < 1e-3) return fmt::format("{:.2e}", value);
    if (magnitude < 1e4) return four_significant_digits(value);

    // Thousands and up: three significant digits and a suffix. Round first, so that
    // 999.96k moves up to "1.00M" instead of showing as "1000k".
    static const char* const suffixes[] = {"k", "M", "G", "T"};
    double scale = 1e3;
    for (const char* suffix : suffixes) {
        double scaled = value / scale;
        double scaled_magnitude = std::fabs(scaled);
        int decimals = scaled_magnitude >= 100 ? 0 : scaled_magnitude >= 10 ? 1 : 2;
        double rounded =
            std::round(scaled_magnitude * std::pow(10, decimals)) / std::pow(10, decimals);
        if (rounded < 1000) return fmt::format("{:.{}f}{}", scaled, decimals, suffix);
        scale *= 1e3;
    }
    return fmt::format("{:.2e}", value);  // beyond 999T
}

std::string format_duration(double seconds) {
    // Over a million hours means "not in this lifetime": an ETA from a rate of ~0.
    if (!std::isfinite(seconds) || seconds < 0 || seconds > 3.6e9) return "--:--";
    int64_t total = static_cast<int64_t>(std::llround(seconds));
    int64_t hours = total / 3600, minutes = total / 60 % 60, secs = total % 60;
    if (hours > 0) return fmt::format("{}:{:02}:{:02}", hours, minutes, secs);
    return fmt::format("{}:{:02}", minutes, secs);
}

}  // namespace pf
