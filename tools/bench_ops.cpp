// bench_ops.cpp — how fast the engine's basic ops are, against what the machine can do.
//
//   build/bench_ops [--quick] [--threads N]
//
// 1. matmul (through our thread pool) vs one raw cblas_sgemm with OpenBLAS's own
//    threads, for 1024^3 and the transformer's feed-forward shapes (forward and both
//    backward products);
// 2. an elementwise add of two 16M-element tensors vs memcpy, in GB/s moved;
// 3. softmax and layer_norm forward on (8192, 1024) with 2 threads vs 1.
// Ends with one line `result: key=value ...`.
#include "engine/blas_instruments.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "engine/thread_pool.h"
#include "tools/util/blas_kernel.h"
#include "tools/util/cli.h"
#include "tools/util/timing.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

using namespace pf;

namespace {

struct GemmShape {
    const char* name;
    int64_t M, N, K;
    bool trans_a, trans_b;
};

// Section 1's totals: matmul and raw sgemm time over the shapes, and the worst ratio.
struct MatmulSummary {
    double ours_total = 0, raw_total = 0, worst_ratio = 0;
};

// Section 2's rates, in GB/s moved.
struct Bandwidth {
    double add_gbps, copy_gbps;
};

// Section 3's times in seconds: 1 thread, and `many` threads.
struct ThreadTimes {
    double one, parallel;
};

// Section 3's results: time on 1 thread over time on `many`.
struct Speedups {
    double softmax, layer_norm;
};

// OpenBLAS's own workers spin for a while after a threaded call; let them sleep
// before timing anything else.
void let_openblas_workers_sleep() { std::this_thread::sleep_for(std::chrono::milliseconds(200)); }

// The middle value of some numbers (the upper middle one of an even count).
double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
}

// Median seconds of our matmul and of one raw threaded sgemm for one shape, timed in
// turns, one of each per round, so that both see the same machine load.
std::pair<double, double> time_matmul_and_sgemm(const GemmShape& s, int reps, Generator& gen) {
    Tensor a = Tensor::randn(s.trans_a ? Shape{s.K, s.M} : Shape{s.M, s.K}, gen);
    Tensor b = Tensor::randn(s.trans_b ? Shape{s.N, s.K} : Shape{s.K, s.N}, gen);
    Tensor c = Tensor::empty({s.M, s.N});
    std::vector<double> ours_times, raw_times;
    matmul(a, b, s.trans_a, s.trans_b);  // warm-up
    auto time_ours = [&] {
        double start = now_seconds();
        matmul(a, b, s.trans_a, s.trans_b);
        ours_times.push_back(now_seconds() - start);
    };
    auto time_raw = [&] {
        double start = now_seconds();
        blas::gemm_openblas_threaded(s.trans_a, s.trans_b, s.M, s.N, s.K, 1.0f, a.data(),
                                     a.shape()[1], b.data(), b.shape()[1], 0.0f,
                                     c.mutable_data(), s.N);
        raw_times.push_back(now_seconds() - start);
    };
    for (int rep = 0; rep < reps; ++rep) {  // alternate which goes first
        if (rep % 2) time_raw(), let_openblas_workers_sleep();
        time_ours();
        if (rep % 2 == 0) time_raw(), let_openblas_workers_sleep();
    }
    return {median(ours_times), median(raw_times)};
}

// 1. matmul vs raw sgemm, for 1024^3 and the transformer shapes; prints a table.
MatmulSummary compare_matmul_to_sgemm(int reps, Generator& gen) {
    // The transformer shapes: X (8192, 256) @ W (256, 1024), and its backward
    // dX = dY W^T (8192x1024 @ 1024x256) and dW = X^T dY (256x8192 @ 8192x1024).
    std::vector<GemmShape> shapes = {
        {"1024^3", 1024, 1024, 1024, false, false},
        {"ff forward", 8192, 1024, 256, false, false},
        {"ff dX", 8192, 256, 1024, false, true},
        {"ff dW", 256, 1024, 8192, true, false},
    };
    fmt::print("{:<12} {:>12} {:>12} {:>8} {:>10}\n", "matmul", "ours ms", "sgemm ms", "ratio",
               "GFLOP/s");
    MatmulSummary summary;
    for (const GemmShape& s : shapes) {
        auto [ours, raw] = time_matmul_and_sgemm(s, reps, gen);
        double gflops = 2.0 * s.M * s.N * s.K / ours / 1e9;
        fmt::print("{:<12} {:>12.2f} {:>12.2f} {:>8.3f} {:>10.1f}\n", s.name, ours * 1e3,
                   raw * 1e3, ours / raw, gflops);
        summary.ours_total += ours;
        summary.raw_total += raw;
        summary.worst_ratio = std::max(summary.worst_ratio, ours / raw);
    }
    return summary;
}

// 2. An elementwise add of two tensors vs memcpy of one, in GB/s moved; prints a line.
Bandwidth compare_add_to_memcpy(bool quick, int reps, Generator& gen) {
    int64_t n = quick ? (1 << 22) : (1 << 24);
    Tensor x = Tensor::randn({n}, gen), y = Tensor::randn({n}, gen);
    std::vector<float> destination(n);
    double add_s = median_seconds(reps, [&] { add(x, y); });
    double copy_s = median_seconds(reps, [&] {
        std::memcpy(destination.data(), x.data(), n * sizeof(float));
    });
    double bytes = double(n) * sizeof(float);
    double add_gbps = 3 * bytes / add_s / 1e9;    // two reads, one write
    double copy_gbps = 2 * bytes / copy_s / 1e9;  // one read, one write
    fmt::print("\nadd of two {}M-element tensors: {:.2f} ms, {:.1f} GB/s; memcpy {:.2f} ms, "
               "{:.1f} GB/s ({:.2f} of memcpy)\n",
               n >> 20, add_s * 1e3, add_gbps, copy_s * 1e3, copy_gbps, add_gbps / copy_gbps);
    return {add_gbps, copy_gbps};
}

// Median seconds of fn with 1 thread and with `many`, in turns so that both see the same
// machine load (after one warm-up round); then back to `threads`.
ThreadTimes time_one_and_many_threads(const std::function<void()>& fn, int reps, int many,
                                      int threads) {
    std::vector<double> one_times, parallel_times;
    for (int rep = 0; rep <= reps; ++rep) {  // rep 0 warms up
        for (int t : {1, many}) {
            set_num_threads(t);
            double start = now_seconds();
            fn();
            if (rep > 0) (t == 1 ? one_times : parallel_times).push_back(now_seconds() - start);
        }
    }
    set_num_threads(threads);
    return {median(one_times), median(parallel_times)};
}

// 3. softmax and layer_norm forward on (8192, 1024) rows, 1 thread vs 2 (or all); prints
// two lines.
Speedups compare_one_thread_to_many(bool quick, int reps, int threads, Generator& gen) {
    Tensor rows = Tensor::randn({quick ? 2048 : 8192, 1024}, gen);
    Tensor weight = Tensor::ones({1024}), bias = Tensor::zeros({1024});
    int many = std::max(2, threads);
    ThreadTimes softmax_times =
        time_one_and_many_threads([&] { softmax(rows); }, reps, many, threads);
    ThreadTimes norm_times =
        time_one_and_many_threads([&] { layer_norm(rows, weight, bias); }, reps, many, threads);
    Speedups speedups{softmax_times.one / softmax_times.parallel,
                      norm_times.one / norm_times.parallel};
    fmt::print("\nsoftmax    ({} x 1024): 1 thread {:.2f} ms, {} threads {:.2f} ms, speed-up {:.2f}\n",
               rows.shape()[0], softmax_times.one * 1e3, many, softmax_times.parallel * 1e3,
               speedups.softmax);
    fmt::print("layer_norm ({} x 1024): 1 thread {:.2f} ms, {} threads {:.2f} ms, speed-up {:.2f}\n",
               rows.shape()[0], norm_times.one * 1e3, many, norm_times.parallel * 1e3,
               speedups.layer_norm);
    return speedups;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Benchmark the engine's matmul, elementwise, softmax and layer_norm kernels",
                 "bench_ops"};
    bool quick = false;
    app.add_flag("--quick", quick, "fewer repetitions and smaller tensors (a smoke run)");
    add_threads_option(app);
    return run_program(app, argc, argv, [&] {
        int reps = quick ? 3 : 10;
        int threads = num_threads();
        Generator gen(1);
        fmt::print("{}\nthreads: {}\n\n", blas_kernel_line(), threads);

        MatmulSummary gemm = compare_matmul_to_sgemm(reps, gen);
        Bandwidth bandwidth = compare_add_to_memcpy(quick, reps, gen);
        Speedups speedups = compare_one_thread_to_many(quick, reps, threads, gen);

        fmt::print("\nresult: matmul_vs_sgemm={:.3f} matmul_vs_sgemm_worst={:.3f} "
                   "elementwise_gbps={:.2f} memcpy_gbps={:.2f} elementwise_vs_memcpy={:.2f} "
                   "softmax_speedup_2t={:.2f} layernorm_speedup_2t={:.2f} threads={}\n",
                   gemm.ours_total / gemm.raw_total, gemm.worst_ratio, bandwidth.add_gbps,
                   bandwidth.copy_gbps, bandwidth.add_gbps / bandwidth.copy_gbps, speedups.softmax,
                   speedups.layer_norm, threads);
        return 0;
    });
}
