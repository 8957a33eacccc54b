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
//     "0x10" or "1e3" are refused, as are values beyond 64 bits and negative values of
//     unsigned flags (CLI11 alone would clamp 2^64, and wrap -1 to 2^64 - 1);
//   - floating-point flags must be finite numbers that a float holds: "nan", "inf",
//     "-inf", 1e39 (inf as a float) and 1e-50 (0 as a float) are refused, whether the
//     program keeps the value in a float or a double. (CLI11's PositiveNumber and Range
//     let NaN through, as every comparison with NaN is false; after this rule they mean
//     what they say.)
#pragma once

#include "models/settings.h"

#include <CLI/CLI.hpp>

#include <cstdint>
#include <functional>
#include <string>

namespace pf {

constexpr int kExitBadInput = 2;

int run_program(CLI::App& app, int argc, char** argv, const std::function<int()>& body);

// Range checks for options, with plain messages ("--seed: -1 is outside 0 .. 9e15";
// CLI11's PositiveNumber and Range print their limits as floats, 1.8e308 in full).
CLI::Validator in_range(double least, double most);
CLI::Validator positive();      // > 0
CLI::Validator non_negative();  // >= 0

// Checks for --out (or any flag naming what a program writes), at parse time: a file to
// write must have a name (not "", not a folder's name such as "results/", "." or "..",
// as check_output_path in engine/files.h); a folder to fill must not be "".
CLI::Validator output_file();
CLI::Validator output_folder();

// Adds --seed N, 0 .. 8999999999999999 (the range of build/train's --seed, whose seed a
// checkpoint keeps), to every program that draws random numbers from a seed.
CLI::Option* add_seed_option(CLI::App& app, uint64_t& seed, const std::string& help);

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
