// result.cpp — writing `result: key=value ...` lines (see result.h).
#include "tools/util/result.h"

#include "engine/error.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdio>

namespace pf {

namespace {

bool needs_quotes(const std::string& text) {
    return text.empty() || text.find_first_of(" \t\"=\\") != std::string::npos;
}

std::string quote(const std::string& text) {
    std::string quoted = "\"";
    for (char c : text) {
        if (c == '"' || c == '\\') quoted += '\\';
        quoted += c;
    }
    return quoted + "\"";
}

}  // namespace

std::string format_result_number(double value) {
    if (std::isnan(value)) return "nan";
    if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
    // From a million up "{:.6g}" would switch to 1.23457e+06; plain digits read better.
    double magnitude = std::fabs(value);
    if (magnitude >= 999999.5 && magnitude < 1e15) return fmt::format("{:.0f}", value);
    return fmt::format("{:.6g}", value);
}

ResultLine& ResultLine::add(const std::string& key, double value) {
    return add_text(key, format_result_number(value));
}
ResultLine& ResultLine::add(const std::string& key, const std::string& value) {
    PF_CHECK(value.find_first_of("\r\n") == std::string::npos,
             "result value for '{}' has a line break; a result must stay on one line", key);
    return add_text(key, needs_quotes(value) ? quote(value) : value);
}
ResultLine& ResultLine::add(const std::string& key, const char* value) {
    return add(key, std::string(value));
}
ResultLine& ResultLine::add(const std::string& key, bool value) {
    return add_text(key, value ? "true" : "false");
}

ResultLine& ResultLine::add_text(const std::string& key, std::string text) {
    PF_CHECK(!key.empty() && key.find_first_of(" \t\r\n\"=\\") == std::string::npos,
             "result key '{}' must be one word without '=', quotes or backslashes", key);
    for (const auto& pair : pairs_) PF_CHECK(pair.first != key, "result key '{}' added twice", key);
    pairs_.emplace_back(key, std::move(text));
    return *this;
}

std::string ResultLine::str() const {
    std::string line = "result:";
    for (const auto& [key, text] : pairs_) line += " " + key + "=" + text;
    return line;
}

void ResultLine::print() const {
    std::string line = str() + "\n";
    std::fputs(line.c_str(), stdout);
    std::fflush(stdout);
}

}  // namespace pf
