// cli.cpp — uniform flag parsing and error reporting for the programs.
#include "tools/util/cli.h"

#include "engine/thread_pool.h"

#include <fmt/format.h>

#include <exception>

namespace pf {

int run_program(CLI::App& app, int argc, char** argv, const std::function<int()>& body) {
    std::string name = app.get_name().empty() ? std::string(argv[0]) : app.get_name();
    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& help) {
        return app.exit(help);  // --help: usage on stdout, exit 0
    } catch (const CLI::ParseError& e) {
        fmt::print(stderr, "{}: error: {}\nRun with --help for the options.\n", name, e.what());
        return kExitBadInput;
    }
    try {
        return body();
    } catch (const std::exception& e) {
        fmt::print(stderr, "{}: error: {}\n", name, e.what());
        return kExitBadInput;
    }
}

void add_threads_option(CLI::App& app) {
    app.add_option_function<int>(
           "--threads", [](int n) { set_num_threads(n); },
           "worker threads (default: $PF_THREADS or all cores)")
        ->check(CLI::PositiveNumber);
}

}  // namespace pf
