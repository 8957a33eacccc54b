// cli.h — what every program does with its command line and its errors.
//
//   int main(int argc, char** argv) {
//       CLI::App app{"what this program does"};
//       int steps = 100;
//       app.add_option("--steps", steps, "training steps")->check(CLI::PositiveNumber);
//       return pf::run_program(app, argc, argv, [&] { ...; return 0; });
//   }
//
// --help prints the options and exits 0. A malformed or unknown flag, a missing or
// corrupt file (any pf::Error or std::exception thrown by the body) prints
// "<program>: error: <message>" to stderr and exits 2 — never a crash.
//
// Numbers on the command line, the same in every program (run_program adds the rules
// to each option before parsing):
//   - integer flags are decimal: "020" is 20 (CLI11 alone would read octal 16), and
//     "0x10" or "1e3" are refused;
//   - floating-point flags must be finite: "nan", "inf" and "-inf" are refused. (CLI11's
//     PositiveNumber and Range let NaN through, as every comparison with NaN is false;
//     after this rule they mean what they say.)
#pragma once

#include "models/settings.h"

#include <CLI/CLI.hpp>

#include <functional>

namespace pf {

constexpr int kExitBadInput = 2;

int run_program(CLI::App& app, int argc, char** argv, const std::function<int()>& body);

// Range checks for options, with plain messages ("--seed: -1 is outside 0 .. 9e15";
// CLI11's PositiveNumber and Range print their limits as floats, 1.8e308 in full).
CLI::Validator in_range(double least, double most);
CLI::Validator positive();      // > 0
CLI::Validator non_negative();  // >= 0

// Adds --threads N (1..kMaxThreads, see engine/thread_pool.h; default: PF_THREADS or
// all cores) and applies it before the body runs.
void add_threads_option(CLI::App& app);

// Adds a flag for each setting of `settings` that has one (models/settings.h): its help
// with the values it takes and its default (the value `options` holds now), checked by
// the setting itself; parsing sets it in `options`, which must outlive the parse.
template <class Options>
void add_flags(CLI::App& app, const models::Settings<Options>& settings, Options& options) {
    for (const models::Setting<Options>& s : settings.all()) {
        if (s.flag.empty()) continue;
        if (s.type == models::SettingInfo::Type::Switch) {
            app.add_flag_callback(s.flag, [&options, &s] { s.set(options, "1"); }, s.help);
            continue;
        }
        app.add_option_function<std::string>(
               s.flag, [&options, &s](const std::string& text) { s.set(options, text); },
               s.get(options).empty() ? s.help : s.help + " [default: " + s.get(options) + "]")
            ->type_name(s.values())
            ->check(CLI::Validator([&s](std::string& text) { return s.problem(text); }, ""));
    }
}

}  // namespace pf
