// bench.cpp — the paper's speed figure, and the speed of whole models.
//
//   build/bench [--quick] [--max-length 65536] [--out results/bench_attention.csv]
//   build/bench --paper [--quick] [--memory-budget 16]   # Figure 3: the paper's 6-layer model
//   build/bench --paper --recompute      # FAVOR+ alone, attention recomputed in backward
//   build/bench --model [--attention favor]              # a training step, MFU, decoding
//   build/bench --model --task image                     # 64x64x3 images: L = 12288
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
#include "models/evaluate.h"
#include "models/generate.h"
#include "nn/attention.h"
#include "nn/optim.h"
#include "tools/bench/thread_scaling.h"
#include "tools/util/blas_kernel.h"
#include "tools/util/cli.h"
#include "tools/util/csv.h"
#include "tools/util/plot.h"
#include "tools/util/result.h"
#include "tools/util/timing.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>
#include <tuple>

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
    bool quick = false, model = false, paper = false, recompute = false;
    int64_t max_length = 65536;
    double memory_budget_gib = 16, time_budget_s = 60;
    std::string out;  // default: results/bench_attention.csv, or bench_paper.csv (--paper)
    std::string task = "text", attention = "favor";
    int64_t dim = 256, layers = 0, steps = 0;
    std::string thread_counts;  // model: "1,2,16"; empty: 1, 2, 4, ... the cores
    bool scaling_only = false;
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

// Every mechanism over the lengths, bidirectional and then causal (linformer cannot be).
Results sweep_mechanisms(const Options& options) {
    const std::vector<Mechanism> mechanisms = {Mechanism::Softmax,   Mechanism::Favor,
                                               Mechanism::Relu,      Mechanism::Identity,
                                               Mechanism::Linformer, Mechanism::Reformer};
    Results results;
    for (bool causal : {false, true})
        for (Mechanism mechanism : mechanisms)
            if (!(causal && mechanism == Mechanism::Linformer))
                sweep_lengths(options, mechanism, causal, results[{mechanism, causal}]);
    release_cached_buffers();
    return results;
}

// The CSV columns of a sweep, and one row's fields in them.
const std::vector<std::string> sweep_columns = {"attention", "mode",     "length",
                                                "seconds",   "peak_mib", "gemm_gflop"};
std::vector<std::string> sweep_fields(Mechanism mechanism, bool causal, int64_t L, const Point& p) {
    return {mechanism_name(mechanism), causal ? "causal" : "bidirectional", std::to_string(L),
            fmt::format("{:.6g}", p.seconds), fmt::format("{:.6g}", p.peak_mib),
            fmt::format("{:.6g}", p.gflop)};
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

// Writes the CSV, and the PNG beside it.
void write_sweep(const std::string& out, const Results& results) {
    CsvWriter csv(out, sweep_columns);
    for (auto& [key, points] : results)
        for (auto& [L, p] : points) csv.row(sweep_fields(key.first, key.second, L, p));
    plot_sweep(out, results, "");
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
    Results results = sweep_mechanisms(options);
    write_sweep(options.out.empty() ? "results/bench_attention.csv" : options.out, results);
    print_sweep_result(results);
    return 0;
}


// ---- whole models -------------------------------------------------------------------------

// The machine's memory in MiB (MemTotal in /proc/meminfo; 0 if unknown).
double memory_total_mib() {
    std::ifstream meminfo("/proc/meminfo");
    std::string key;
    double kib = 0;
    while (meminfo >> key >> kib)
        if (key == "MemTotal:") return kib / 1024;
    return 0;
}

// `count` tokens drawn uniformly from the vocabulary.
std::vector<int32_t> random_tokens(int64_t count, int64_t vocab, Generator& gen) {
    std::vector<int32_t> tokens(count);
    for (auto& t : tokens) t = int32_t(gen.below(uint64_t(vocab)));
    return tokens;
}

struct StepTiming {
    double seconds = NAN, flops = NAN, peak_rss_mib = NAN;
    std::vector<blas::GemmShape> products;  // the matrix products of one step
};

// One full training step (forward, cross-entropy, backward, clipping, AdamW) of a model
// on random tokens, ready to run again and again.
struct TrainingStep {
    Generator init{1}, dropout{2}, gen{3};
    models::SequenceModel model;
    nn::AdamW optimizer;
    int64_t batch, length;
    std::vector<int32_t> inputs, targets;
    TrainingStep(const models::ModelConfig& config, int64_t batch, int64_t length)
        : model(config, init, dropout), optimizer(model.named_parameters(), 1e-4f), batch(batch),
          length(length), inputs(random_tokens(batch * length, config.vocab, gen)),
          targets(random_tokens(batch * length, config.vocab, gen)) {}
    void operator()() {
        Tensor loss = models::batch_loss(model.forward(inputs, batch, length), targets);
        optimizer.zero_grad();
        loss.backward();
        nn::clip_grad_norm(model.parameters(), 1.0f);
        optimizer.step();
    }
};

// Times `steps` training steps after one warm-up step.
StepTiming time_training_steps(const models::ModelConfig& config, int64_t batch, int64_t length,
                               int steps) {
    TrainingStep step(config, batch, length);
    StepTiming t;
    blas::set_shape_log(&t.products);
    step();
    blas::set_shape_log(nullptr);
    reset_peak_rss();
    blas::reset_flop_count();
    double start = now_seconds();
    for (int i = 0; i < steps; ++i) step();
    t.seconds = (now_seconds() - start) / steps;
    t.flops = double(blas::flop_count()) / steps;
    t.peak_rss_mib = peak_rss_mib();
    return t;
}

// Seconds the products of `shapes` take alone, one after another (the best of 3), on
// random matrices: what a step would take if it did nothing but its GEMMs.
double time_products_alone(const std::vector<blas::GemmShape>& shapes) {
    int64_t a_size = 0, b_size = 0, c_size = 0;
    for (const blas::GemmShape& p : shapes) {
        a_size = std::max(a_size, p.batch * p.M * p.K);
        b_size = std::max(b_size, p.batch * p.K * p.N);
        c_size = std::max(c_size, p.batch * p.M * p.N);
    }
    Generator gen(5);
    Tensor a = Tensor::randn({a_size}, gen), b = Tensor::randn({b_size}, gen), c = Tensor::zeros({c_size});
    double best = INFINITY;
    for (int round = 0; round < 3; ++round) {
        double start = now_seconds();
        for (const blas::GemmShape& p : shapes) {
            const int64_t lda = p.trans_a ? p.M : p.K, ldb = p.trans_b ? p.K : p.N;
            blas::gemm_batched(p.batch, p.trans_a, p.trans_b, p.M, p.N, p.K, 1.0f, a.data(), lda,
                               p.M * p.K, b.data(), ldb, p.K * p.N, 0.0f, c.mutable_data(), p.N,
                               p.M * p.N);
        }
        best = std::min(best, now_seconds() - start);
    }
    return best;
}

// The shapes whose products take the most time alone, with their rate: where the step's
// GEMMs lose against one large GEMM.
void print_slowest_products(const std::vector<blas::GemmShape>& shapes, double peak_gflops) {
    std::map<std::tuple<bool, bool, int64_t, int64_t, int64_t, int64_t>, int64_t> counts;
    for (const blas::GemmShape& p : shapes) counts[{p.trans_a, p.trans_b, p.M, p.N, p.K, p.batch}]++;
    std::vector<std::pair<double, std::string>> rows;
    for (auto& [key, count] : counts) {
        auto [ta, tb, M, N, K, batch] = key;
        double seconds = time_products_alone({blas::GemmShape{ta, tb, M, N, K, batch}}) * double(count);
        double gflops = 2.0 * double(M * N * K * batch * count) / seconds / 1e9;
        rows.push_back({seconds, fmt::format("    {:>5} x {:>3}x({}{} x {} x {}){}: {:.1f} ms, {:.2f} of peak",
                                             count, batch, M, ta ? "^T" : "", N, K, tb ? " B^T" : "",
                                             seconds * 1e3, gflops / peak_gflops)});
    }
    std::sort(rows.rbegin(), rows.rend());
    fmt::print("  the products that take longest alone (count x batch x (M x N x K)):\n");
    for (size_t i = 0; i < std::min<size_t>(8, rows.size()); ++i) fmt::print("{}\n", rows[i].second);
}

// The rate of one large product, 1024 x 1024 x 1024, as the model's products run
// (blas::gemm over the thread pool), in GFLOP/s: the machine's peak for this code.
double large_gemm_gflops() {
    Generator gen(6);
    Tensor a = Tensor::randn({1024, 1024}, gen), b = Tensor::randn({1024, 1024}, gen),
           c = Tensor::empty({1024, 1024});
    double seconds = median_seconds(10, [&] {
        blas::gemm(false, false, 1024, 1024, 1024, 1.0f, a.data(), 1024, b.data(), 1024, 0.0f,
                   c.mutable_data(), 1024);
    });
    return 2.0 * 1024 * 1024 * 1024 / seconds / 1e9;
}

// Seconds to generate `count` tokens after one start token: recurrent decoding, then
// a full forward over the whole prefix for every token.
std::pair<double, double> time_generation(const models::ModelConfig& config, int64_t count) {
    Generator init(1), dropout(2), a(3), b(3);
    models::SequenceModel model(config, init, dropout);
    model.eval();
    double start = now_seconds();
    models::generate(model, {{0}}, count, 1.0f, a);
    double recurrent = now_seconds() - start;
    start = now_seconds();
    models::generate_by_full_forward(model, {0}, count, 1.0f, b);
    return {recurrent, now_seconds() - start};
}

// The same training steps with exact softmax attention, for comparison.
StepTiming time_softmax_steps(const models::ModelConfig& config, int64_t batch, int64_t length,
                              int steps) {
    models::ModelConfig softmax_config = config;
    softmax_config.attention.mechanism = nn::Mechanism::Softmax;
    return time_training_steps(softmax_config, batch, length, steps);
}

// The raw GEMM rate of this machine in GFLOP/s: (8192 x 256) (256 x 1024), OpenBLAS's threads.
double sgemm_gflops() {
    Generator gen(4);
    Tensor a = Tensor::randn({8192, 256}, gen), b = Tensor::randn({256, 1024}, gen),
           c = Tensor::empty({8192, 1024});
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    double sgemm_s = median_seconds(10, [&] {
        blas::gemm_openblas_threaded(false, false, 8192, 1024, 256, 1.0f, a.data(), 256,
                                     b.data(), 1024, 0.0f, c.mutable_data(), 1024);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // OpenBLAS's workers sleep
    return 2.0 * 8192 * 1024 * 256 / sgemm_s / 1e9;
}

// The model's settings from the flags; the task sets vocab and length.
models::ModelConfig bench_config(const Options& options, bool image) {
    models::ModelConfig config;
    config.attention.dim = options.dim;
    config.attention.heads = 4;
    config.attention.features = 128;
    config.attention.mechanism = nn::parse_mechanism(options.attention);
    config.ff = 4 * options.dim;
    config.layers = options.layers ? options.layers : (image ? 6 : 4);
    return config;
}

// The step's matmul rate against one large GEMM's (step_vs_peak), and the ceiling: the
// rate of the step's own products timed alone. What is between them is the time the
// step spends outside GEMMs.
void report_step_vs_peak(const StepTiming& step, ResultLine& result) {
    const double peak = large_gemm_gflops(), alone_s = time_products_alone(step.products);
    const double step_gflops = step.flops / step.seconds / 1e9, alone_gflops = step.flops / alone_s / 1e9;
    fmt::print("  gemm 1024^3: {:.1f} GFLOP/s; the step's matmuls {:.1f} GFLOP/s ({:.2f} of it); "
               "its {} products alone {:.1f} GFLOP/s ({:.2f}), {:.0f}% of the step\n",
               peak, step_gflops, step_gflops / peak, step.products.size(), alone_gflops,
               alone_gflops / peak, 100 * alone_s / step.seconds);
    print_slowest_products(step.products, peak);
    result.add("gemm_1024_gflops", peak)
        .add("step_vs_peak", step_gflops / peak)
        .add("products_alone_vs_peak", alone_gflops / peak)
        .add("products_share_of_step", alone_s / step.seconds);
}

// The step over thread counts (tokens/s, speedup, efficiency), the pieces each op offers
// on one thread, and the speedups Amdahl's law predicts from them (tools/bench/thread_scaling.h).
// Speedups are over 2 threads (our machines' count), or over the fewest threads run.
void thread_scaling_bench(const Options& options, const models::ModelConfig& config,
                          int64_t batch, int64_t length, int steps, ResultLine& result) {
    const std::vector<int> counts = bench::thread_counts(options.thread_counts);
    TrainingStep step(config, batch, length);
    const std::vector<double> seconds = bench::time_over_threads(std::ref(step), counts, steps);
    const bench::PiecesProfile profile = bench::profile_pieces(std::ref(step));
    const bench::PiecesProfile many = bench::profile_pieces(std::ref(step), *std::max_element(counts.begin(), counts.end()));
    auto at = [&](int threads) {
        auto it = std::find(counts.begin(), counts.end(), threads);
        return it == counts.end() ? NAN : seconds[size_t(it - counts.begin())];
    };
    const int base = std::isnan(at(2)) ? *std::min_element(counts.begin(), counts.end()) : 2;
    // Efficiency: the speedup over `base` threads per thread added, base x speedup / T.
    fmt::print("  threads  tokens/s  speedup over 1  over {}  efficiency  Amdahl's over {}\n", base, base);
    for (size_t i = 0; i < counts.size(); ++i) {
        const int T = counts[i];
        const double over_base = at(base) / seconds[i];
        const std::string over_one = std::isnan(at(1)) ? "-" : fmt::format("{:.2f}", at(1) / seconds[i]);
        fmt::print("  {:>7}  {:>8.0f}  {:>14}  {:>7.2f}  {:>10.2f}  {:>14.2f}\n", T,
                   double(batch * length) / seconds[i], over_one, over_base, over_base * base / T,
                   profile.predicted_seconds(base) / profile.predicted_seconds(T));
        if (std::find(counts.begin(), counts.begin() + long(i), T) != counts.begin() + long(i))
            continue;  // a count listed twice (to see the noise) gives its keys once
        result.add(fmt::format("speedup_{}", T), over_base);
        result.add(fmt::format("tokens_per_s_{}", T), double(batch * length) / seconds[i]);
    }
    bench::print_pieces_table(profile, many, 14);
    for (int T : {16, 64}) {
        const double predicted = profile.predicted_seconds(base) / profile.predicted_seconds(T);
        fmt::print("  Amdahl's law: {} threads {:.2f}x faster than {}\n", T, predicted, base);
        result.add(fmt::format("predicted_speedup_{}", T), predicted);
    }
    result.add("serial_share", profile.serial_seconds() / profile.step_seconds);
}

// Text: a training step of the reference configuration (vocab 256, D 256, 4 layers, 4
// heads, ff 1024, L 1024, batch 8: 8192 tokens a step), its share of the machine's GEMM
// rate, the same with softmax attention, and decoding a 1024-byte passage.
void text_model_bench(const Options& options, models::ModelConfig config, ResultLine& result) {
    const int64_t batch = options.quick ? 2 : 8, length = options.quick ? 256 : 1024;
    const int steps = int(options.steps ? options.steps : (options.quick ? 2 : 5));
    config.vocab = 256;
    config.attention.max_length = length;
    fmt::print("training step: vocab 256, D {}, {} layers, {} heads, ff {}, L {}, batch {}\n",
               config.attention.dim, config.layers, config.attention.heads, config.ff, length, batch);
    result.add("blas_core", blas::core_name());
    thread_scaling_bench(options, config, batch, length, steps, result);
    if (options.scaling_only) return;
    StepTiming first = time_training_steps(config, batch, length, steps);
    double tokens_per_s = double(batch * length) / first.seconds;
    double model_gflops = first.flops / first.seconds / 1e9;
    fmt::print("  {:<8} {:.3f} s a step, {:.0f} tokens/s, {:.1f} GFLOP/s in matmuls "
               "({:.1f} GFLOP a step), peak RSS {:.0f} MiB\n",
               options.attention, first.seconds, tokens_per_s, model_gflops, first.flops / 1e9,
               first.peak_rss_mib);
    double machine_gflops = sgemm_gflops();
    fmt::print("  cblas_sgemm (8192x256)(256x1024): {:.1f} GFLOP/s\n", machine_gflops);
    report_step_vs_peak(first, result);
    result.add("tokens_per_s", tokens_per_s)
        .add("model_gflops", model_gflops)
        .add("sgemm_gflops", machine_gflops)
        .add("mfu", model_gflops / machine_gflops)
        .add("peak_rss_mib", first.peak_rss_mib);
    if (config.attention.mechanism != nn::Mechanism::Softmax) {
        StepTiming s = time_softmax_steps(config, batch, length, steps);
        fmt::print("  {:<8} {:.3f} s a step, {:.0f} tokens/s, {:.1f} GFLOP/s in matmuls\n",
                   "softmax", s.seconds, double(batch * length) / s.seconds,
                   s.flops / s.seconds / 1e9);
        result.add("softmax_tokens_per_s", double(batch * length) / s.seconds);
    }
    auto [recurrent, full] = time_generation(config, length - 1);
    fmt::print("generating {} bytes: recurrent {:.2f} s, full forward per byte {:.2f} s: {:.1f}x\n",
               length, recurrent, full, full / recurrent);
    result.add("recurrent_speedup", full / recurrent);
}

// MiB of one (H, L, L) attention matrix of softmax.
double attention_matrix_mib(const models::ModelConfig& config, int64_t length) {
    return double(config.attention.heads) * double(length) * double(length) * 4 / (1 << 20);
}

// MiB of softmax's attention matrices at a training step's peak: each layer keeps its
// probabilities for backward, and the last layer's backward adds two more (the
// gradients of the probabilities and of the scores).
double softmax_matrices_mib(const models::ModelConfig& config, int64_t length) {
    return double(config.layers + 2) * attention_matrix_mib(config, length);
}

// Images: the step with softmax attention if it fits in memory (given `favor`, the step
// with the mechanism timed first), else how much memory it would need.
void image_softmax_step(const models::ModelConfig& config, int64_t length, int steps,
                        const StepTiming& favor, ResultLine& result) {
    double matrix_mib = attention_matrix_mib(config, length);
    double needs_mib = favor.peak_rss_mib + softmax_matrices_mib(config, length);
    double available_mib = 0.75 * memory_total_mib();
    if (needs_mib > available_mib) {
        fmt::print("  softmax  would need ~{:.0f} MiB ({} layers x {:.0f} MiB attention "
                   "matrices, and more for backward): more than the {:.0f} MiB available; "
                   "not run\n", needs_mib, config.layers, matrix_mib, available_mib);
        result.add(fmt::format("softmax_needs_mib_{}", length), needs_mib);
    } else {
        StepTiming s = time_softmax_steps(config, 1, length, steps);
        fmt::print("  softmax  {:.2f} s a step, peak RSS {:.0f} MiB\n", s.seconds, s.peak_rss_mib);
        result.add(fmt::format("softmax_step_s_{}", length), s.seconds);
        result.add(fmt::format("softmax_peak_rss_mib_{}", length), s.peak_rss_mib);
    }
}

// Images: a training step at ImageNet64's true sequence length (64 x 64 x 3 = 12288
// intensities, batch 1), the same with softmax if it fits, and generating a 28 x 28
// image (784 pixels) with the same blocks.
void image_model_bench(const Options& options, models::ModelConfig config, ResultLine& result) {
    const int64_t side = options.quick ? 16 : 64, length = side * side * 3;
    const int steps = int(options.steps ? options.steps : 1);
    config.vocab = 257;
    config.attention.max_length = length;
    config.image_height = config.image_width = side;
    config.image_channels = 3;
    fmt::print("training step on {}x{}x3 images (L = {}), batch 1: D {}, {} layers, {} heads\n",
               side, side, length, config.attention.dim, config.layers, config.attention.heads);
    StepTiming favor = time_training_steps(config, 1, length, steps);
    fmt::print("  {:<8} {:.2f} s a step, peak RSS {:.0f} MiB\n", options.attention,
               favor.seconds, favor.peak_rss_mib);
    std::string key = fmt::format("{}_", options.attention);
    result.add(key + fmt::format("step_s_{}", length), favor.seconds);
    result.add(key + fmt::format("peak_rss_mib_{}", length), favor.peak_rss_mib);
    report_step_vs_peak(favor, result);
    if (config.attention.mechanism != nn::Mechanism::Softmax)
        image_softmax_step(config, length, steps, favor, result);
    models::ModelConfig small = config;
    small.image_height = small.image_width = 28;
    small.image_channels = 1;
    small.attention.max_length = 784;
    auto [recurrent, full] = time_generation(small, options.quick ? 196 : 783);
    fmt::print("generating a 28x28 image: recurrent {:.2f} s, full forward per pixel {:.2f} s: "
               "{:.1f}x\n", recurrent, full, full / recurrent);
    result.add("recurrent_speedup", full / recurrent);
}

// Whole models (--model): a training step, its speed against the machine's, and decoding.
int model_bench(const Options& options) {
    const bool image = options.task == "image";
    models::ModelConfig config = bench_config(options, image);
    ResultLine result;
    fmt::print("{} threads\n", num_threads());
    if (!image)
        text_model_bench(options, config, result);
    else
        image_model_bench(options, config, result);
    result.add("threads", int64_t(num_threads()));
    result.print();
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
    const int64_t L = config.attention.max_length;
    Generator init(1), dropout(2), gen(3);
    models::SequenceModel model(config, init, dropout);
    std::vector<int32_t> inputs = random_tokens(L, config.vocab, gen);
    std::vector<int32_t> targets = random_tokens(L, config.vocab, gen);
    Storage::reset_peak();
    reset_peak_rss();
    blas::reset_flop_count();
    Point point;
    point.status = "ok";
    point.seconds = median_seconds(reps, [&] {
        model.zero_grad();
        models::batch_loss(model.forward(inputs, 1, L), targets).backward();
    });
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
        quadratic = std::min(measured_mib, softmax_matrices_mib(config, L));
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

// Writes the CSV (the sweep's columns, peak RSS and status), and the PNG beside it.
void write_paper(const std::string& out, const Results& results) {
    std::vector<std::string> columns = sweep_columns;
    columns.insert(columns.end(), {"peak_rss_mib", "status"});
    CsvWriter csv(out, columns);
    for (auto& [key, points] : results)
        for (auto& [L, p] : points) {
            std::vector<std::string> fields = sweep_fields(key.first, key.second, L, p);
            fields.insert(fields.end(), {fmt::format("{:.6g}", p.peak_rss_mib), p.status});
            csv.row(fields);
        }
    plot_sweep(out, results, "6-layer model: ");
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
        result.add("threads", int64_t(num_threads()));
        result.print();
        return;
    }
    add_paper_ratio(result, "paper_favor_vs_identity_8192", results, Mechanism::Favor,
                    Mechanism::Identity, false);
    add_paper_ratio(result, "paper_favor_vs_identity_causal_8192", results, Mechanism::Favor,
                    Mechanism::Identity, true);
    add_paper_ratio(result, "paper_softmax_vs_favor_8192", results, Mechanism::Softmax,
                    Mechanism::Favor, false);
    add_paper_ratio(result, "paper_softmax_vs_favor_causal_8192", results, Mechanism::Softmax,
                    Mechanism::Favor, true);
    for (Mechanism mechanism : {Mechanism::Favor, Mechanism::Softmax})
        for (bool causal : {false, true})
            result.add(fmt::format("paper_max_length_{}{}", mechanism_name(mechanism),
                                   causal ? "_causal" : ""),
                       longest_within_budget(results, mechanism, causal));
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
    Results results;
    std::vector<Mechanism> mechanisms{Mechanism::Softmax, Mechanism::Favor, Mechanism::Identity};
    if (options.recompute) mechanisms = {Mechanism::Favor};
    for (bool causal : {false, true})
        for (Mechanism mechanism : mechanisms)
            sweep_paper_lengths(options, mechanism, causal, results[{mechanism, causal}]);
    std::string out = options.out;
    if (out.empty())
        out = options.recompute ? "results/bench_paper_recompute.csv" : "results/bench_paper.csv";
    write_paper(out, results);
    print_paper_table(results, paper_lengths(options));
    print_paper_result(results, options.recompute);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Attention speed and memory vs sequence length: one layer, or the paper's whole "
                 "model (--paper, its Figure 3); and whole models' training and decoding speed "
                 "(--model)", "bench"};
    Options o;
    app.add_flag("--quick", o.quick, "smaller sizes and fewer repetitions: a smoke run");
    auto paper = app.add_flag("--paper", o.paper, "the paper's 6-layer model instead of one layer");
    app.add_flag("--recompute", o.recompute, "paper: FAVOR+ alone, its attention recomputed in "
                 "backward (less memory, more time)")->needs(paper);
    app.add_option("--max-length", o.max_length, "attention, paper: longest sequence")
        ->check(positive());
    app.add_option("--memory-budget", o.memory_budget_gib,
                   "attention, paper: GiB of tensors one step may use")->check(positive());
    app.add_option("--time-budget", o.time_budget_s,
                   "attention, paper: seconds one forward+backward may take")->check(positive());
    app.add_option("--out", o.out, "attention, paper: CSV file (default results/bench_attention"
                   ".csv, --paper: results/bench_paper.csv); the PNG plot is written beside it")
        ->check(output_file());
    app.add_flag("--model", o.model, "time whole models instead of one attention layer")
        ->excludes(paper);
    app.add_option("--task", o.task, "model: text (L = 1024) or image (L = 64*64*3)")
        ->check(CLI::IsMember({"text", "image"}));
    app.add_option("--attention", o.attention, "model: the mechanism timed first")
        ->check(CLI::IsMember({"softmax", "favor", "relu", "identity", "reformer"}));
    app.add_option("--dim", o.dim, "model: width D")->check(positive());
    app.add_option("--layers", o.layers, "model: blocks (default 4 for text, 6 for image)")
        ->check(positive());
    app.add_option("--steps", o.steps, "model: timed training steps")->check(positive());
    app.add_option("--thread-counts", o.thread_counts, "model: the thread counts of the scaling "
                   "table, e.g. 1,2,4,16 (default: 1, 2, 4, ... up to the cores)");
    app.add_flag("--scaling", o.scaling_only, "model: the scaling table and the pieces analysis "
                 "alone (text)");
    add_threads_option(app);
    return run_program(app, argc, argv, [&] {
        fmt::print("{}\n", blas_kernel_line());
        return o.model ? model_bench(o) : o.paper ? paper_bench(o) : attention_sweep(o);
    });
}
