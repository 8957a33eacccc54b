// bench_model.cpp — the speed of whole models: a training step against the machine's
// GEMM rate (MFU), over thread counts, and decoding. Ends with a `result:` line.
//
//   build/bench_model [--attention favor]   # text: the reference LM (D 256, 4 layers, L 1024, batch 8)
//   build/bench_model --task image          # 64x64x3 images: L = 12288, batch 1
//   build/bench_model --scaling [--thread-counts 1,2,4,16]   # the thread scaling table alone
#include "engine/blas.h"
#include "engine/blas_instruments.h"
#include "engine/thread_pool.h"
#include "models/generate.h"
#include "nn/attention.h"
#include "tools/bench/thread_scaling.h"
#include "tools/bench/whole_model.h"
#include "tools/util/blas_kernel.h"
#include "tools/util/cli.h"
#include "tools/util/result.h"
#include "tools/util/timing.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <thread>
#include <tuple>

using namespace pf;

namespace {

struct Options {
    bool quick = false, scaling_only = false;
    std::string task = "text", attention = "favor";
    int64_t dim = 256, layers = 0, steps = 0;
    std::string thread_counts;  // "1,2,16"; empty: 1, 2, 4, ... the cores
};

struct StepTiming {
    double seconds = NAN, flops = NAN, peak_rss_mib = NAN;
    std::vector<blas::GemmShape> products;  // the matrix products of one step
};

// Times `steps` training steps after one warm-up step.
StepTiming time_training_steps(const models::ModelConfig& config, int64_t batch, int64_t length,
                               int steps) {
    bench::ModelStep step(config, batch, length, true);
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

// GFLOP/s of one (M x K)(K x N) product, the median of 10: by blas::gemm over the thread
// pool, as the model's products run; or by OpenBLAS's own threads (`openblas_threads`),
// with pauses around it while OpenBLAS's workers wake and go back to sleep.
double gemm_gflops(int64_t M, int64_t N, int64_t K, bool openblas_threads) {
    Generator gen(4);
    Tensor a = Tensor::randn({M, K}, gen), b = Tensor::randn({K, N}, gen), c = Tensor::empty({M, N});
    auto* gemm = openblas_threads ? &blas::gemm_openblas_threaded : &blas::gemm;
    const auto pause = std::chrono::milliseconds(openblas_threads ? 200 : 0);
    std::this_thread::sleep_for(pause);
    double seconds = median_seconds(10, [&] {
        gemm(false, false, M, N, K, 1.0f, a.data(), K, b.data(), N, 0.0f, c.mutable_data(), N);
    });
    std::this_thread::sleep_for(pause * 3 / 2);
    return 2.0 * double(M * N * K) / seconds / 1e9;
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
    const double peak = gemm_gflops(1024, 1024, 1024, false), alone_s = time_products_alone(step.products);
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
    bench::ModelStep step(config, batch, length, true);
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
    double machine_gflops = gemm_gflops(8192, 1024, 256, true);  // the raw rate of the machine
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

// Images: the step with softmax attention if it fits in memory (given `favor`, the step
// with the mechanism timed first), else how much memory it would need.
void image_softmax_step(const models::ModelConfig& config, int64_t length, int steps,
                        const StepTiming& favor, ResultLine& result) {
    double matrix_mib = bench::attention_matrix_mib(config, length);
    double needs_mib = favor.peak_rss_mib + bench::softmax_matrices_mib(config, length);
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

// Whole models: a training step, its speed against the machine's, and decoding.
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

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Whole models' training and decoding speed: a step against the machine's GEMM "
                 "rate, and over thread counts", "bench_model"};
    Options o;
    app.add_flag("--quick", o.quick, "smaller sizes and fewer steps: a smoke run");
    app.add_option("--task", o.task, "text (L = 1024) or image (L = 64*64*3)")
        ->check(CLI::IsMember({"text", "image"}));
    app.add_option("--attention", o.attention, "the mechanism timed first")
        ->check(CLI::IsMember({"softmax", "favor", "relu", "identity", "reformer"}));
    app.add_option("--dim", o.dim, "width D")->check(positive());
    app.add_option("--layers", o.layers, "blocks (default 4 for text, 6 for image)")
        ->check(positive());
    app.add_option("--steps", o.steps, "timed training steps")->check(positive());
    app.add_option("--thread-counts", o.thread_counts, "the thread counts of the scaling table, "
                   "e.g. 1,2,4,16 (default: 1, 2, 4, ... up to the cores)");
    app.add_flag("--scaling", o.scaling_only, "the scaling table and the pieces analysis alone (text)");
    add_threads_option(app);
    return run_program(app, argc, argv, [&] {
        fmt::print("{}\n", blas_kernel_line());
        return model_bench(o);
    });
}
