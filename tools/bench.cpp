// bench.cpp — the paper's speed figure: attention forward + backward time and memory
// against sequence length.
//
//   build/bench [--quick] [--max-length 65536] [--out results/bench_attention.csv]
//
// One attention layer (projections included) with batch 1, 4 heads of width 64
// (D = 256) and m = 128 random features, for softmax, favor, relu and identity
// ("X (OPT)": no attention at all, the speed limit), bidirectional and causal, at
// L = 256, 512, ..., 65536. Each mechanism stops before the first length whose time or
// memory, extrapolated from the last two lengths, would exceed the budgets printed at
// the start. Memory is the peak of bytes held by tensors during the step, measured by
// the engine's allocator (exact and unaffected by other processes). Writes a CSV and a
// PNG (log-log time vs L and memory vs L) and ends with a `result:` line of ratios.
#include "engine/allocator.h"
#include "engine/ops.h"
#include "engine/thread_pool.h"
#include "nn/attention.h"
#include "tools/util/cli.h"
#include "tools/util/csv.h"
#include "tools/util/plot.h"
#include "tools/util/result.h"
#include "tools/util/timing.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <map>

using namespace pf;
using namespace pf::nn;

namespace {

struct Point {
    double seconds = NAN, peak_mib = NAN;
};

// One forward + backward of the layer; returns the peak tensor memory in MiB above
// what was live before.
double step(MultiHeadAttention& attention, Tensor x) {
    x.zero_grad();
    attention.zero_grad();
    int64_t before = Storage::live_bytes();
    Storage::reset_peak();
    {
        Tensor y = attention.forward(x);
        y.backward(Tensor::ones(y.shape()));
    }
    return double(Storage::peak_bytes() - before) / (1 << 20);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Attention speed and memory vs sequence length (Performer, Fig. 1)", "bench"};
    bool quick = false;
    int64_t max_length = 65536;
    double memory_budget_gib = 16, time_budget_s = 60;
    std::string out = "results/bench_attention.csv";
    app.add_flag("--quick", quick, "lengths up to 4096, fewer repetitions: a smoke run");
    app.add_option("--max-length", max_length, "longest sequence")->check(CLI::PositiveNumber);
    app.add_option("--memory-budget", memory_budget_gib, "GiB of tensors one step may use");
    app.add_option("--time-budget", time_budget_s, "seconds one forward+backward may take");
    app.add_option("--out", out, "CSV file; the PNG plot is written beside it");
    add_threads_option(app);
    return run_program(app, argc, argv, [&] {
        if (quick) max_length = std::min<int64_t>(max_length, 4096);
        const std::vector<Mechanism> mechanisms = {Mechanism::Softmax, Mechanism::Favor,
                                                   Mechanism::Relu, Mechanism::Identity};
        fmt::print("attention layer: batch 1, 4 heads x 64, m = 128, {} threads\n", num_threads());
        fmt::print("budgets: {:.0f} GiB of tensors, {:.0f} s per forward+backward\n\n",
                   memory_budget_gib, time_budget_s);
        fmt::print("{:<9} {:<6} {:>7} {:>12} {:>12}\n", "attention", "mode", "L", "fwd+bwd ms",
                   "peak MiB");

        // results[(mechanism, causal)][L]
        std::map<std::pair<Mechanism, bool>, std::map<int64_t, Point>> results;
        for (bool causal : {false, true}) {
            for (Mechanism mechanism : mechanisms) {
                AttentionConfig config;
                config.dim = 256;
                config.heads = 4;
                config.mechanism = mechanism;
                config.causal = causal;
                config.features = 128;
                Generator gen(1);
                MultiHeadAttention attention(config, gen);
                auto& points = results[{mechanism, causal}];
                int64_t previous = 0, before_previous = 0;
                for (int64_t L = 256; L <= max_length; L *= 2) {
                    // Extrapolate from the last two lengths (at least linear growth).
                    if (previous && before_previous) {
                        const Point &p = points[previous], &pp = points[before_previous];
                        double time_growth = std::max(2.0, p.seconds / pp.seconds);
                        double memory_growth = std::max(2.0, p.peak_mib / pp.peak_mib);
                        double next_time = p.seconds * time_growth;
                        double next_memory = p.peak_mib * memory_growth / 1024;
                        if (next_time > time_budget_s || next_memory > memory_budget_gib) {
                            fmt::print("{:<9} {:<6} {:>7} stops: would need ~{:.0f} s and ~{:.1f} GiB\n",
                                       mechanism_name(mechanism), causal ? "causal" : "bidir", L,
                                       next_time, next_memory);
                            break;
                        }
                    }
                    release_cached_buffers();  // measure each length from a clean slate
                    Tensor x = Tensor::randn({1, L, 256}, gen).requires_grad_();
                    Point point;
                    point.peak_mib = step(attention, x);  // also the warm-up
                    int reps = quick ? 2 : (L <= 4096 ? 5 : L <= 16384 ? 3 : 1);
                    point.seconds = median_seconds(reps, [&] { step(attention, x); });
                    x.zero_grad();
                    points[L] = point;
                    fmt::print("{:<9} {:<6} {:>7} {:>12.1f} {:>12.1f}\n", mechanism_name(mechanism),
                               causal ? "causal" : "bidir", L, point.seconds * 1e3, point.peak_mib);
                    before_previous = previous;
                    previous = L;
                }
            }
        }
        release_cached_buffers();

        // CSV and plot.
        std::filesystem::path csv_path(out);
        if (csv_path.has_parent_path()) std::filesystem::create_directories(csv_path.parent_path());
        CsvWriter csv(out, {"attention", "mode", "length", "seconds", "peak_mib"});
        PlotSpec time_plot, memory_plot;
        time_plot.title = "forward + backward time";
        time_plot.xlabel = memory_plot.xlabel = "sequence length L";
        time_plot.ylabel = "seconds";
        memory_plot.title = "peak tensor memory";
        memory_plot.ylabel = "MiB";
        time_plot.log_x = time_plot.log_y = memory_plot.log_x = memory_plot.log_y = true;
        for (auto& [key, points] : results) {
            std::string name = mechanism_name(key.first) + (key.second ? " causal" : " bidir");
            Series time_series{name, {}, {}}, memory_series{name, {}, {}};
            for (auto& [L, p] : points) {
                csv.row(std::vector<std::string>{mechanism_name(key.first),
                                                 key.second ? "causal" : "bidirectional",
                                                 std::to_string(L), fmt::format("{:.6g}", p.seconds),
                                                 fmt::format("{:.6g}", p.peak_mib)});
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

        // The goals, as ratios of numbers measured above (NaN where a point is missing).
        auto at = [&](Mechanism mech, bool causal, int64_t L) {
            auto& points = results[{mech, causal}];
            auto it = points.find(L);
            return it == points.end() ? Point{} : it->second;
        };
        auto faster_from = [&](bool causal) {
            // The smallest L from which favor beats softmax at every length both ran.
            int64_t from = 0;
            for (auto& [L, p] : results[{Mechanism::Softmax, causal}]) {
                Point f = at(Mechanism::Favor, causal, L);
                if (std::isnan(f.seconds)) continue;
                if (f.seconds < p.seconds) {
                    if (!from) from = L;
                } else {
                    from = 0;
                }
            }
            return from;
        };
        ResultLine result;
        result.add("causal_favor_scaling", at(Mechanism::Favor, true, 16384).seconds /
                                               at(Mechanism::Favor, true, 8192).seconds);
        result.add("causal_favor_mem_vs_identity_16384",
                   at(Mechanism::Favor, true, 16384).peak_mib / at(Mechanism::Identity, true, 16384).peak_mib);
        result.add("causal_favor_vs_identity_8192", at(Mechanism::Favor, true, 8192).seconds /
                                                        at(Mechanism::Identity, true, 8192).seconds);
        result.add("favor_faster_from_causal", faster_from(true));
        result.add("favor_faster_from_bidir", faster_from(false));
        result.add("softmax_vs_favor_16384_causal", at(Mechanism::Softmax, true, 16384).seconds /
                                                        at(Mechanism::Favor, true, 16384).seconds);
        result.add("softmax_vs_favor_16384_bidir", at(Mechanism::Softmax, false, 16384).seconds /
                                                       at(Mechanism::Favor, false, 16384).seconds);
        result.add("threads", int64_t(num_threads()));
        fmt::print("{}\n", result.str());
        return 0;
    });
}
