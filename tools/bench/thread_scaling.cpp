// thread_scaling.cpp — the scaling measurement and the pieces analysis (thread_scaling.h).
#include "tools/bench/thread_scaling.h"

#include "engine/error.h"
#include "tools/util/timing.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

namespace pf::bench {
namespace {

// "layer_norm" from "pf::Tensor pf::layer_norm(const pf::Tensor&, ...)", with
// " backward" when the call is inside a closure (in the engine's ops, the closures that
// call the pool are their backward functions).
std::string short_name(const std::source_location& where) {
    std::string full = where.function_name();
    std::string head = full.substr(0, full.find('('));
    head = head.substr(head.rfind(' ') == std::string::npos ? 0 : head.rfind(' ') + 1);
    for (size_t at; (at = head.find("pf::")) != std::string::npos;) head.erase(at, 4);
    if (full.find("<lambda") != std::string::npos) head += " backward";
    return head;
}

std::string site_of(const std::source_location& where) {
    std::string file = where.file_name();
    return fmt::format("{} ({}:{})", short_name(where), file, where.line());
}

struct Site {
    int64_t calls = 0, fewest_pieces = INT64_MAX, most_pieces = 0;
    double seconds = 0, seconds_at_64 = 0, seconds_on_many = 0;
};

// RAII: the pool's thread count for a scope.
struct Threads {
    int saved = num_threads();
    explicit Threads(int n) { set_num_threads(n); }
    ~Threads() { set_num_threads(saved); }
};

}  // namespace

double PiecesProfile::serial_seconds() const {
    double parallel = 0;
    for (const ParallelCall& c : calls) parallel += c.seconds;
    return std::max(0.0, step_seconds - parallel);
}

double PiecesProfile::predicted_seconds(int threads) const {
    double t = serial_seconds();
    for (const ParallelCall& c : calls)
        t += c.seconds * double((c.pieces + threads - 1) / threads) / double(c.pieces);
    return t;
}

PiecesProfile profile_pieces(const std::function<void()>& step, int threads) {
    Threads count(threads);
    step();
    PiecesProfile profile;
    profile.threads = threads;
    set_parallel_log(&profile.calls);
    double start = now_seconds();
    step();
    profile.step_seconds = now_seconds() - start;
    set_parallel_log(nullptr);
    return profile;
}

void print_pieces_table(const PiecesProfile& profile, const PiecesProfile& many, int rows) {
    std::map<std::string, Site> sites;
    for (const ParallelCall& c : many.calls) sites[site_of(c.where)].seconds_on_many += c.seconds;
    for (const ParallelCall& c : profile.calls) {
        Site& s = sites[site_of(c.where)];
        s.calls++;
        s.fewest_pieces = std::min(s.fewest_pieces, c.pieces);
        s.most_pieces = std::max(s.most_pieces, c.pieces);
        s.seconds += c.seconds;
        s.seconds_at_64 += c.seconds * double((c.pieces + 63) / 64) / double(c.pieces);
    }
    std::vector<std::pair<std::string, Site>> sorted(sites.begin(), sites.end());
    std::sort(sorted.begin(), sorted.end(),
              [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
    const double step = profile.step_seconds;
    const std::string faster = fmt::format("x on {}", many.threads);
    fmt::print("  where one step's time goes on 1 thread ({:.2f} s; {:.2f} s on {} threads), and the "
               "pieces each parallel call offers:\n", step, many.step_seconds, many.threads);
    fmt::print("    {:>6}  {:>6}  {:>13}  {:>9}  {:>7}  {}\n", "share", "calls", "pieces", "at 64 thr",
               faster, "op (call site)");
    fmt::print("    {:>5.1f}%  {:>6}  {:>13}  {:>8.1f}%  {:>7.1f}  serial: outside the pool (autograd, "
               "allocation, small ops)\n", 100 * profile.serial_seconds() / step, "", "1",
               100 * profile.serial_seconds() / step, profile.serial_seconds() / many.serial_seconds());
    for (int i = 0; i < std::min<int>(rows, int(sorted.size())); ++i) {
        const auto& [site, s] = sorted[size_t(i)];
        std::string pieces = s.fewest_pieces == s.most_pieces
                                 ? fmt::format("{}", s.fewest_pieces)
                                 : fmt::format("{}-{}", s.fewest_pieces, s.most_pieces);
        fmt::print("    {:>5.1f}%  {:>6}  {:>13}  {:>8.2f}%  {:>7.1f}  {}{}\n", 100 * s.seconds / step,
                   s.calls, pieces, 100 * s.seconds_at_64 / step, s.seconds / s.seconds_on_many, site,
                   s.fewest_pieces < 64 ? "  < 64 pieces" : "");
    }
    if (int(sorted.size()) > rows) {
        double rest = 0;
        for (size_t i = size_t(rows); i < sorted.size(); ++i) rest += sorted[i].second.seconds;
        fmt::print("    {:>5.1f}%  (the other {} call sites)\n", 100 * rest / step, sorted.size() - size_t(rows));
    }
}

std::vector<int> thread_counts(const std::string& list) {
    std::vector<int> counts;
    if (list.empty()) {
        const int cores = default_num_threads();  // PF_THREADS, else the cores
        for (int t = 1; t < cores; t *= 2) counts.push_back(t);
        counts.push_back(cores);
        return counts;
    }
    std::stringstream items(list);
    for (std::string item; std::getline(items, item, ',');) {
        char* end = nullptr;
        long n = std::strtol(item.c_str(), &end, 10);
        PF_CHECK(!item.empty() && *end == '\0' && n >= 1 && n <= kMaxThreads,
                 "--thread-counts '{}': '{}' is not a thread count in 1..{}", list, item, kMaxThreads);
        counts.push_back(int(n));
    }
    return counts;
}

std::vector<double> time_over_threads(const std::function<void()>& step,
                                      const std::vector<int>& counts, int steps) {
    std::vector<double> seconds;
    for (int count : counts) {
        Threads threads(count);
        step();
        double start = now_seconds();
        for (int i = 0; i < steps; ++i) step();
        seconds.push_back((now_seconds() - start) / steps);
    }
    return seconds;
}

}  // namespace pf::bench
