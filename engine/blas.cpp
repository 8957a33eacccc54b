// blas.cpp — the one file that talks to OpenBLAS (cblas_sgemm, cblas_sgemv), plus the naive
// reference.
#include "engine/blas.h"

#include "engine/thread_pool.h"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <mutex>

namespace pf::blas {
namespace {

// OpenBLAS starts its own workers when loaded; we make it single-threaded once, so
// that those workers go to sleep for good and our pool owns the cores.
void make_openblas_single_threaded() {
    static std::once_flag once;
    std::call_once(once, [] { openblas_set_num_threads(1); });
}

std::atomic<int64_t> g_flops{0};

std::mutex g_shape_log_mutex;
std::atomic<std::vector<GemmShape>*> g_shape_log{nullptr};  // set by benchmarks only

void log_shape(const GemmShape& shape) {
    std::lock_guard<std::mutex> lock(g_shape_log_mutex);
    if (std::vector<GemmShape>* log = g_shape_log.load()) log->push_back(shape);
}

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc) {
    g_flops.fetch_add(2 * M * N * K, std::memory_order_relaxed);
    if (M == 1 && K > 0) {
        // One row of C, a matrix-vector product (decoding one token at a time is all
        // such products): sgemm would copy ("pack") the whole of op(B) on every call,
        // which costs more than the product; sgemv reads B once, in place.
        //   C (1 x N) = alpha a op(B) + beta C, with a the row of op(A).
        if (beta == 0.0f) {  // C may hold garbage, and 0 * NaN is NaN
            std::fill_n(C, N, 0.0f);
            beta = 1.0f;
        }
        const int a_step = trans_a ? int(lda) : 1;  // op(A) is A's first column if transposed
        if (trans_b)  // B is N x K: C = B a
            cblas_sgemv(CblasRowMajor, CblasNoTrans, int(N), int(K), alpha, B, int(ldb), A,
                        a_step, beta, C, 1);
        else          // B is K x N: C = B^T a
            cblas_sgemv(CblasRowMajor, CblasTrans, int(K), int(N), alpha, B, int(ldb), A,
                        a_step, beta, C, 1);
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, int(M), int(N), int(K), alpha, A, int(lda),
                B, int(ldb), beta, C, int(ldc));
}

// How many blocks of rows (or columns) of C to cut a product into. The blocks depend
// only on the sizes, never on the thread count: OpenBLAS tiles and rounds a block of
// rows differently from the same rows inside a bigger block, so the same blocks must
// be used on any number of threads for results to be identical. Four blocks keep
// 2 (or 4) threads busy; when K is long, every block re-packs the whole shared
// operand, so two are faster (measured with tools/bench_ops on 2 cores).
int64_t block_count(int64_t split_size, int64_t K) {
    int64_t blocks = K > 2 * split_size ? 2 : 4;
    return std::clamp<int64_t>(split_size / 32, 1, blocks);
}

}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
          const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
          int64_t ldc) {
    if (M == 0 || N == 0) return;
    make_openblas_single_threaded();
    if (g_shape_log) log_shape({trans_a, trans_b, M, N, K, 1});
    // Small products are not worth waking threads for; inside a parallel region each
    // thread already has its own product.
    if (M * N * K < (int64_t(1) << 18) || inside_parallel_region()) {
        sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    if (M >= N) {
        // Blocks of rows of C: rows [m0, m1) of op(A) start at row m0 of A, or at
        // column m0 of A when A is stored transposed.
        int64_t blocks = block_count(M, K), block = (M + blocks - 1) / blocks;
        parallel_pieces(blocks, [&](int64_t piece) {
            int64_t m0 = piece * block, m1 = std::min(M, m0 + block);
            const float* A_block = trans_a ? A + m0 : A + m0 * lda;
            sgemm(trans_a, trans_b, m1 - m0, N, K, alpha, A_block, lda, B, ldb, beta,
                  C + m0 * ldc, ldc);
        });
    } else {
        // Blocks of columns of C: columns [n0, n1) of op(B).
        int64_t blocks = block_count(N, K), block = (N + blocks - 1) / blocks;
        parallel_pieces(blocks, [&](int64_t piece) {
            int64_t n0 = piece * block, n1 = std::min(N, n0 + block);
            const float* B_block = trans_b ? B + n0 * ldb : B + n0;
            sgemm(trans_a, trans_b, M, n1 - n0, K, alpha, A, lda, B_block, ldb, beta, C + n0,
                  ldc);
        });
    }
}

void gemm_batched(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                  float alpha, const float* A, int64_t lda, int64_t stride_a, const float* B,
                  int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc,
                  int64_t stride_c) {
    make_openblas_single_threaded();
    if (batch < 4) {
        // Few products: split each one over the threads.
        for (int64_t i = 0; i < batch; ++i)
            gemm(trans_a, trans_b, M, N, K, alpha, A + i * stride_a, lda, B + i * stride_b, ldb,
                 beta, C + i * stride_c, ldc);
        return;
    }
    // Many products: one whole product per piece.
    if (g_shape_log) log_shape({trans_a, trans_b, M, N, K, batch});
    parallel_pieces(batch, [&](int64_t i) {
        sgemm(trans_a, trans_b, M, N, K, alpha, A + i * stride_a, lda, B + i * stride_b, ldb,
              beta, C + i * stride_c, ldc);
    });
}

void gemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                    const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                    float* C, int64_t ldc) {
    for (int64_t i = 0; i < M; ++i) {
        for (int64_t j = 0; j < N; ++j) {
            double sum = 0;
            for (int64_t k = 0; k < K; ++k) {
                float a = trans_a ? A[k * lda + i] : A[i * lda + k];
                float b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
                sum += double(a) * double(b);
            }
            float& c = C[i * ldc + j];
            c = float(alpha * sum + (beta == 0 ? 0.0 : double(beta) * c));  // beta 0 ignores C
        }
    }
}

void gemm_openblas_threaded(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                            float alpha, const float* A, int64_t lda, const float* B,
                            int64_t ldb, float beta, float* C, int64_t ldc) {
    make_openblas_single_threaded();
    openblas_set_num_threads(num_threads());
    sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    openblas_set_num_threads(1);
}

int64_t flop_count() { return g_flops.load(); }
void reset_flop_count() { g_flops = 0; }

void set_shape_log(std::vector<GemmShape>* log) {
    std::lock_guard<std::mutex> lock(g_shape_log_mutex);
    g_shape_log.store(log);
}

}  // namespace pf::blas
