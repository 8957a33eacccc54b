// test_blas_threads.cpp — gemm against the naive reference, the thread pool, and
// identical results on 1 and 2 threads.
#include "gradcheck.h"

#include "engine/blas.h"
#include "engine/thread_pool.h"

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

TEST_CASE("ops give identical results on 1 and 2 threads", "[threads]") {
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
        return std::vector<Tensor>{loss, x.grad(), w.grad(), lw.grad(), lb.grad(), u,
                                   sum(u, 0, true), row};
    };
    auto one = run(1), two = run(2);
    for (size_t i = 0; i < one.size(); ++i) {
        INFO("result " << i);
        REQUIRE(one[i].to_vector() == two[i].to_vector());
    }
}
