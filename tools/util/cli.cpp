// cli.cpp — uniform flag parsing and error reporting for the programs.
#include "tools/util/cli.h"

#include "engine/thread_pool.h"
#include "tools/util/blas_kernel.h"

#include <fmt/format.h>

#include <cfloat>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <optional>

namespace pf {

namespace {

// An integer flag's text with leading zeros dropped ("020" -> "20", "-007" -> "-7"), so
// that CLI11 (strtoll with base 0) reads it as decimal; anything but digits is refused,
// as are a value beyond 64 bits (strtoll would clamp it, strtoull wrap it) and, for an
// unsigned flag, a minus sign (strtoull would wrap "-1" to 2^64 - 1).
std::string as_decimal_integer(std::string& text, bool is_unsigned) {
    size_t first_digit = !text.empty() && (text[0] == '-' || text[0] == '+') ? 1 : 0;
    if (first_digit == text.size() ||
        text.find_first_not_of("0123456789", first_digit) != std::string::npos)
        return fmt::format("'{}' is not a whole decimal number", text);
    size_t first_nonzero = std::min(text.find_first_not_of('0', first_digit), text.size() - 1);
    text.erase(first_digit, first_nonzero - first_digit);
    const bool negative = text[0] == '-' && text != "-0";
    if (is_unsigned && negative) return fmt::format("{} is negative", text);
    const char *digits = text.data() + first_digit, *end = text.data() + text.size();
    uint64_t magnitude = 0;
    auto [stop, error] = std::from_chars(digits, end, magnitude);
    const uint64_t most = is_unsigned ? UINT64_MAX
                          : negative  ? uint64_t(INT64_MAX) + 1
                                      : uint64_t(INT64_MAX);
    if (error != std::errc() || stop != end || magnitude > most)
        return fmt::format("{} is beyond the range of a 64-bit {}integer", text,
                           is_unsigned ? "unsigned " : "");
    return "";
}

// Refuses a floating-point flag's text that is not a finite number (nan, inf) or that a
// float cannot hold: beyond its largest value (1e39 would become inf), or not zero but
// so small that it would become 0 (a positive() check would then be passed by a 0).
std::string finite_float(std::string& text) {
    double value = 0;
    if (!CLI::detail::lexical_cast(text, value)) return "";  // malformed: CLI11 reports it
    if (!std::isfinite(value)) return fmt::format("{} is not a finite number", text);
    if (std::fabs(value) > double(FLT_MAX))
        return fmt::format("{} is too large: a float holds at most {:g}", text, double(FLT_MAX));
    if (value != 0 && float(value) == 0)
        return fmt::format("{} is too small: a float would hold it as 0", text);
    return "";
}

// The option's value type as CLI11 names it: "INT", "UINT", "FLOAT", "TEXT", ...
std::string value_type(const CLI::Option& option) {
    std::string name = option.get_type_name();
    return name.substr(0, name.find(':'));  // without the validators' descriptions
}

// The rules of cli.h for numbers, on every option of `app` that takes a value.
void add_number_rules(CLI::App& app) {
    for (CLI::Option* option : app.get_options()) {
        if (option->get_type_size_max() == 0) continue;  // a flag without a value
        std::string type = value_type(*option);
        if (type == "INT" || type == "UINT") {
            const bool is_unsigned = type == "UINT";
            option->transform(CLI::Validator(
                [is_unsigned](std::string& text) { return as_decimal_integer(text, is_unsigned); },
                ""));
        } else if (type == "FLOAT") {
            option->transform(CLI::Validator(finite_float, ""));
        }
    }
}

// The option's text as a number, or nothing (then CLI11's conversion reports it).
std::optional<double> number_in(const std::string& text) {
    double value = 0;
    if (!CLI::detail::lexical_cast(text, value)) return std::nullopt;
    return value;
}

}  // namespace

CLI::Validator in_range(double least, double most) {
    return CLI::Validator(
        [=](std::string& text) -> std::string {
            std::optional<double> value = number_in(text);
            if (!value || (*value >= least && *value <= most)) return "";
            return fmt::format("{} is outside {}", text, models::range_text(least, most));
        },
        models::range_text(least, most));
}

CLI::Validator positive() {
    return CLI::Validator(
        [](std::string& text) -> std::string {
            std::optional<double> value = number_in(text);
            return !value || *value > 0 ? "" : fmt::format("{} is not positive", text);
        },
        "POSITIVE");
}

CLI::Validator non_negative() {
    return CLI::Validator(
        [](std::string& text) -> std::string {
            std::optional<double> value = number_in(text);
            return !value || *value >= 0 ? "" : fmt::format("{} is negative", text);
        },
        "NONNEGATIVE");
}

int run_program(CLI::App& app, int argc, char** argv, const std::function<int()>& body) {
    use_matching_blas_kernel(argv);  // may start the program again, once, with better kernels
    std::string name = app.get_name().empty() ? std::string(argv[0]) : app.get_name();
    try {
        add_number_rules(app);
        app.parse(argc, argv);
    } catch (const CLI::Success& help) {
        return app.exit(help);  // --help: usage on stdout, exit 0
    } catch (const CLI::ParseError& e) {
        fmt::print(stderr, "{}: error: {}\nRun with --help for the options.\n", name, e.what());
        return kExitBadInput;
    }
    try {
        default_num_threads();  // a malformed PF_THREADS is reported here, before any work
        return body();
    } catch (const std::exception& e) {
        fmt::print(stderr, "{}: error: {}\n", name, e.what());
        return kExitBadInput;
    }
}

CLI::Validator output_file() {
    return CLI::Validator(
        [](std::string& text) -> std::string {
            if (text.empty()) return "an empty path; give a file name";
            const std::string name = std::filesystem::path(text).filename().string();
            if (name.empty() || name == "." || name == "..")
                return fmt::format("'{}' names a folder, not a file", text);
            return "";
        },
        "FILE");
}

CLI::Validator output_folder() {
    return CLI::Validator(
        [](std::string& text) -> std::string {
            return text.empty() ? "an empty path; give a folder" : "";
        },
        "FOLDER");
}

CLI::Option* add_seed_option(CLI::App& app, uint64_t& seed, const std::string& help) {
    return app.add_option("--seed", seed, help + " [default: " + std::to_string(seed) + "]")
        ->check(in_range(0, double(models::kLargestSettingInteger - 1)));
}

void add_threads_option(CLI::App& app) {
    app.add_option_function<int>(
           "--threads", [](int n) { set_num_threads(n); },
           fmt::format("worker threads, 1..{} (default: $PF_THREADS or all cores)", kMaxThreads))
        ->check(in_range(1, kMaxThreads));
}

}  // namespace pf
