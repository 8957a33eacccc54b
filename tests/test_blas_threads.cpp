// test_blas_threads.cpp — gemm against the naive reference, how products are cut into
// pieces, the thread pool, the choice of OpenBLAS's kernels, and identical results on
// 1, 2, 3 and 16 threads.
#include "gradcheck.h"

#include "engine/blas.h"
#include "engine/cpu_features.h"
#include "engine/thread_pool.h"
#include "nn/optim.h"

#include <fstream>

#include <atomic>

using namespace pf;
using namespace pf::testing;

TEST_CASE("gemm equals the reference for all transposes and odd sizes", "[blas]") {
    Generator gen(50);
    struct Size { int64_t M, N, K; };
    // Small ones, and ones big enough to be split over threads by rows or by columns;
    // M = 1 goes through sgemv.
    for (Size s : {Size{1, 1, 1}, Size{3, 5, 7}, Size{17, 1, 9}, Size{1, 13, 4}, Size{67, 45, 33},
                   Size{131, 97, 70}, Size{40, 301, 77}, Size{1, 1100, 250}}) {
        for (bool ta : {false, true}) {
            for (bool tb : {false, true}) {
                INFO("M " << s.M << " N " << s.N << " K " << s.K << " ta " << ta << " tb " << tb);
                // Padded leading dimensions, so lda/ldb/ldc are exercised.
                int64_t lda = (ta ? s.M : s.K) + 3, ldb = (tb ? s.K : s.N) + 2, ldc = s.N + 1;
                Tensor A = random_tensor({(ta ? s.K : s.M) * lda}, gen);
                Tensor B = random_tensor({(tb ? s.N : s.K) * ldb}, gen);
                Tensor C0 = random_tensor({s.M * ldc}, gen);
                Tensor fast = clone(C0), slow = clone(C0);
                blas::gemm(ta, tb, s.M, s.N, s.K, 0.5f, A.data(), lda, B.data(), ldb, 2.0f,
                           fast.mutable_data(), ldc);
                blas::gemm_reference(ta, tb, s.M, s.N, s.K, 0.5f, A.data(), lda, B.data(), ldb,
                                     2.0f, slow.mutable_data(), ldc);
                REQUIRE(max_abs_diff(fast, slow) < 1e-4 * std::sqrt(double(s.K)) + 1e-5);
            }
        }
    }
}

TEST_CASE("products are cut into pieces fixed by their sizes: tiles of C, or slices of a long K",
          "[blas]") {
    using blas::plan_product;
    // The reference model's products (tokens 8192, D 256, ff 1024) offer at least 16
    // pieces each, enough for 16 threads.
    for (auto [M, N, K] : {std::tuple{8192, 768, 256}, {8192, 256, 1024}, {8192, 1024, 256},
                           {256, 768, 8192}, {1024, 256, 8192}, {256, 256, 8192}}) {
        INFO(M << " x " << N << " x " << K);
        REQUIRE(plan_product(M, N, K).pieces() >= 16);
    }
    // Weight gradients (C small, K = tokens long) slice K rather than cut C into slivers.
    REQUIRE(plan_product(256, 768, 8192).k_blocks >= 16);
    // A tall product is cut by rows: each piece packs op(B), the small operand, again.
    REQUIRE(plan_product(8192, 256, 256).row_blocks >= 16);
    // Small products stay one call, and so do those whose blocks would be all overhead.
    REQUIRE(plan_product(64, 64, 63).pieces() == 1);
    REQUIRE(plan_product(256, 256, 256).pieces() == 1);
    // A larger product offers more pieces (as many as cost at most 6% of its time).
    REQUIRE(plan_product(65536, 1024, 256).pieces() == blas::kTargetPieces);
    // Never more than the target, never a block under its minimum, whatever the sizes.
    for (int64_t M : {1, 33, 100, 4097, 70000})
        for (int64_t N : {1, 31, 200, 5000})
            for (int64_t K : {1, 129, 3000, 100000}) {
                blas::Partition p = plan_product(M, N, K);
                INFO(M << " x " << N << " x " << K);
                REQUIRE(p.pieces() <= blas::kTargetPieces);
                REQUIRE((p.row_blocks == 1 || M / p.row_blocks >= 32));
                REQUIRE((p.col_blocks == 1 || N / p.col_blocks >= 32));
                REQUIRE((p.k_blocks == 1 || K / p.k_blocks >= 128));
                REQUIRE(p.k_blocks * M * N <= std::max<int64_t>(M * N, blas::kMaxPartialFloats));
            }
}

TEST_CASE("gemm equals the reference when cut into tiles and K slices", "[blas]") {
    Generator gen(53);
    struct Size { int64_t M, N, K; };
    // 2-D tiles with ragged edges; K slices (C too small to cut); both batched.
    for (Size s : {Size{1030, 1000, 70}, Size{40, 50, 8200}, Size{100, 70, 5000}}) {
        blas::Partition plan = blas::plan_product(s.M, s.N, s.K);
        INFO("M " << s.M << " N " << s.N << " K " << s.K << ": " << plan.row_blocks << " x "
                  << plan.col_blocks << " x " << plan.k_blocks << " pieces");
        REQUIRE(plan.pieces() > 1);
        for (bool ta : {false, true}) {
            for (bool tb : {false, true}) {
                int64_t lda = (ta ? s.M : s.K) + 1, ldb = (tb ? s.K : s.N) + 3, ldc = s.N + 2;
                Tensor A = random_tensor({(ta ? s.K : s.M) * lda}, gen);
                Tensor B = random_tensor({(tb ? s.N : s.K) * ldb}, gen);
                Tensor C0 = random_tensor({s.M * ldc}, gen);
                for (float beta : {0.0f, 1.5f}) {
                    Tensor fast = clone(C0), slow = clone(C0);
                    blas::gemm(ta, tb, s.M, s.N, s.K, 0.5f, A.data(), lda, B.data(), ldb, beta,
                               fast.mutable_data(), ldc);
                    blas::gemm_reference(ta, tb, s.M, s.N, s.K, 0.5f, A.data(), lda, B.data(), ldb,
                                         beta, slow.mutable_data(), ldc);
                    INFO("ta " << ta << " tb " << tb << " beta " << beta);
                    // The padding between rows of C is never written.
                    for (int64_t i = 0; i < s.M; ++i)
                        for (int64_t j = s.N; j < ldc; ++j)
                            REQUIRE(fast.data()[i * ldc + j] == C0.data()[i * ldc + j]);
                    REQUIRE(max_abs_diff(fast, slow) < 1e-4 * std::sqrt(double(s.K)) + 1e-5);
                }
            }
        }
    }
    // Batched: every item's tiles.
    const int64_t batch = 3, M = 2048, N = 64, K = 64;
    REQUIRE(blas::plan_batched(batch, M, N, K).pieces() > 1);
    Tensor A = random_tensor({batch * M * K}, gen), B = random_tensor({batch * K * N}, gen);
    Tensor fast = Tensor::zeros({batch * M * N}), slow = Tensor::zeros({batch * M * N});
    blas::gemm_batched(batch, false, true, M, N, K, 1.0f, A.data(), K, M * K, B.data(), K, K * N,
                       0.0f, fast.mutable_data(), N, M * N);
    for (int64_t i = 0; i < batch; ++i)
        blas::gemm_reference(false, true, M, N, K, 1.0f, A.data() + i * M * K, K,
                             B.data() + i * K * N, K, 0.0f, slow.mutable_data() + i * M * N, N);
    REQUIRE(max_abs_diff(fast, slow) < 1e-4 * std::sqrt(double(K)));
}

TEST_CASE("gemm gives bit-identical results on 1, 2, 3 and 16 threads", "[blas][threads]") {
    Generator gen(54);
    struct Size { int64_t M, N, K; bool ta, tb; };
    for (Size s : {Size{2000, 300, 256, false, false}, Size{256, 300, 8192, true, false},
                   Size{700, 900, 300, false, true}}) {
        Tensor A = random_tensor({s.M * s.K}, gen), B = random_tensor({s.K * s.N}, gen);
        const int64_t lda = s.ta ? s.M : s.K, ldb = s.tb ? s.K : s.N;
        std::vector<float> first;
        for (int threads : {1, 2, 3, 16}) {
            ThreadCount tc(threads);
            Tensor C = Tensor::zeros({s.M * s.N});
            blas::gemm(s.ta, s.tb, s.M, s.N, s.K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f,
                       C.mutable_data(), s.N);
            INFO("M " << s.M << " N " << s.N << " K " << s.K << ", " << threads << " threads");
            if (first.empty()) first = C.to_vector();
            else REQUIRE(C.to_vector() == first);
        }
    }
}

TEST_CASE("OpenBLAS's kernels: the set each described CPU deserves", "[blas]") {
    auto cpu = [](std::string vendor, bool sse4_2, bool avx, bool avx2_fma, bool avx512) {
        CpuFeatures c;
        c.vendor = vendor;
        c.sse4_2 = sse4_2;
        c.avx = avx;
        c.avx2_fma = avx2_fma;
        c.avx512 = avx512;
        return c;
    };
    const CpuFeatures emerald_rapids = cpu("GenuineIntel", true, true, true, true),
                      haswell = cpu("GenuineIntel", true, true, true, false),
                      sandy_bridge = cpu("GenuineIntel", true, true, false, false),
                      nehalem = cpu("GenuineIntel", true, false, false, false),
                      core2 = cpu("GenuineIntel", false, false, false, false),
                      zen4 = cpu("AuthenticAMD", true, true, true, true),
                      zen2 = cpu("AuthenticAMD", true, true, true, false);
    // OpenBLAS 0.3.21 on a CPU newer than itself: Prescott; corrected to the CPU's width.
    REQUIRE(blas::kernel_to_force(emerald_rapids, "Prescott") == "SkylakeX");
    REQUIRE(blas::kernel_to_force(emerald_rapids, "Haswell") == "SkylakeX");
    REQUIRE(blas::kernel_to_force(zen4, "Zen") == "SkylakeX");
    REQUIRE(blas::kernel_to_force(haswell, "Nehalem") == "Haswell");
    REQUIRE(blas::kernel_to_force(zen2, "Prescott") == "Zen");
    REQUIRE(blas::kernel_to_force(sandy_bridge, "prescott") == "Sandybridge");  // any case
    REQUIRE(blas::kernel_to_force(nehalem, "Core2") == "Nehalem");
    // Kernels as wide as the CPU, or wider names of the same width, are kept.
    for (std::string kept : {"SkylakeX", "Cooperlake", "SapphireRapids"})
        REQUIRE(blas::kernel_to_force(emerald_rapids, kept).empty());
    REQUIRE(blas::kernel_to_force(haswell, "Haswell").empty());
    REQUIRE(blas::kernel_to_force(zen2, "Haswell").empty());
    // Nothing better than SSE3 exists for an old CPU; a set we do not know is left alone.
    REQUIRE(blas::kernel_to_force(core2, "Prescott").empty());
    REQUIRE(blas::kernel_to_force(emerald_rapids, "LoongsonX").empty());
    // An AVX-512 CPU whose OS does not save the ZMM registers counts as AVX2 (cpu_features).
    REQUIRE(blas::kernel_for(haswell) == "Haswell");
}

TEST_CASE("cpu_features reads the same instruction sets the kernel reports", "[blas]") {
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    while (std::getline(cpuinfo, line) && line.rfind("flags", 0) != 0) {}
    REQUIRE(line.rfind("flags", 0) == 0);  // Linux on x86-64, as the build requires
    auto has = [&](const std::string& flag) { return (line + " ").find(" " + flag + " ") != std::string::npos; };
    const CpuFeatures cpu = cpu_features();
    REQUIRE(cpu.sse4_2 == has("sse4_2"));
    REQUIRE(cpu.avx == has("avx"));
    REQUIRE(cpu.avx2_fma == (has("avx2") && has("fma")));
    REQUIRE(cpu.avx512 == (has("avx512f") && has("avx512dq") && has("avx512cd") &&
                           has("avx512bw") && has("avx512vl")));
}

TEST_CASE("batched matmul equals per-item products", "[blas]") {
    Generator gen(51);
    Tensor a = random_tensor({3, 2, 5, 4}, gen), b = random_tensor({3, 2, 4, 6}, gen);
    Tensor y = matmul(a, b);
    REQUIRE(y.shape() == Shape{3, 2, 5, 6});
    for (int64_t i = 0; i < 3; ++i)
        for (int64_t j = 0; j < 2; ++j)
            for (int64_t m = 0; m < 5; ++m)
                for (int64_t n = 0; n < 6; ++n) {
                    double s = 0;
                    for (int64_t k = 0; k < 4; ++k) s += a.at({i, j, m, k}) * b.at({i, j, k, n});
                    REQUIRE(y.at({i, j, m, n}) == Approx(s).margin(1e-5));
                }
    // A 2-D right operand is shared by all batch items.
    Tensor w = random_tensor({4, 6}, gen);
    Tensor yw = matmul(a, w);
    for (int64_t i = 0; i < 3; ++i) {
        Tensor item = matmul(reshape(slice(slice(a, 0, i, i + 1), 1, 1, 2), {5, 4}), w);
        REQUIRE(max_abs_diff(reshape(slice(slice(yw, 0, i, i + 1), 1, 1, 2), {5, 6}), item) < 1e-5);
    }
}

TEST_CASE("parallel_for covers the range once, in disjoint pieces", "[threads]") {
    for (int threads : {1, 2, 3}) {
        ThreadCount tc(threads);
        for (int64_t n : {0, 1, 7, 1000, 100003}) {
            std::vector<std::atomic<int>> hits(n);
            parallel_for(n, 10, [&](int64_t begin, int64_t end) {
                for (int64_t i = begin; i < end; ++i) hits[i]++;
            });
            for (int64_t i = 0; i < n; ++i) REQUIRE(hits[i] == 1);
        }
        // Work below the grain runs on the calling thread, in one piece.
        int pieces = 0;
        parallel_for(50, 100, [&](int64_t b, int64_t e) {
            pieces++;
            REQUIRE(e - b == 50);
        });
        REQUIRE(pieces == 1);
        // Exceptions in a piece reach the caller.
        REQUIRE_THROWS_WITH(parallel_for(1000, 1, [](int64_t, int64_t end) {
                                if (end == 1000) throw Error("piece failed");
                            }),
                            Catch::Contains("piece failed"));
    }
}

TEST_CASE("ops give identical results on 1, 2, 3 and 16 threads", "[threads]") {
    // Large enough that every kernel really splits its work.
    auto run = [](int threads) {
        ThreadCount tc(threads);
        Generator gen(52);
        Tensor x = Tensor::randn({512, 300}, gen).requires_grad_();
        Tensor w = Tensor::randn({300, 260}, gen).requires_grad_();
        Tensor lw = Tensor::randn({260}, gen).requires_grad_();
        Tensor lb = Tensor::randn({260}, gen).requires_grad_();
        std::vector<int32_t> targets(512);
        for (int i = 0; i < 512; ++i) targets[i] = (i * 7) % 260;
        Tensor h = layer_norm(gelu(matmul(x, w)), lw, lb);
        Tensor loss = cross_entropy(h, targets) + mean(softmax(h)) + sum(cumsum(h, 0)) * 1e-6f +
                      sum(exp(h * 0.01f)) * 1e-6f + max(h) * 0.1f;
        loss.backward();
        Tensor u = Tensor::rand({200000}, gen);  // generator fills in parallel
        Tensor row = matmul(Tensor::randn({1, 300}, gen), Tensor::randn({300, 1100}, gen));  // sgemv
        // A long axis summed in blocks (a bias gradient over 8192 positions).
        Tensor tall = Tensor::randn({8192, 300}, gen);
        // Clipping and an AdamW step, each over blocks of elements.
        nn::AdamW adamw({{"w", w}, {"lw", lw}}, 1e-2f);
        float norm = nn::clip_grad_norm({w, lw}, 0.5f);
        adamw.step();
        return std::vector<Tensor>{loss, x.grad(), w.grad(), lw.grad(), lb.grad(), u,
                                   sum(u, 0, true), row, sum(tall, 0), Tensor::scalar(norm),
                                   clone(w), clone(lw)};
    };
    auto one = run(1);
    for (int threads : {2, 3, 16}) {
        auto other = run(threads);
        for (size_t i = 0; i < one.size(); ++i) {
            INFO("result " << i << ", " << threads << " threads");
            REQUIRE(one[i].to_vector() == other[i].to_vector());
        }
    }
}
