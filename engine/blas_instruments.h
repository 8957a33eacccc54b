// blas_instruments.h — what benchmarks measure the matrix products of blas.h with: a
// count of their FLOPs, a log of their shapes, and one product on OpenBLAS's own threads
// to compare gemm() with. Not for the ops (blas.h is what they use). Defined in
// blas.cpp, where the products are counted and logged: the one file that speaks to
// OpenBLAS. This header is plain C++.
#pragma once

#include <cstdint>
#include <vector>

namespace pf::blas {

// One cblas_sgemm call with OpenBLAS's own threads (as many as the pool has), for
// benchmarks that compare our gemm() with "raw" OpenBLAS. OpenBLAS's workers keep
// spinning for a moment afterwards: time other work only after a pause.
void gemm_openblas_threaded(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                            float alpha, const float* A, int64_t lda, const float* B,
                            int64_t ldb, float beta, float* C, int64_t ldc);

// Floating-point operations (2 M N K per product) of every product computed since
// the last reset, on any thread: benchmarks count a model's FLOPs this way.
int64_t flop_count();
void reset_flop_count();

// The shapes of the products a piece of code computes, for benchmarks that time the
// products alone (build/bench --model): while a log is set, every gemm() and
// gemm_batched() call appends its shape (batch: the number of products), from any thread.
struct GemmShape {
    bool trans_a = false, trans_b = false;
    int64_t M = 0, N = 0, K = 0, batch = 1;
};
void set_shape_log(std::vector<GemmShape>* log);  // nullptr: stop logging

}  // namespace pf::blas
