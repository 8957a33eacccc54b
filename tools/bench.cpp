// bench.cpp — the paper's speed figure: attention's time and memory against the
// sequence length L, for one layer or the paper's whole model. (Whole models' training
// and decoding speed: build/bench_model.)
//
//   build/bench [--quick] [--max-length 65536] [--out results/bench_attention.csv]
//   build/bench --paper [--quick] [--memory-budget 16]   # Figure 3: the paper's 6-layer model
//   build/bench --paper --recompute      # FAVOR+ alone, attention recomputed in backward
//
// Attention (the default):
// One attention layer (projections included) with batch 1, 4 heads of width 64
// (D = 256) and m = 128 random features, for softmax, favor, relu, identity ("X (OPT)":
// no attention at all, the speed limit) and the paper's rivals: linformer (k = 256;
// bidirectional only) and reformer (4 rounds of 2L / 64 buckets, chunks of 64), bidirectional
// and causal, at L = 256, 512, ..., 65536. Each mechanism stops before the first length
// whose time or memory, extrapolated from the last two lengths, would exceed the budgets
// printed at the start. Memory is the peak of bytes held by tensors during the step,
// measured by the engine's allocator (exact and unaffected by other processes). Writes a
// CSV and a PNG (log-log time vs L and memory vs L) and ends with a `result:` line of ratios.
//
// The paper's Figure 3 (--paper):
// Forward + backward (mean cross-entropy of random tokens, batch 1) of the paper's whole
// regular model (6 layers, D = 512 as 8 heads, ff 2048, vocab 256) with softmax, favor
// (m = 256) and identity attention, bidirectional and causal, at L = 1024 ... 65536
// (--quick: 256 and 512). Before each length its memory is predicted from the last
// length run (linearly; softmax's L x L matrices quadratically) and the length is
// skipped, with the reason in the CSV, if it would exceed the budget of tensor memory or
// the machine's memory; a mechanism stops after a step longer than the time budget.
// Memory is the peak of tensor bytes, parameters and gradients included, and peak RSS.
// Writes results/bench_paper.{csv,png}, a table, and a `result:` line (ratios at 8192,
// the longest lengths within the budget). --recompute runs FAVOR+ alone, keeping only
// each layer's q, k, v for backward (nn::AttentionConfig::recompute), to
// results/bench_paper_recompute.{csv,png}.
#include "engine/allocator.h"
#include "engine/blas.h"
#include "engine/blas_instruments.h"
#include "engine/ops.h"
#include "engine/thread_pool.h"
#include "nn/attention.h"
#include "tools/bench/whole_model.h"
#include "tools/util/blas_kernel.h"
#include "tools/util/cli.h"
#include "tools/util/csv.h"
#include "tools/util/plot.h"
#include "tools/util/result.h"
#include "tools/util/timing.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <filesystem>
#include <map>

using namespace pf;
using namespace pf::nn;

namespace {

// One length's measurement; NaN where it did not run (--paper says why in `status`).
struct Point {
    double seconds = NAN, peak_mib = NAN, gflop = NAN;
    double peak_rss_mib = NAN;  // --paper
    std::string status;         // --paper: "ok", or why the length did not run
};

// One forward + backward of the layer; returns the peak tensor memory in MiB above
// what was live before, and the floating-point operations of its matrix products.
Point step(MultiHeadAttention& attention, Tensor x) {
    x.zero_grad();
    attention.zero_grad();
    int64_t before = Storage::live_bytes();
    Storage::reset_peak();
    blas::reset_flop_count();
    {
        Tensor y = attention.forward(x);
        y.backward(Tensor::ones(y.shape()));
    }
    Point point;
    point.gflop = double(blas::flop_count()) / 1e9;
    point.peak_mib = double(Storage::peak_bytes() - before) / (1 << 20);
    return point;
}

struct Options {
    bool quick = false, paper = false, recompute = false;
    int64_t max_length = 65536;
    double memory_budget_gib = 16, time_budget_s = 60;
    std::string out;  // default: results/bench_attention.csv, or bench_paper.csv (--paper)
};

// results[(mechanism, causal)][L]
using Results = std::map<std::pair<Mechanism, bool>, std::map<int64_t, Point>>;

// The layer timed at length L: D = 256 as 4 heads of 64, m = 128 random features, the
// baselines' defaults, linformer's E and F covering L, and reformer's buckets as the
// Reformer sets them for L: 2L / chunk, half a chunk each on average.
AttentionConfig layer_config(Mechanism mechanism, bool causal, int64_t L) {
    AttentionConfig config;
    config.dim = 256;
    config.heads = 4;
    config.max_length = L;
    config.mechanism = mechanism;
    config.causal = causal;
    config.features = 128;
    config.buckets = std::max<int64_t>(2, 2 * L / config.chunk);
    return config;
}

// Whether length L would exceed a budget, extrapolated from the points p and pp at the
// last two lengths (at least linear growth); says so if it would.
bool over_budget(const Options& options, Mechanism mechanism, bool causal, int64_t L,
                 const Point& p, const Point& pp) {
    double time_growth = std::max(2.0, p.seconds / pp.seconds);
    double memory_growth = std::max(2.0, p.peak_mib / pp.peak_mib);
    double next_time = p.seconds * time_growth;
    double next_memory = p.peak_mib * memory_growth / 1024;
    bool stops = next_time > options.time_budget_s || next_memory > options.memory_budget_gib;
    if (stops)
        fmt::print("{:<9} {:<6} {:>7} stops: would need ~{:.0f} s and ~{:.1f} GiB\n",
                   mechanism_name(mechanism), causal ? "causal" : "bidir", L, next_time,
                   next_memory);
    return stops;
}

// Times one mechanism at L = 256, 512, ... until the longest length or a budget, printing
// a table row for each length.
void sweep_lengths(const Options& options, Mechanism mechanism, bool causal,
                   std::map<int64_t, Point>& points) {
    Generator gen(1);
    int64_t previous = 0, before_previous = 0;
    for (int64_t L = 256; L <= options.max_length; L *= 2) {
        if (previous && before_previous &&
            over_budget(options, mechanism, causal, L, points[previous], points[before_previous]))
            break;
        release_cached_buffers();  // measure each length from a clean slate
        MultiHeadAttention attention(layer_config(mechanism, causal, L), gen);
        Tensor x = Tensor::randn({1, L, 256}, gen).requires_grad_();
        Point point = step(attention, x);  // also the warm-up
        int reps = options.quick ? 2 : (L <= 4096 ? 5 : L <= 16384 ? 3 : 1);
        point.seconds = median_seconds(reps, [&] { step(attention, x); });
        x.zero_grad();
        points[L] = point;
        fmt::print("{:<9} {:<6} {:>7} {:>12.1f} {:>12.1f} {:>12.2f}\n", mechanism_name(mechanism),
                   causal ? "causal" : "bidir", L, point.seconds * 1e3, point.peak_mib,
                   point.gflop);
        before_previous = previous;
        previous = L;
    }
}

// Each of `mechanisms` over the lengths by `sweep` (sweep_lengths, or the paper's
// sweep_paper_lengths), bidirectional and then causal (linformer cannot be).
template <class Sweep>
Results sweep_mechanisms(const Options& options, const std::vector<Mechanism>& mechanisms,
                         Sweep sweep) {
    Results results;
    for (bool causal : {false, true})
        for (Mechanism mechanism : mechanisms)
            if (!(causal && mechanism == Mechanism::Linformer))
                sweep(options, mechanism, causal, results[{mechanism, causal}]);
    release_cached_buffers();
    return results;
}

// The PNG beside the CSV `out`: time and memory against L, log-log, a line for each
// mechanism and mode (lengths that did not run, NaN, are left out). `subject` opens
// the panels' titles.
void plot_sweep(const std::string& out, const Results& results, const std::string& subject) {
    PlotSpec time_plot, memory_plot;
    time_plot.title = subject + "forward + backward time";
    time_plot.xlabel = memory_plot.xlabel = "sequence length L";
    time_plot.ylabel = "seconds";
    memory_plot.title = subject + "peak tensor memory";
    memory_plot.ylabel = "MiB";
    time_plot.log_x = time_plot.log_y = memory_plot.log_x = memory_plot.log_y = true;
    for (auto& [key, points] : results) {
        std::string name = mechanism_name(key.first) + (key.second ? " causal" : " bidir");
        // A colour per mechanism; causal curves dashed.
        Series time_series{name, {}, {}, key.second, int(key.first) + 1}, memory_series = time_series;
        for (auto& [L, p] : points) {
            time_series.x.push_back(double(L));
            time_series.y.push_back(p.seconds);
            memory_series.x.push_back(double(L));
            memory_series.y.push_back(p.peak_mib);
        }
        time_plot.series.push_back(time_series);
        memory_plot.series.push_back(memory_series);
    }
    std::string png = std::filesystem::path(out).replace_extension(".png").string();
    try {
        plot_png_panels(png, {time_plot, memory_plot});
        fmt::print("\nwrote {} and {}\n", out, png);
    } catch (const std::exception& e) {
        fmt::print(stderr, "warning: no plot: {}\n", e.what());
    }
}

// Writes the CSV (with --paper, also peak RSS and status), and the PNG beside it.
void write_sweep(const std::string& out, const Results& results, bool paper) {
    std::vector<std::string> columns{"attention", "mode", "length", "seconds", "peak_mib", "gemm_gflop"};
    if (paper) columns.insert(columns.end(), {"peak_rss_mib", "status"});
    CsvWriter csv(out, columns);
    for (auto& [key, points] : results)
        for (auto& [L, p] : points) {
            std::vector<std::string> fields{
                mechanism_name(key.first), key.second ? "causal" : "bidirectional", std::to_string(L),
                fmt::format("{:.6g}", p.seconds), fmt::format("{:.6g}", p.peak_mib),
                fmt::format("{:.6g}", p.gflop)};
            if (paper) fields.insert(fields.end(), {fmt::format("{:.6g}", p.peak_rss_mib), p.status});
            csv.row(fields);
        }
    plot_sweep(out, results, paper ? "6-layer model: " : "");
}

// The point measured for (mechanism, causal) at length L; NaNs if there is none.
Point point_at(const Results& results, Mechanism mechanism, bool causal, int64_t L) {
    auto points = results.find({mechanism, causal});
    if (points == results.end()) return Point{};
    auto it = points->second.find(L);
    return it == points->second.end() ? Point{} : it->second;
}

// The smallest L from which favor beats softmax at every length both ran (0: none).
int64_t favor_faster_from(const Results& results, bool causal) {
    int64_t from = 0;
    for (auto& [L, p] : results.at({Mechanism::Softmax, causal})) {
        Point f = point_at(results, Mechanism::Favor, causal, L);
        if (std::isnan(f.seconds)) continue;
        if (f.seconds < p.seconds) {
            if (!from) from = L;
        } else {
            from = 0;
        }
    }
    return from;
}

// The goals, as ratios of numbers measured above (NaN where a point is missing).
void print_sweep_result(const Results& results) {
    auto at = [&](Mechanism mechanism, bool causal, int64_t L) {
        return point_at(results, mechanism, causal, L);
    };
    ResultLine result;
    result.add("causal_favor_scaling", at(Mechanism::Favor, true, 16384).seconds /
                                           at(Mechanism::Favor, true, 8192).seconds);
    result.add("causal_favor_mem_vs_identity_16384",
               at(Mechanism::Favor, true, 16384).peak_mib /
                   at(Mechanism::Identity, true, 16384).peak_mib);
    result.add("causal_favor_vs_identity_8192", at(Mechanism::Favor, true, 8192).seconds /
                                                    at(Mechanism::Identity, true, 8192).seconds);
    // The same ratio in the arithmetic of the matrix products alone: on a CPU, where
    // they run at one rate, the time ratio cannot fall below it.
    result.add("causal_favor_vs_identity_8192_gemm_flops",
               at(Mechanism::Favor, true, 8192).gflop / at(Mechanism::Identity, true, 8192).gflop);
    result.add("favor_faster_from_causal", favor_faster_from(results, true));
    result.add("favor_faster_from_bidir", favor_faster_from(results, false));
    result.add("softmax_vs_favor_16384_causal", at(Mechanism::Softmax, true, 16384).seconds /
                                                    at(Mechanism::Favor, true, 16384).seconds);
    result.add("softmax_vs_favor_16384_bidir", at(Mechanism::Softmax, false, 16384).seconds /
                                                   at(Mechanism::Favor, false, 16384).seconds);
    // The rivals against FAVOR+ (above 1: slower than FAVOR+), in time and memory.
    for (auto [mechanism, causal] : {std::pair{Mechanism::Linformer, false},
                                     std::pair{Mechanism::Reformer, false},
                                     std::pair{Mechanism::Reformer, true}}) {
        std::string key = fmt::format("{}_vs_favor_4096_{}", mechanism_name(mechanism),
                                      causal ? "causal" : "bidir");
        result.add(key, at(mechanism, causal, 4096).seconds / at(Mechanism::Favor, causal, 4096).seconds);
        result.add(key + "_mem",
                   at(mechanism, causal, 4096).peak_mib / at(Mechanism::Favor, causal, 4096).peak_mib);
    }
    result.add("threads", int64_t(num_threads()));
    fmt::print("{}\n", result.str());
}

// The attention layer alone: every mechanism over the lengths, a CSV, a plot, ratios.
int attention_sweep(Options options) {
    if (options.quick) options.max_length = std::min<int64_t>(options.max_length, 4096);
    fmt::print("attention layer: batch 1, 4 heads x 64, m = 128, linformer k = 256, reformer 4 "
               "rounds of 2L / 64 buckets in chunks of 64, {} threads\n", num_threads());
    fmt::print("budgets: {:.0f} GiB of tensors, {:.0f} s per forward+backward\n\n",
               options.memory_budget_gib, options.time_budget_s);
    fmt::print("{:<9} {:<6} {:>7} {:>12} {:>12} {:>12}\n", "attention", "mode", "L", "fwd+bwd ms",
               "peak MiB", "GEMM GFLOP");
    Results results = sweep_mechanisms(options, {Mechanism::Softmax, Mechanism::Favor, Mechanism::Relu,
                                                 Mechanism::Identity, Mechanism::Linformer,
                                                 Mechanism::Reformer}, sweep_lengths);
    write_sweep(options.out.empty() ? "results/bench_attention.csv" : options.out, results, false);
    print_sweep_result(results);
    return 0;
}


// ---- the paper's Figure 3 (--paper) -------------------------------------------------------

// The paper's regular model at length L: 6 layers, D = 512 as 8 heads of 64, ff 2048,
// vocab 256, m = 256 random features, with `mechanism` attention, causal or not.
models::ModelConfig paper_config(Mechanism mechanism, bool causal, int64_t L) {
    models::ModelConfig config;
    config.attention.dim = 512;
    config.attention.heads = 8;
    config.attention.features = 256;
    config.attention.mechanism = mechanism;
    config.attention.causal = causal;
    config.layers = 6;
    config.ff = 2048;
    config.vocab = 256;
    config.attention.max_length = L;
    return config;
}

// The lengths: 1024 ... --max-length by doubling; --quick: 256 and 512 (the model's size
// stays the paper's: a step at L = 256 is already about 30 GFLOP).
std::vector<int64_t> paper_lengths(const Options& options) {
    int64_t last = options.quick ? std::min<int64_t>(options.max_length, 512) : options.max_length;
    std::vector<int64_t> lengths;
    for (int64_t L = options.quick ? 256 : 1024; L <= last; L *= 2) lengths.push_back(L);
    return lengths;
}

// Forward + backward of the whole model on random tokens, batch 1, loss = mean
// cross-entropy: the median of `reps` steps after a warm-up step. The peaks of tensor
// memory (parameters and gradients included) and of RSS cover the warm-up too: the
// first step needs its memory as much as any other.
Point time_model_step(const models::ModelConfig& config, int reps) {
    bench::ModelStep step(config, 1, config.attention.max_length, false);
    Storage::reset_peak();
    reset_peak_rss();
    blas::reset_flop_count();
    Point point;
    point.status = "ok";
    point.seconds = median_seconds(reps, std::ref(step));
    point.gflop = double(blas::flop_count()) / 1e9 / (reps + 1);
    point.peak_mib = double(Storage::peak_bytes()) / (1 << 20);
    point.peak_rss_mib = peak_rss_mib();
    return point;
}

// Memory (MiB) measured at length L, scaled to length `next`: linearly, except for
// softmax's L x L matrices, which grow as L^2.
double predict_mib(double measured_mib, const models::ModelConfig& config, int64_t L,
                   int64_t next) {
    double ratio = double(next) / double(L), quadratic = 0;
    if (config.attention.mechanism == Mechanism::Softmax)
        quadratic = std::min(measured_mib, bench::softmax_matrices_mib(config, L));
    return (measured_mib - quadratic) * ratio + quadratic * ratio * ratio;
}

// Why length L must not run, given `p` measured at the last length tried (`previous`):
// that one failed or took longer than the time budget, or L would need more tensor
// memory than the budget or more memory than the machine has. "" if it may run.
std::string paper_skip_reason(const Options& options, const models::ModelConfig& config,
                              int64_t previous, const Point& p) {
    const int64_t L = config.attention.max_length;
    if (std::isnan(p.seconds)) return fmt::format("skipped: L = {} did not run", previous);
    if (p.seconds > options.time_budget_s)
        return fmt::format("skipped: the step at L = {} took {:.0f} s, over the {:g} s budget",
                           previous, p.seconds, options.time_budget_s);
    double tensor_gib = predict_mib(p.peak_mib, config, previous, L) / 1024;
    if (tensor_gib > options.memory_budget_gib)
        return fmt::format("over budget: would need ~{:.1f} GiB of tensors, more than {:g} GiB",
                           tensor_gib, options.memory_budget_gib);
    double rss_mib = predict_mib(p.peak_rss_mib, config, previous, L);
    double available_mib = 0.75 * memory_total_mib();
    if (available_mib > 0 && rss_mib > available_mib)
        return fmt::format("over memory: would need ~{:.0f} MiB, more than the {:.0f} MiB "
                           "available (0.75 x MemTotal)", rss_mib, available_mib);
    return "";
}

// Runs length L of config: its point, marked over budget if it used more tensor memory
// than the budget, or failed (e.g. out of memory) with the error.
Point run_paper_length(const Options& options, const models::ModelConfig& config) {
    const int64_t L = config.attention.max_length;
    release_cached_buffers();  // measure each length from a clean slate
    Point point;
    try {
        point = time_model_step(config, options.quick ? 1 : (L <= 4096 ? 3 : 1));
    } catch (const std::exception& e) {
        point.status = fmt::format("failed: {}", e.what());
    }
    release_cached_buffers();
    if (point.peak_mib / 1024 > options.memory_budget_gib)
        point.status = fmt::format("over budget: used {:.1f} GiB of tensors, more than {:g} GiB",
                                   point.peak_mib / 1024, options.memory_budget_gib);
    return point;
}

// The paper's model with one mechanism at each length, a table row for each; a length
// the budgets rule out is recorded with the reason instead of a time.
void sweep_paper_lengths(const Options& options, Mechanism mechanism, bool causal,
                         std::map<int64_t, Point>& points) {
    int64_t previous = 0;  // the last length tried
    for (int64_t L : paper_lengths(options)) {
        models::ModelConfig config = paper_config(mechanism, causal, L);
        config.attention.recompute = options.recompute;
        Point point;
        if (previous) point.status = paper_skip_reason(options, config, previous, points[previous]);
        if (point.status.empty()) {
            point = run_paper_length(options, config);
            previous = L;
        }
        points[L] = point;
        fmt::print("{:<9} {:<6} {:>6} {:>10.3f} {:>10.0f} {:>10.0f} {:>10.1f}  {}\n",
                   mechanism_name(mechanism), causal ? "causal" : "bidir", L, point.seconds,
                   point.peak_mib, point.peak_rss_mib, point.gflop, point.status);
        std::fflush(stdout);
    }
}

// The table for docs/speed.md: seconds and peak tensor memory of every mechanism and
// mode at every length, or why it did not run.
void print_paper_table(const Results& results, const std::vector<int64_t>& lengths) {
    std::string header = "\n| fwd + bwd, 6-layer model |", rule = "|---|";
    for (int64_t L : lengths) header += fmt::format(" L = {} |", L), rule += "---|";
    fmt::print("{}\n{}\n", header, rule);
    for (auto& [key, points] : results) {
        std::string row = fmt::format("| {} {} |", mechanism_name(key.first),
                                      key.second ? "causal" : "bidir");
        for (int64_t L : lengths) {
            Point p = point_at(results, key.first, key.second, L);
            bool ran = !std::isnan(p.seconds);
            row += ran ? fmt::format(" {:.3g} s, {:.3g} GiB |", p.seconds, p.peak_mib / 1024)
                       : fmt::format(" {} |", p.status.substr(0, p.status.find(':')));
        }
        fmt::print("{}\n", row);
    }
}

// The longest length at which (mechanism, causal) ran within the budget; 0 if none.
int64_t longest_within_budget(const Results& results, Mechanism mechanism, bool causal) {
    int64_t longest = 0;
    auto points = results.find({mechanism, causal});
    if (points != results.end())
        for (auto& [L, p] : points->second)
            if (p.status == "ok") longest = L;
    return longest;
}

// Adds key = time of `a` / time of `b` at L = 8192 (mode `causal`); if either did not
// run, the ratio is NaN and a note says why.
void add_paper_ratio(ResultLine& result, const std::string& key, const Results& results,
                     Mechanism a, Mechanism b, bool causal) {
    Point pa = point_at(results, a, causal, 8192), pb = point_at(results, b, causal, 8192);
    result.add(key, pa.seconds / pb.seconds);
    std::vector<std::string> missing;
    for (auto [mechanism, p] : {std::pair{a, pa}, std::pair{b, pb}})
        if (std::isnan(p.seconds))
            missing.push_back(fmt::format("{} {} {}", mechanism_name(mechanism),
                                          causal ? "causal" : "bidir",
                                          p.status.empty() ? "not in this run" : p.status));
    if (!missing.empty())
        fmt::print("note: {} is nan: at L = 8192, {}\n", key, fmt::join(missing, "; "));
}

// The goals: ratios at L = 8192 and the longest lengths within the budget (--recompute:
// FAVOR+'s lengths alone).
void print_paper_result(const Results& results, bool recompute) {
    ResultLine result;
    fmt::print("\n");
    if (recompute) {
        for (bool causal : {false, true})
            result.add(fmt::format("paper_max_length_favor_recompute{}", causal ? "_causal" : ""),
                       longest_within_budget(results, Mechanism::Favor, causal));
    } else {
        for (auto [a, b] : {std::pair{Mechanism::Favor, Mechanism::Identity},
                            std::pair{Mechanism::Softmax, Mechanism::Favor}})
            for (bool causal : {false, true})
                add_paper_ratio(result, fmt::format("paper_{}_vs_{}{}_8192", mechanism_name(a),
                                                    mechanism_name(b), causal ? "_causal" : ""),
                                results, a, b, causal);
        for (Mechanism mechanism : {Mechanism::Favor, Mechanism::Softmax})
            for (bool causal : {false, true})
                result.add(fmt::format("paper_max_length_{}{}", mechanism_name(mechanism),
                                       causal ? "_causal" : ""),
                           longest_within_budget(results, mechanism, causal));
    }
    result.add("threads", int64_t(num_threads()));
    result.print();
}

// The paper's Figure 3 (--paper): its whole model with softmax, favor and identity
// attention, bidirectional and causal, over the lengths; a CSV, a plot, a table, ratios.
int paper_bench(const Options& options) {
    fmt::print("the paper's model: 6 layers, D 512, 8 heads, ff 2048, vocab 256, m = 256, "
               "batch 1, {} threads{}\n", num_threads(),
               options.recompute ? "; attention recomputed in backward" : "");
    fmt::print("budgets: {:g} GiB of tensors, {:.0f} MiB of memory (0.75 x MemTotal); a "
               "mechanism stops after a step over {:g} s\n\n", options.memory_budget_gib,
               0.75 * memory_total_mib(), options.time_budget_s);
    fmt::print("{:<9} {:<6} {:>6} {:>10} {:>10} {:>10} {:>10}  {}\n", "attention", "mode", "L",
               "fwd+bwd s", "peak MiB", "RSS MiB", "GEMM GFLOP", "status");
    std::vector<Mechanism> mechanisms{Mechanism::Softmax, Mechanism::Favor, Mechanism::Identity};
    if (options.recompute) mechanisms = {Mechanism::Favor};
    Results results = sweep_mechanisms(options, mechanisms, sweep_paper_lengths);
    std::string out = options.out;
    if (out.empty())
        out = options.recompute ? "results/bench_paper_recompute.csv" : "results/bench_paper.csv";
    write_sweep(out, results, true);
    print_paper_table(results, paper_lengths(options));
    print_paper_result(results, options.recompute);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Attention speed and memory vs sequence length: one layer, or the paper's whole "
                 "model (--paper, its Figure 3)", "bench"};
    Options o;
    app.add_flag("--quick", o.quick, "smaller sizes and fewer repetitions: a smoke run");
    auto paper = app.add_flag("--paper", o.paper, "the paper's 6-layer model instead of one layer");
    app.add_flag("--recompute", o.recompute, "paper: FAVOR+ alone, its attention recomputed in "
                 "backward (less memory, more time)")->needs(paper);
    app.add_option("--max-length", o.max_length, "longest sequence")->check(positive());
    app.add_option("--memory-budget", o.memory_budget_gib, "GiB of tensors one step may use")
        ->check(positive());
    app.add_option("--time-budget", o.time_budget_s, "seconds one forward+backward may take")
        ->check(positive());
    app.add_option("--out", o.out, "CSV file (default results/bench_attention.csv, --paper: "
                   "results/bench_paper.csv); the PNG plot is written beside it")
        ->check(output_file());
    add_threads_option(app);
    return run_program(app, argc, argv, [&] {
        fmt::print("{}\n", blas_kernel_line());
        return o.paper ? paper_bench(o) : attention_sweep(o);
    });
}
