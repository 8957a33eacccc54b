// blas.h — matrix products. Only blas.cpp includes cblas.h; this header is plain C++.
//
// All matrices are row-major. op(A) is A or its transpose, as the flag says:
//
//   C (M x N) = alpha * op(A) (M x K) * op(B) (K x N) + beta * C
//
// lda/ldb/ldc are the row strides of A, B, C as stored (so lda >= K, or >= M when A
// is transposed). Transposes are flags handed to cblas_sgemm, never copies.
//
// Threads: OpenBLAS runs single-threaded and gemm() splits C into a few row (or
// column) blocks over the thread pool, one cblas_sgemm per block. So OpenBLAS's own
// workers never spin next to ours, and the cores have one owner (see thread_pool.h).
// The blocks depend on the sizes alone, so results are the same on any thread count.
#pragma once

#include <cstdint>
#include <vector>

namespace pf::blas {

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
          const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
          int64_t ldc);

// `batch` independent products, matrix i at A + i*stride_a etc. A stride of 0 uses
// the same matrix for every product.
void gemm_batched(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                  float alpha, const float* A, int64_t lda, int64_t stride_a, const float* B,
                  int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc,
                  int64_t stride_c);

// The same product as three plain loops with a double accumulator: slow and
// obviously right. The tests' reference for gemm().
void gemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                    const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                    float* C, int64_t ldc);

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
// products alone (build/bench --model): while a log is set, every gemm() call and every
// gemm_batched() of 4 or more products appends its shape, from any thread.
struct GemmShape {
    bool trans_a = false, trans_b = false;
    int64_t M = 0, N = 0, K = 0, batch = 1;
};
void set_shape_log(std::vector<GemmShape>* log);  // nullptr: stop logging

}  // namespace pf::blas
