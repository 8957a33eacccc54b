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
#include "engine/blas.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "engine/thread_pool.h"
#include "tools/util/cli.h"
#include "tools/util/timing.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

using namespace pf;

namespace {

struct GemmShape {
    const char* name;
    int64_t M, N, K;
    bool trans_a, trans_b;
};

// OpenBLAS's own workers spin for a while after a threaded call; let them sleep
// before timing anything else.
void let_openblas_workers_sleep() { std::this_thread::sleep_for(std::chrono::milliseconds(200)); }

double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
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
        fmt::print("threads: {}\n\n", threads);

        // ---- 1. matmul vs raw sgemm --------------------------------------------
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
        double ours_total = 0, raw_total = 0, worst_ratio = 0;
        for (const GemmShape& s : shapes) {
            Tensor a = Tensor::randn(s.trans_a ? Shape{s.K, s.M} : Shape{s.M, s.K}, gen);
            Tensor b = Tensor::randn(s.trans_b ? Shape{s.N, s.K} : Shape{s.K, s.N}, gen);
            Tensor c = Tensor::empty({s.M, s.N});
            // Interleaved, one of each per round, so both see the same machine load.
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
            double ours = median(ours_times), raw = median(raw_times);
            double gflops = 2.0 * s.M * s.N * s.K / ours / 1e9;
            fmt::print("{:<12} {:>12.2f} {:>12.2f} {:>8.3f} {:>10.1f}\n", s.name, ours * 1e3,
                       raw * 1e3, ours / raw, gflops);
            ours_total += ours;
            raw_total += raw;
            worst_ratio = std::max(worst_ratio, ours / raw);
        }

        // ---- 2. elementwise add vs memcpy ------------------------------------------
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

        // ---- 3. softmax and layer_norm, 2 threads vs 1 --------------------------------
        Tensor rows = Tensor::randn({quick ? 2048 : 8192, 1024}, gen);
        Tensor weight = Tensor::ones({1024}), bias = Tensor::zeros({1024});
        // 1 and 2+ threads alternate, so that both see the same machine load.
        int many = std::max(2, threads);
        auto speedup = [&](const std::function<void()>& fn, double& one, double& parallel) {
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
            one = median(one_times);
            parallel = median(parallel_times);
        };
        double softmax_1, softmax_n, norm_1, norm_n;
        speedup([&] { softmax(rows); }, softmax_1, softmax_n);
        speedup([&] { layer_norm(rows, weight, bias); }, norm_1, norm_n);
        fmt::print("\nsoftmax    ({} x 1024): 1 thread {:.2f} ms, {} threads {:.2f} ms, speed-up {:.2f}\n",
                   rows.shape()[0], softmax_1 * 1e3, many, softmax_n * 1e3, softmax_1 / softmax_n);
        fmt::print("layer_norm ({} x 1024): 1 thread {:.2f} ms, {} threads {:.2f} ms, speed-up {:.2f}\n",
                   rows.shape()[0], norm_1 * 1e3, many, norm_n * 1e3, norm_1 / norm_n);

        fmt::print("\nresult: matmul_vs_sgemm={:.3f} matmul_vs_sgemm_worst={:.3f} "
                   "elementwise_gbps={:.2f} memcpy_gbps={:.2f} elementwise_vs_memcpy={:.2f} "
                   "softmax_speedup_2t={:.2f} layernorm_speedup_2t={:.2f} threads={}\n",
                   ours_total / raw_total, worst_ratio, add_gbps, copy_gbps, add_gbps / copy_gbps,
                   softmax_1 / softmax_n, norm_1 / norm_n, threads);
        return 0;
    });
}
