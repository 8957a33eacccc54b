// cli.cpp — uniform flag parsing and error reporting for the programs.
#include "tools/util/cli.h"

#include "engine/thread_pool.h"
#include "tools/util/blas_kernel.h"

#include <fmt/format.h>

#include <cmath>
#include <exception>
#include <optional>

namespace pf {

namespace {

// An integer flag's text with leading zeros dropped ("020" -> "20", "-007" -> "-7"), so
// that CLI11 (strtoll with base 0) reads it as decimal; anything but digits is refused.
std::string as_decimal_integer(std::string& text) {
    size_t first_digit = !text.empty() && (text[0] == '-' || text[0] == '+') ? 1 : 0;
    if (first_digit == text.size() ||
        text.find_first_not_of("0123456789", first_digit) != std::string::npos)
        return fmt::format("'{}' is not a whole decimal number", text);
    size_t first_nonzero = std::min(text.find_first_not_of('0', first_digit), text.size() - 1);
    text.erase(first_digit, first_nonzero - first_digit);
    return "";
}

// Refuses a floating-point flag's text that is not a finite number (nan, inf).
std::string finite_number(std::string& text) {
    double value = 0;
    if (CLI::detail::lexical_cast(text, value) && !std::isfinite(value))
        return fmt::format("{} is not a finite number", text);
    return "";  // malformed text: CLI11's conversion reports it
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
        if (type == "INT" || type == "UINT")
            option->transform(CLI::Validator(as_decimal_integer, ""));
        else if (type == "FLOAT")
            option->transform(CLI::Validator(finite_number, ""));
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

void add_threads_option(CLI::App& app) {
    app.add_option_function<int>(
           "--threads", [](int n) { set_num_threads(n); },
           fmt::format("worker threads, 1..{} (default: $PF_THREADS or all cores)", kMaxThreads))
        ->check(in_range(1, kMaxThreads));
}

}  // namespace pf
