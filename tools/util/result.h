// result.h — the last line of a measuring program, for scripts to read.
//
// bench, approx and eval end their output with one line of key=value pairs:
//
//   ResultLine result;
//   result.add("tokens_per_s", 12345.6).add("mfu", 0.71).add("attention", "favor");
//   result.print();   // result: tokens_per_s=12345.6 mfu=0.71 attention=favor
//
// Numbers get six significant digits (integers and large values in plain digits, no
// exponent); text goes as is, unless it is empty or holds spaces, quotes or '=', in
// which case it is double-quoted with \" and \\ escapes, as a shell would read it.
// The tests read such a line back (parse_result_line in tests/programs.h).
#pragma once

#include <concepts>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace pf {

class ResultLine {
public:
    // Keys are single words without '=' or quotes, each used once; pf::Error otherwise.
    ResultLine& add(const std::string& key, double value);
    ResultLine& add(const std::string& key, const std::string& value);
    ResultLine& add(const std::string& key, const char* value);  // else "text" would pick bool
    ResultLine& add(const std::string& key, bool value);         // "true" or "false"
    template <std::integral Integer>
        requires(!std::same_as<Integer, bool>)
    ResultLine& add(const std::string& key, Integer value) {
        return add_text(key, std::to_string(value));
    }

    std::string str() const;  // "result: key=value key=value"
    void print() const;       // str() and a newline on stdout, flushed

private:
    ResultLine& add_text(const std::string& key, std::string text);
    std::vector<std::pair<std::string, std::string>> pairs_;  // key, formatted value
};

// How add() writes a number: 12345.6 -> "12345.6", 0.71 -> "0.71", 3.0 -> "3",
// 1234567.8 -> "1234568", 1.5e-7 -> "1.5e-07", NaN -> "nan".
std::string format_result_number(double value);

}  // namespace pf
