// blas.h — matrix products. Only blas.cpp includes cblas.h; this header is plain C++.
// What the benchmarks measure the products with is in blas_instruments.h.
//
// All matrices are row-major. op(A) is A or its transpose, as the flag says:
//
//   C (M x N) = alpha * op(A) (M x K) * op(B) (K x N) + beta * C
//
// lda/ldb/ldc are the row strides of A, B, C as stored (so lda >= K, or >= M when A
// is transposed). Transposes are flags handed to cblas_sgemm, never copies.
//
// Threads: OpenBLAS runs single-threaded and gemm() cuts a large product into pieces
// for the thread pool, one cblas_sgemm each: tiles of C (row blocks x column blocks),
// and where C is small beside a long K (weight gradients: K = batch x length), slices of
// K whose partial products are then summed in a fixed order. So OpenBLAS's own workers
// never spin next to ours, and the cores have one owner (see thread_pool.h). The pieces
// depend on the sizes alone, never on the thread count (OpenBLAS rounds a block of rows
// differently from the same rows inside a bigger block), so results are bit-identical
// on any number of threads; a large product offers up to 64 pieces, enough for 64 cores.
#pragma once

#include "engine/cpu_features.h"

#include <cstdint>
#include <string>

namespace pf::blas {

// How a product is cut: row_blocks x col_blocks tiles of C, each split into k_blocks
// slices of K. Chosen from the sizes: at least kWorkPerPiece multiply-adds a piece, up to
// kTargetPieces pieces, as many as cost at most kMaxCuttingOverhead of the product's time
// (each piece packs its own panels of A and B, and K slices add partial sums to add up:
// blas.cpp, cutting_overhead). At the reference size every large product gets 16: blocks
// of 512 rows for the tall ones (8192 rows), 16 slices of K = 8192 for weight gradients.
struct Partition {
    int64_t row_blocks = 1, col_blocks = 1, k_blocks = 1;
    int64_t pieces() const { return row_blocks * col_blocks * k_blocks; }
};
constexpr int64_t kTargetPieces = 64;
constexpr int64_t kWorkPerPiece = int64_t(1) << 22;      // multiply-adds (~0.1 ms on one core)
constexpr int64_t kMinParallelWork = int64_t(1) << 18;  // below: one call, no threads
constexpr int64_t kMaxPartialFloats = int64_t(1) << 24;  // 64 MiB of K-slice partial sums
constexpr double kMaxCuttingOverhead = 0.06;
Partition plan_product(int64_t M, int64_t N, int64_t K);
// `batch` products of one shape: batch x (tiles per product) pieces, never K slices.
Partition plan_batched(int64_t batch, int64_t M, int64_t N, int64_t K);

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

// The kernel set OpenBLAS runs on this CPU (openblas_get_corename: "Haswell",
// "SkylakeX", "Prescott", ...), and its version line (openblas_get_config).
std::string core_name();
std::string library_config();

// OpenBLAS picks its kernels when it loads, from the CPU's model number; a library older
// than the CPU does not know it and falls back to Prescott (SSE3), 3-6x slower. These
// decide, from the CPU's features, which kernel set it should run:
//   kernel_level: how wide a kernel set's vectors are: 0 (SSE3: Prescott, Core2, Atom...),
//     1 (SSE4.2: Nehalem), 2 (AVX: Sandybridge, Bulldozer), 3 (AVX2 + FMA: Haswell, Zen,
//     Excavator...), 4 (AVX-512: SkylakeX, Cooperlake, SapphireRapids); -1 if unknown.
//   kernel_for: the set for `cpu` (SkylakeX, Haswell or Zen, Sandybridge, Nehalem; "" for
//     a CPU with no more than SSE3, where nothing better exists).
//   kernel_to_force: kernel_for(cpu) if `running` is a known set narrower than the CPU,
//     else "" (keep what runs: it matches, or it is a set we do not know).
int kernel_level(const std::string& core);
std::string kernel_for(const CpuFeatures& cpu);
std::string kernel_to_force(const CpuFeatures& cpu, const std::string& running);

}  // namespace pf::blas
