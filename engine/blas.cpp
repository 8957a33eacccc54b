// blas.cpp — the one file that talks to OpenBLAS (cblas_sgemm, cblas_sgemv), plus the naive
// reference and the benchmarks' instruments (blas_instruments.h).
#include "engine/blas.h"

#include "engine/allocator.h"
#include "engine/blas_instruments.h"
#include "engine/thread_pool.h"

#include <cblas.h>

#include <strings.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <vector>

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

// Partial products of K blocks, summed in a fixed order into C:
//   C = alpha (P_0 + P_1 + ... + P_{kb-1}) + beta C      P_k: (M x N), rows [r0, r1)
void sum_k_blocks(const float* partials, int64_t k_blocks, int64_t M, int64_t N, float alpha,
                  float beta, float* C, int64_t ldc) {
    parallel_for(M, std::max<int64_t>(1, 4096 / std::max<int64_t>(N, 1)), [&](int64_t r0, int64_t r1) {
        for (int64_t i = r0; i < r1; ++i) {
            float* c = C + i * ldc;
            for (int64_t j = 0; j < N; ++j) {
                float sum = partials[i * N + j];
                for (int64_t k = 1; k < k_blocks; ++k) sum += partials[(k * M + i) * N + j];
                c[j] = alpha * sum + (beta == 0.0f ? 0.0f : beta * c[j]);  // beta 0 ignores C
            }
        }
    });
}

// What cutting a product costs, as a fraction of its time on one thread. Each cblas_sgemm
// call packs its own panels of A and B, so every row block of C packs op(B) again,
// every column block op(A) again, and every slice of K writes a partial C that is then
// read back and summed. Measured on one thread with SkylakeX kernels (docs/speed.md):
// blocks of 512 rows cost ~4%, of 256 rows ~8%, of 128 rows 10-25%; 16 slices of
// K = 8192 ~6%, 64 slices ~60%.
double cutting_overhead(int64_t M, int64_t N, int64_t K, const Partition& p) {
    constexpr double kPerRowBlock = 20, kPerColumnBlock = 20, kPerSlice = 30;
    return (p.row_blocks > 1 ? kPerRowBlock * double(p.row_blocks) / double(M) : 0) +
           (p.col_blocks > 1 ? kPerColumnBlock * double(p.col_blocks) / double(N) : 0) +
           (p.k_blocks > 1 ? kPerSlice * double(p.k_blocks) / double(K) : 0);
}

// The partition (see blas.h): powers of two in each direction, the most pieces up to the
// target whose cutting costs at most kMaxCuttingOverhead of the product, and among
// those the cheapest.
Partition plan_with_target(int64_t M, int64_t N, int64_t K, int64_t target, bool allow_k_split) {
    Partition best;
    double best_cost = 0;
    for (int64_t rb = 1; rb <= std::min(target, M); rb *= 2)
        for (int64_t cb = 1; rb * cb <= target && cb <= N; cb *= 2)
            for (int64_t kb = 1; rb * cb * kb <= target && kb <= K; kb *= 2) {
                if (kb > 1 && (!allow_k_split || kb * M * N > kMaxPartialFloats)) break;
                const Partition p{rb, cb, kb};
                const double cost = cutting_overhead(M, N, K, p);
                if (cost > kMaxCuttingOverhead) continue;
                if (p.pieces() > best.pieces() || (p.pieces() == best.pieces() && cost < best_cost)) {
                    best = p;
                    best_cost = cost;
                }
            }
    return best;
}

}  // namespace

Partition plan_product(int64_t M, int64_t N, int64_t K) {
    if (M * N * K < kMinParallelWork) return {};
    return plan_with_target(M, N, K, std::clamp<int64_t>(M * N * K / kWorkPerPiece, 1, kTargetPieces),
                            true);
}

namespace {

// One tile of C with the rows [m0, m1), columns [n0, n1) and inner indices [k0, k1) of
// the product: op(A)'s rows m0.. start at row m0 of A (column m0 if A is stored
// transposed), and its columns k0.. at column k0 (row k0); op(B) likewise.
void tile_product(bool trans_a, bool trans_b, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                  int64_t k0, int64_t k1, float alpha, const float* A, int64_t lda, const float* B,
                  int64_t ldb, float beta, float* C, int64_t ldc) {
    const float* A_tile = trans_a ? A + k0 * lda + m0 : A + m0 * lda + k0;
    const float* B_tile = trans_b ? B + n0 * ldb + k0 : B + k0 * ldb + n0;
    sgemm(trans_a, trans_b, m1 - m0, n1 - n0, k1 - k0, alpha, A_tile, lda, B_tile, ldb, beta,
          C + m0 * ldc + n0, ldc);
}

// Block `index` of `blocks` equal blocks of [0, size): [begin, end).
std::pair<int64_t, int64_t> block_range(int64_t size, int64_t blocks, int64_t index) {
    const int64_t step = (size + blocks - 1) / blocks;
    return {std::min(size, index * step), std::min(size, (index + 1) * step)};
}

// Piece t of `plan` for one product: slice t % k_blocks of K, of the tile t / k_blocks
// (row block tile / col_blocks, column block tile % col_blocks). With K slices, the piece
// writes its part of the partial product P_k instead of C.
void run_tile(const Partition& plan, int64_t t, bool trans_a, bool trans_b, int64_t M, int64_t N,
              int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
              float beta, float* C, int64_t ldc, float* partials) {
    const int64_t k = t % plan.k_blocks, tile = t / plan.k_blocks;
    auto [m0, m1] = block_range(M, plan.row_blocks, tile / plan.col_blocks);
    auto [n0, n1] = block_range(N, plan.col_blocks, tile % plan.col_blocks);
    if (m0 == m1 || n0 == n1) return;
    if (plan.k_blocks == 1) {
        tile_product(trans_a, trans_b, m0, m1, n0, n1, 0, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    auto [k0, k1] = block_range(K, plan.k_blocks, k);
    float* P = partials + k * M * N;  // P_k: (M x N), row stride N
    if (k0 == k1) {
        for (int64_t i = m0; i < m1; ++i) std::fill(P + i * N + n0, P + i * N + n1, 0.0f);
        return;
    }
    tile_product(trans_a, trans_b, m0, m1, n0, n1, k0, k1, 1.0f, A, lda, B, ldb, 0.0f, P, N);
}

}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
          const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
          int64_t ldc) {
    if (M == 0 || N == 0) return;
    make_openblas_single_threaded();
    if (g_shape_log) log_shape({trans_a, trans_b, M, N, K, 1});
    const Partition plan = plan_product(M, N, K);
    // Small products are not worth waking threads for; inside a parallel region each
    // thread already has its own product.
    if (plan.pieces() == 1 || inside_parallel_region()) {
        sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    // P_0 .. P_{kb-1}, each (M x N), written by the tiles before they are summed.
    ScratchBuffer<float> partials(plan.k_blocks > 1 ? size_t(plan.k_blocks * M * N) : 0);
    parallel_pieces(plan.pieces(), [&](int64_t t) {
        run_tile(plan, t, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc,
                 partials.get());
    });
    if (plan.k_blocks > 1) sum_k_blocks(partials.get(), plan.k_blocks, M, N, alpha, beta, C, ldc);
}

// Many products: each cut into tiles of C (never K: no partial buffers per product), so
// that batch x tiles reaches the target.
Partition plan_batched(int64_t batch, int64_t M, int64_t N, int64_t K) {
    const int64_t work = batch * M * N * K;
    if (work < kMinParallelWork) return {};
    const int64_t target = std::clamp<int64_t>(work / kWorkPerPiece, 1, kTargetPieces);
    return plan_with_target(M, N, K, (target + batch - 1) / batch, false);
}

void gemm_batched(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                  float alpha, const float* A, int64_t lda, int64_t stride_a, const float* B,
                  int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc,
                  int64_t stride_c) {
    if (batch == 1) {
        gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    if (batch == 0 || M == 0 || N == 0) return;
    make_openblas_single_threaded();
    if (g_shape_log) log_shape({trans_a, trans_b, M, N, K, batch});
    const Partition plan = plan_batched(batch, M, N, K);
    parallel_pieces(batch * plan.pieces(), [&](int64_t piece) {
        const int64_t i = piece / plan.pieces();
        run_tile(plan, piece % plan.pieces(), trans_a, trans_b, M, N, K, alpha, A + i * stride_a,
                 lda, B + i * stride_b, ldb, beta, C + i * stride_c, ldc, nullptr);
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

std::string core_name() { return openblas_get_corename(); }
std::string library_config() { return openblas_get_config(); }

int kernel_level(const std::string& core) {
    static const std::vector<std::pair<std::vector<std::string>, int>> levels = {
        {{"Prescott", "Core2", "Penryn", "Dunnington", "Atom", "Opteron", "Opteron_SSE3",
          "Barcelona", "Nano", "Katmai", "Coppermine", "Northwood", "Banias", "Athlon"}, 0},
        {{"Nehalem"}, 1},
        {{"Sandybridge", "Bulldozer"}, 2},
        {{"Haswell", "Zen", "Piledriver", "Steamroller", "Excavator"}, 3},
        {{"SkylakeX", "Cooperlake", "SapphireRapids"}, 4},
    };
    for (const auto& [names, level] : levels)
        for (const std::string& name : names)
            if (strcasecmp(name.c_str(), core.c_str()) == 0) return level;
    return -1;
}

std::string kernel_for(const CpuFeatures& cpu) {
    if (cpu.avx512) return "SkylakeX";
    if (cpu.avx2_fma) return cpu.vendor == "AuthenticAMD" || cpu.vendor == "HygonGenuine" ? "Zen" : "Haswell";
    if (cpu.avx) return "Sandybridge";
    if (cpu.sse4_2) return "Nehalem";
    return "";
}

std::string kernel_to_force(const CpuFeatures& cpu, const std::string& running) {
    const std::string wanted = kernel_for(cpu);
    const int level = kernel_level(running);
    if (wanted.empty() || level < 0 || level >= kernel_level(wanted)) return "";
    return wanted;
}

int64_t flop_count() { return g_flops.load(); }
void reset_flop_count() { g_flops = 0; }

void set_shape_log(std::vector<GemmShape>* log) {
    std::lock_guard<std::mutex> lock(g_shape_log_mutex);
    g_shape_log.store(log);
}

}  // namespace pf::blas
