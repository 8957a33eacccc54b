// ops_attention.cpp — the causal products behind causal attention: the chunked causal
// dot product of linear attention, and the lower-triangular product of exact attention.
//
// 1. causal_dot_product, with a per-position log-scale c (a stabiliser; 0 if absent):
//
//   Y_i = sum_{j <= i} e^(c_j - c_i) (q_i . k_j) v_j    q, k: (..., L, m), v: (..., L, dv)
//
// Causal linear attention (nn/attention.cpp) is Y / (the same with v = 1). FAVOR+ keys
// carry e^-c_j, with c_j the largest exponent among keys 0..j: the factor e^(c_j - c_i)
// puts every key on the scale of the query's own prefix, so that the output at i
// depends on positions <= i alone — also in float32 rounding — and every factor is
// at most 1 (c never falls along the sequence). A factor is clamped at 1 should c
// fall anyway: only where the keys are zero (padding before the first real key).
//
// With the prefix sums S_i = sum_{j <= i} e^(c_j - c_i) k_j v_j^T, Y_i = S_i^T q_i. The
// reference below builds the L x L matrix instead. The fused op never stores either.
// It cuts the sequence into chunks of C positions. Chunk k's output is its own
// triangle plus the past, P_k (m x dv): the sum over chunks 0..k-1 on the scale of the
// position before the chunk, c_p:
//
//   Y_c = tril(Q_c K_c^T o E) V_c  +  diag(e^(c_p - c_i)) Q_c P_k     (chunk, then past)
//
// where E_ij = e^(c_j - c_i) and o multiplies elementwise. Three phases:
//   1. each (batch item, chunk): the triangle, and the chunk's own state on the scale
//      of its last position c_l:   T_k = K_c^T diag(e^(c_j - c_l)) V_c   (m x dv);
//   2. a scan over the chunks in order:  P_0 = 0,  P_{k+1} = e^(c_p - c_l) P_k + T_k
//      (c_p, c_l: the last positions of chunks k-1 and k). Cheap, m dv adds a chunk,
//      and each of the m x dv entries is its own scan: a piece per (batch item, row);
//   3. each (batch item, chunk k >= 1): the past, one GEMM adding to Y_c.
// Phases 1 and 3, nearly all the work, are GEMMs of C-sized blocks in batch x chunks
// independent pieces; walking each item's chunks in turn would give only batch pieces.
// In each phase every output is written by one piece, and the scan adds in an order
// fixed by the sizes, so results do not depend on the thread count. The price: the
// states of all chunks but the last, batch x (chunks - 1) x m x dv floats, live during
// the call (7.5 MB at batch 32, L 1024, C 128, m 128, dv 65; backward keeps two sets).
//
// Why chunks and not one position at a time: a per-position loop is rank-1 updates
// and matrix-vector products, memory-bound; the chunked form runs at BLAS speed. Its
// cost per position is 2C(m + dv) + 4 m dv multiply-adds, so C should be small but
// big enough for BLAS. The triangle inside a chunk is summed by a loop over j <= i
// (lower_triangular_product), never by a GEMM over the whole block: that would
// multiply the masked zeros by the later rows of V, and 0 * inf = NaN would carry a
// later NaN or inf back to row i. P_k adds chunks before k only, so the output at i
// depends on positions <= i alone, to the bit.
//
// Backward, with G = dL/dY and R_k = the sum over positions after chunk k of
// e^(c_l - c_i) q_i g_i^T (m x dv, on the scale of chunk k's last position c_l):
//   dQ_c = [diag(e^(c_p - c_i)) G_c | tril(G_c V_c^T o E)] [P_k^T ; K_c]
//   dK_c = [diag(e^(c_j - c_l)) V_c | triu(V_c G_c^T o E^T)] [R_k^T ; Q_c]
//   dV_c = [diag(e^(c_j - c_l)) K_c | triu(K_c Q_c^T o E^T)] [R_k ; G_c]
// in the same three phases:
//   1. each (batch item, chunk k but the last): T_k^T (dv x m, as dQ takes it), and
//      chunk k+1's  U_{k+1} = Q_c^T diag(e^(c_p - c_i)) G_c  (m x dv; c_p: chunk k's
//      last position);
//   2. the scan for P, and one in reverse order for R:  R_last = 0,
//      R_k = e^(c_l - c_n) R_{k+1} + U_{k+1}   (c_l, c_n: chunk k's and k+1's last);
//   3. each (batch item, chunk): the three products.
// tril keeps j <= i; tril(A)^T = triu(A^T) is computed directly: tril(G V^T)^T =
// triu(V G^T). Each pair of products that share an output is one GEMM over a
// side-by-side block.
//
// 2. causal_matmul(p, v) = tril(p) v, exact causal attention's product of the
// probabilities with the values: GEMMs for the blocks below the diagonal, the
// triangle of each diagonal block by lower_triangular_product, for the same reason.
//
// 3. shifted_exp(u, s, eps) = e^(u - s) + eps, s one number per row of u: FAVOR+'s
// feature map after its product (nn/attention.cpp). Composed of broadcast, sub, exp
// and add_scalar it would take four passes over the (L, m) features and keep two
// copies for backward; fused, it is one pass and keeps only y, since
//   du = g o (y - eps),   ds = -sum_j du_j   (row by row).
#include "engine/allocator.h"
#include "engine/blas.h"
#include "engine/kernels.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

namespace pf {

namespace {

constexpr int64_t kTriangleBlock = 64;  // rows of causal_matmul's diagonal blocks

// In an n x n block with row stride ld: zero the entries above the diagonal (tril,
// keep j <= i) or below it (triu, keep j >= i).
void keep_lower_triangle(float* a, int64_t n, int64_t ld) {
    for (int64_t i = 0; i < n; ++i) std::fill(a + i * ld + i + 1, a + i * ld + n, 0.0f);
}
void keep_upper_triangle(float* a, int64_t n, int64_t ld) {
    for (int64_t i = 0; i < n; ++i) std::fill(a + i * ld, a + i * ld + i, 0.0f);
}

// Y (n x dv) += tril(A) V for A (n x n, row stride lda), V (n x dv): row i reads the
// rows j <= i of V only, so a NaN or inf in a later row never reaches it. Halving:
//   [Y_1]    [A_11   0  ] [V_1]     Y_1 += tril(A_11) V_1
//   [Y_2] += [A_21 A_22 ] [V_2]:    Y_2 += A_21 V_1 (a GEMM) + tril(A_22) V_2
// down to triangles of 16 rows, summed by loops.
void lower_triangular_product(const float* A, int64_t n, int64_t lda, const float* V,
                              int64_t dv, float* Y) {
    if (n > 16) {
        const int64_t top = n / 2;
        lower_triangular_product(A, top, lda, V, dv, Y);
        blas::gemm(false, false, n - top, dv, top, 1, A + top * lda, lda, V, dv, 1, Y + top * dv, dv);
        lower_triangular_product(A + top * lda + top, n - top, lda, V + top * dv, dv, Y + top * dv);
        return;
    }
    for (int64_t i = 0; i < n; ++i) {
        float* y = Y + i * dv;
        for (int64_t j = 0; j <= i; ++j) {
            const float a = A[i * lda + j];
            const float* v = V + j * dv;
            for (int64_t col = 0; col < dv; ++col) y[col] += a * v[col];
        }
    }
}

// Copy an n x width block (row stride `width`) into columns [column, column + width)
// of a matrix with row stride ld, each row i times scale[i].
void copy_scaled_block(const float* from, int64_t n, int64_t width, const float* scale, float* to,
                       int64_t ld) {
    for (int64_t i = 0; i < n; ++i)
        for (int64_t col = 0; col < width; ++col) to[i * ld + col] = scale[i] * from[i * width + col];
}

// The n x width rows at `from`, row i times scale[i]: `from` itself when every scale is
// 1 (the usual case: the stabiliser rarely moves), else a scaled copy in `buffer`.
const float* scaled_rows(const float* from, int64_t n, int64_t width, const float* scale,
                         float* buffer) {
    if (std::all_of(scale, scale + n, [](float f) { return f == 1.0f; })) return from;
    copy_scaled_block(from, n, width, scale, buffer, width);
    return buffer;
}

// n floats of working space, uninitialised (a std::vector would zero them first, tens
// of MB of stores per call at the reference size for nothing), from the buffer cache.
using Floats = ScratchBuffer<float>;
Floats uninitialised(int64_t n) { return Floats(size_t(n)); }

// e^(a - b), at most 1: the factor that moves a sum from the scale of a to that of b.
float rescale(float a, float b) { return a >= b ? 1.0f : std::exp(a - b); }

struct Sizes {
    int64_t batch, L, m, dv;
};

Sizes check_sizes(const Tensor& q, const Tensor& k, const Tensor& v) {
    PF_CHECK(q.defined() && k.defined() && v.defined(), "causal_dot_product: undefined operand");
    PF_CHECK(q.dim() >= 2 && q.shape() == k.shape(),
             "causal_dot_product: q {} and k {} must have equal shapes (..., L, m)",
             shape_str(q.shape()), shape_str(k.shape()));
    Shape lead_q(q.shape().begin(), q.shape().end() - 1), lead_v(v.shape().begin(), v.shape().end() - 1);
    PF_CHECK(v.dim() == q.dim() && lead_q == lead_v,
             "causal_dot_product: v {} must be (..., L, dv) with the leading axes of q {}",
             shape_str(v.shape()), shape_str(q.shape()));
    int64_t L = q.shape()[q.dim() - 2], m = q.shape().back(), dv = v.shape().back();
    return {L == 0 ? 0 : numel(lead_q) / L, L, m, dv};
}

// One chunk's view of the log-scales c (n values starting at its first position).
struct ChunkScales {
    const float* c;
    int64_t n;
    bool varies;  // false: one value throughout, so every E_ij is 1
    ChunkScales(const float* c, int64_t n) : c(c), n(n), varies(false) {
        for (int64_t i = 1; i < n; ++i) varies |= c[i] != c[0];
    }
    float last() const { return c[n - 1]; }
    // A (n x n, row stride ld) o= E, E_ij = e^(c_j - c_i), for j <= i (transposed: j >= i).
    void apply_to_lower(float* a, int64_t ld) const {
        if (!varies) return;
        for (int64_t i = 0; i < n; ++i)
            for (int64_t j = 0; j <= i; ++j) a[i * ld + j] *= rescale(c[j], c[i]);
    }
    void apply_to_upper(float* a, int64_t ld) const {
        if (!varies) return;
        for (int64_t j = 0; j < n; ++j)
            for (int64_t i = j; i < n; ++i) a[j * ld + i] *= rescale(c[j], c[i]);
    }
};

// How one call is cut: batch items of L positions, chunks of C positions (the last
// may be shorter), and each item's chunk states, `slots` of m x dv floats: slot k for
// the state after chunk k, k < chunks - 1 (no chunk reads the state after the last).
struct Chunking {
    Sizes s;
    int64_t C, chunks, slots;
    const float* c;  // the log-scales, batch x L
    Chunking(Sizes s, int64_t C, const float* c)
        : s(s), C(C), chunks((s.L + C - 1) / C), slots(std::max<int64_t>(chunks - 1, 0)), c(c) {}
    int64_t first(int64_t k) const { return k * C; }
    int64_t size(int64_t k) const { return std::min(C, s.L - k * C); }
    // Offsets of chunk k of batch item b in the (L, m) and (L, dv) operands.
    int64_t in_m(int64_t b, int64_t k) const { return (b * s.L + first(k)) * s.m; }
    int64_t in_dv(int64_t b, int64_t k) const { return (b * s.L + first(k)) * s.dv; }
    // Offset of batch item b's slot k in its states.
    int64_t slot(int64_t b, int64_t k) const { return (b * slots + k) * s.m * s.dv; }
    Floats new_states() const { return uninitialised(s.batch * slots * s.m * s.dv); }
    ChunkScales scales(int64_t b, int64_t k) const {
        return ChunkScales(c + b * s.L + first(k), size(k));
    }
    float last_c(int64_t b, int64_t k) const { return c[b * s.L + first(k) + size(k) - 1]; }
};

// Forward phase 1, chunk k of batch item b:
//   Y_c = tril(Q_c K_c^T o E) V_c,   and unless k is the last chunk, into slot k,
//   T_k = K_c^T diag(e^(c_j - c_l)) V_c   (m x dv)
void forward_chunk(const Chunking& at, int64_t b, int64_t k, const float* Q, const float* K,
                   const float* V, float* Y, float* states) {
    const int64_t m = at.s.m, dv = at.s.dv, n = at.size(k);
    const float *Qc = Q + at.in_m(b, k), *Kc = K + at.in_m(b, k), *Vc = V + at.in_dv(b, k);
    float* Yc = Y + at.in_dv(b, k);
    const ChunkScales scales = at.scales(b, k);
    Floats A = uninitialised(n * n), factor = uninitialised(n), scaled_v = uninitialised(n * dv);
    blas::gemm(false, true, n, n, m, 1, Qc, m, Kc, m, 0, A.get(), n);
    scales.apply_to_lower(A.get(), n);
    std::fill(Yc, Yc + n * dv, 0.0f);
    lower_triangular_product(A.get(), n, n, Vc, dv, Yc);
    if (k == at.slots) return;  // the last chunk
    for (int64_t j = 0; j < n; ++j) factor[j] = rescale(scales.c[j], scales.last());
    const float* Vs = scaled_rows(Vc, n, dv, factor.get(), scaled_v.get());
    blas::gemm(true, false, m, dv, n, 1, Kc, m, Vs, dv, 0, states + at.slot(b, k), dv);
}

// Phase 2, in place over each batch item's slots (rows x width floats each; slot k on
// the scale of chunk k's last position c_l(k)), in order, forward or reverse:
//   slot k += e^(c_l(k-1) - c_l(k)) slot k-1,   k = 1, 2, ...          (T_k → P_{k+1})
//   slot k += e^(c_l(k) - c_l(k+1)) slot k+1,   k = slots - 2, ..., 0  (U_{k+1} → R_k)
// Every entry is its own scan, so the batch x rows rows split over any number of
// threads with the same result; each row walks its slots in order.
void scan_states(const Chunking& at, float* states, int64_t rows, int64_t width, bool reverse) {
    const int64_t size = rows * width;
    const int64_t grain = kernels::row_grain(width * at.slots);
    parallel_for(at.s.batch * rows, grain, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
            const int64_t b = r / rows;
            float* row = states + at.slot(b, 0) + r % rows * width;
            for (int64_t step = 1; step < at.slots; ++step) {
                const int64_t k = reverse ? at.slots - 1 - step : step, from = reverse ? k + 1 : k - 1;
                const int64_t earlier = std::min(k, from), later = std::max(k, from);
                const float keep = rescale(at.last_c(b, earlier), at.last_c(b, later));
                if (keep == 0.0f) continue;  // underflow: drop the older sum (0 * inf = NaN)
                const float* older = row + from * size;
                float* sum = row + k * size;
                for (int64_t col = 0; col < width; ++col) sum[col] += keep * older[col];
            }
        }
    });
}

// Forward phase 3, chunk k >= 1 of batch item b, with P_k in slot k - 1:
//   Y_c += diag(e^(c_p - c_i)) Q_c P_k
void add_past(const Chunking& at, int64_t b, int64_t k, const float* Q, const float* states, float* Y) {
    const int64_t m = at.s.m, dv = at.s.dv, n = at.size(k);
    const ChunkScales scales = at.scales(b, k);
    const float c_p = at.last_c(b, k - 1);
    Floats factor = uninitialised(n), scaled_q = uninitialised(n * m);
    for (int64_t i = 0; i < n; ++i) factor[i] = rescale(c_p, scales.c[i]);
    const float* Qs = scaled_rows(Q + at.in_m(b, k), n, m, factor.get(), scaled_q.get());
    const float* P = states + at.slot(b, k - 1);
    blas::gemm(false, false, n, dv, m, 1, Qs, m, P, dv, 1, Y + at.in_dv(b, k), dv);
}

// Backward phase 1, slot k of batch item b (chunk k is not the last):
//   forward states:  T_k^T = V_c^T diag(e^(c_j - c_l)) K_c     (dv x m, of chunk k)
//   reverse states:  U_{k+1} = Q_c^T diag(e^(c_p - c_i)) G_c   (m x dv, of chunk k+1)
void backward_states(const Chunking& at, int64_t b, int64_t k, const float* Q, const float* K,
                     const float* V, const float* G, float* forward_states, float* reverse_states) {
    const int64_t m = at.s.m, dv = at.s.dv;
    Floats factor = uninitialised(at.C), scaled = uninitialised(at.C * std::max(m, dv));
    ChunkScales scales = at.scales(b, k);
    for (int64_t j = 0; j < scales.n; ++j) factor[j] = rescale(scales.c[j], scales.last());
    const float* Ks = scaled_rows(K + at.in_m(b, k), scales.n, m, factor.get(), scaled.get());
    blas::gemm(true, false, dv, m, scales.n, 1, V + at.in_dv(b, k), dv, Ks, m, 0,
               forward_states + at.slot(b, k), m);
    const float c_p = scales.last();  // chunk k + 1's c_p
    scales = at.scales(b, k + 1);
    for (int64_t i = 0; i < scales.n; ++i) factor[i] = rescale(c_p, scales.c[i]);
    const float* Gs = scaled_rows(G + at.in_dv(b, k + 1), scales.n, dv, factor.get(), scaled.get());
    blas::gemm(true, false, m, dv, scales.n, 1, Q + at.in_m(b, k + 1), m, Gs, dv, 0,
               reverse_states + at.slot(b, k), dv);
}

// out (n x width) = [left_state | left_chunk] [state ; chunk]: one GEMM over the
// side-by-side blocks, left n x (h + n), right (h + n) x width; without a state (P_0,
// R of the last chunk: 0), over the chunk's blocks alone.
void side_by_side_product(const float* left, const float* right, int64_t n, int64_t h, int64_t width,
                          bool with_state, float* out) {
    const int64_t ld = h + n, skip = with_state ? 0 : h;
    blas::gemm(false, false, n, width, ld - skip, 1, left + skip, ld, right + skip * width, width, 0,
               out, width);
}

// Backward phase 3, chunk k of batch item b: dQ_c with P_k (slot k - 1 of the forward
// states, transposed), dK_c and dV_c with R_k (slot k of the reverse states).
void backward_chunk(const Chunking& at, int64_t b, int64_t k, const float* Q, const float* K,
                    const float* V, const float* G, const float* forward_states,
                    const float* reverse_states, float* dQ, float* dK, float* dV) {
    const int64_t m = at.s.m, dv = at.s.dv, n = at.size(k), wide = std::max(m, dv);
    const float *Qc = Q + at.in_m(b, k), *Kc = K + at.in_m(b, k), *Vc = V + at.in_dv(b, k),
                *Gc = G + at.in_dv(b, k);
    const ChunkScales scales = at.scales(b, k);
    const bool past = k > 0, future = k < at.slots;
    Floats left = uninitialised(n * (wide + n)), right = uninitialised((wide + n) * wide),
           factor = uninitialised(n);
    // dQ_c = [diag(e^(c_p - c_i)) G_c | tril(G_c V_c^T o E)] [P_k^T ; K_c]
    int64_t ld = dv + n;
    if (past) {
        const float c_p = at.last_c(b, k - 1);
        for (int64_t i = 0; i < n; ++i) factor[i] = rescale(c_p, scales.c[i]);
        copy_scaled_block(Gc, n, dv, factor.get(), left.get(), ld);
        std::copy_n(forward_states + at.slot(b, k - 1), dv * m, right.get());
    }
    blas::gemm(false, true, n, n, dv, 1, Gc, dv, Vc, dv, 0, left.get() + dv, ld);
    keep_lower_triangle(left.get() + dv, n, ld);
    scales.apply_to_lower(left.get() + dv, ld);
    std::copy_n(Kc, n * m, right.get() + dv * m);
    side_by_side_product(left.get(), right.get(), n, dv, m, past, dQ + at.in_m(b, k));
    // dK_c = [diag(e^(c_j - c_l)) V_c | triu(V_c G_c^T o E^T)] [R_k^T ; Q_c]
    for (int64_t j = 0; j < n; ++j) factor[j] = rescale(scales.c[j], scales.last());
    const float* R = future ? reverse_states + at.slot(b, k) : nullptr;
    if (future) {
        copy_scaled_block(Vc, n, dv, factor.get(), left.get(), ld);
        for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < dv; ++j) right[j * m + i] = R[i * dv + j];
    }
    blas::gemm(false, true, n, n, dv, 1, Vc, dv, Gc, dv, 0, left.get() + dv, ld);
    keep_upper_triangle(left.get() + dv, n, ld);
    scales.apply_to_upper(left.get() + dv, ld);
    std::copy_n(Qc, n * m, right.get() + dv * m);
    side_by_side_product(left.get(), right.get(), n, dv, m, future, dK + at.in_m(b, k));
    // dV_c = [diag(e^(c_j - c_l)) K_c | triu(K_c Q_c^T o E^T)] [R_k ; G_c]
    ld = m + n;
    if (future) {
        copy_scaled_block(Kc, n, m, factor.get(), left.get(), ld);
        std::copy_n(R, m * dv, right.get());
    }
    blas::gemm(false, true, n, n, m, 1, Kc, m, Qc, m, 0, left.get() + m, ld);
    keep_upper_triangle(left.get() + m, n, ld);
    scales.apply_to_upper(left.get() + m, ld);
    std::copy_n(Gc, n * dv, right.get() + m * dv);
    side_by_side_product(left.get(), right.get(), n, m, dv, future, dV + at.in_dv(b, k));
}

// The log-scales as one float per (batch item, position): c itself, or zeros.
std::vector<float> log_scales_of(const Tensor& log_scale, const Tensor& q, Sizes s) {
    if (!log_scale.defined()) return std::vector<float>(s.batch * s.L, 0.0f);
    Shape want(q.shape().begin(), q.shape().end() - 1);
    PF_CHECK(log_scale.shape() == want, "causal_dot_product: log_scale {} must be {} (..., L)",
             shape_str(log_scale.shape()), shape_str(want));
    return log_scale.to_vector();
}

}  // namespace

// causal_dot_product: Y_i = sum_{j <= i} e^(c_j - c_i) (q_i . k_j) v_j (see the top of the
// file; gradients flow to q, k, v, c is a constant)
//   q, k: (..., L, m), v: (..., L, dv), c: (..., L) or undefined (all 0) → (..., L, dv).
//   Parallel in pieces of (batch item, chunk), fixed by the sizes: forward batch x
//   chunks, then batch x (chunks - 1) pieces; backward batch x (chunks - 1), then
//   batch x chunks. At batch 32 (8 x 4 heads), L 1024, C 128: 256 and 224 pieces. The
//   scans between them: batch x m rows (4096), backward also batch x dv (2080).
Tensor causal_dot_product(const Tensor& q, const Tensor& k, const Tensor& v, int64_t chunk,
                          const Tensor& log_scale) {
    Sizes s = check_sizes(q, k, v);
    PF_CHECK(chunk >= 1, "causal_dot_product: chunk size {} must be positive", chunk);
    auto c = std::make_shared<const std::vector<float>>(log_scales_of(log_scale, q, s));
    Tensor y = Tensor::empty(v.shape());
    const float *Q = q.data(), *K = k.data(), *V = v.data();
    float* Y = y.mutable_data();
    const Chunking at(s, chunk, c->data());
    Floats states = at.new_states();  // T_k, then P_{k+1}
    parallel_pieces(s.batch * at.chunks, [&](int64_t piece) {
        forward_chunk(at, piece / at.chunks, piece % at.chunks, Q, K, V, Y, states.get());
    });
    scan_states(at, states.get(), s.m, s.dv, /*reverse=*/false);
    parallel_pieces(s.batch * at.slots, [&](int64_t piece) {
        add_past(at, piece / at.slots, piece % at.slots + 1, Q, states.get(), Y);
    });
    return record("causal_dot_product", y, {q, k, v},
                  [s, chunk, c, sq = SavedTensor(q), sk = SavedTensor(k), sv = SavedTensor(v)](
                      const Tensor& g) {
                      Tensor q = sq.get(), k = sk.get(), v = sv.get();
                      Tensor dq = Tensor::empty(q.shape()), dk = Tensor::empty(k.shape()),
                             dv = Tensor::empty(v.shape());
                      const float *Q = q.data(), *K = k.data(), *V = v.data(), *G = g.data();
                      float *dQ = dq.mutable_data(), *dK = dk.mutable_data(), *dV = dv.mutable_data();
                      const Chunking at(s, chunk, c->data());
                      // T_k^T, then P_{k+1}^T (dv x m); U_{k+1}, then R_k (m x dv)
                      Floats forward_states = at.new_states(), reverse_states = at.new_states();
                      parallel_pieces(s.batch * at.slots, [&](int64_t piece) {
                          backward_states(at, piece / at.slots, piece % at.slots, Q, K, V, G,
                                          forward_states.get(), reverse_states.get());
                      });
                      scan_states(at, forward_states.get(), s.dv, s.m, /*reverse=*/false);
                      scan_states(at, reverse_states.get(), s.m, s.dv, /*reverse=*/true);
                      parallel_pieces(s.batch * at.chunks, [&](int64_t piece) {
                          backward_chunk(at, piece / at.chunks, piece % at.chunks, Q, K, V, G,
                                         forward_states.get(), reverse_states.get(), dQ, dK, dV);
                      });
                      return Grads{dq, dk, dv};
                  });
}

// The reference, built from primitives (so its gradients come from theirs) as the
// L x L matrix the fused op never forms:
//   Y = (tril(Q K^T) o E) V,  E_ij = e^(c_j - c_i) (1 without c).
Tensor causal_dot_product_reference(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& log_scale) {
    Sizes s = check_sizes(q, k, v);
    std::vector<float> c = log_scales_of(log_scale, q, s);
    Shape weights_shape(q.shape().begin(), q.shape().end() - 1);
    weights_shape.push_back(s.L);  // (..., L, L)
    std::vector<float> weights(s.batch * s.L * s.L, 0.0f);
    for (int64_t b = 0; b < s.batch; ++b)
        for (int64_t i = 0; i < s.L; ++i)
            for (int64_t j = 0; j <= i; ++j)
                weights[(b * s.L + i) * s.L + j] = rescale(c[b * s.L + j], c[b * s.L + i]);
    Tensor scores = mul(matmul(q, k, false, true), Tensor::from_data(weights_shape, weights));
    return matmul(scores, v);
}

// causal_matmul:  Y = tril(P) V, i.e. y_i = sum_{j <= i} p_ij v_j
//   dP = tril(G V^T),   dV = tril(P)^T G
//   p: (..., L, L), v: (..., L, d) → (..., L, d). Entries of p above the diagonal are
//   never read. Forward, per block of C rows starting at r: Y_r = P[r, :r] V[:r] (a GEMM)
//   + the block's own triangle. Backward, per block of C columns: dV_r = P[r+C:, r]^T
//   G[r+C:] (a GEMM) + the triangle's transpose times G_r.
Tensor causal_matmul(const Tensor& p, const Tensor& v) {
    constexpr int64_t C = kTriangleBlock;
    PF_CHECK(p.dim() >= 2 && p.shape()[p.dim() - 1] == p.shape()[p.dim() - 2],
             "causal_matmul: p {} must be (..., L, L)", shape_str(p.shape()));
    Shape lead_p(p.shape().begin(), p.shape().end() - 1), lead_v(v.shape().begin(), v.shape().end() - 1);
    PF_CHECK(v.dim() == p.dim() && lead_p == lead_v,
             "causal_matmul: v {} must be (..., L, d) with the leading axes of p {}",
             shape_str(v.shape()), shape_str(p.shape()));
    const int64_t L = p.shape().back(), d = v.shape().back(), batch = L == 0 ? 0 : numel(lead_p) / L;
    Tensor y = Tensor::empty(v.shape());
    const float *P = p.data(), *V = v.data();
    float* Y = y.mutable_data();
    parallel_pieces(batch, [&](int64_t b) {
        const float *Pb = P + b * L * L, *Vb = V + b * L * d;
        float* Yb = Y + b * L * d;
        for (int64_t r = 0; r < L; r += C) {
            const int64_t n = std::min(C, L - r);
            if (r == 0) std::fill(Yb, Yb + n * d, 0.0f);
            else blas::gemm(false, false, n, d, r, 1, Pb + r * L, L, Vb, d, 0, Yb + r * d, d);
            lower_triangular_product(Pb + r * L + r, n, L, Vb + r * d, d, Yb + r * d);
        }
    });
    return record("causal_matmul", y, {p, v},
                  [batch, L, d, sp = SavedTensor(p), sv = SavedTensor(v)](const Tensor& g) {
                      constexpr int64_t C = kTriangleBlock;
                      Tensor p = sp.get(), v = sv.get();
                      Tensor dp = Tensor::empty(p.shape()), dv = Tensor::empty(v.shape());
                      const float *P = p.data(), *V = v.data(), *G = g.data();
                      float *dP = dp.mutable_data(), *dV = dv.mutable_data();
                      parallel_pieces(batch, [&](int64_t b) {
                          const float *Pb = P + b * L * L, *Vb = V + b * L * d, *Gb = G + b * L * d;
                          float *dPb = dP + b * L * L, *dVb = dV + b * L * d;
                          blas::gemm(false, true, L, L, d, 1, Gb, d, Vb, d, 0, dPb, L);
                          keep_lower_triangle(dPb, L, L);
                          std::vector<float> triangle(C * C);
                          for (int64_t r = 0; r < L; r += C) {
                              const int64_t n = std::min(C, L - r), below = L - r - n;
                              for (int64_t i = 0; i < n; ++i)
                                  std::copy_n(Pb + (r + i) * L + r, n, triangle.data() + i * n);
                              keep_lower_triangle(triangle.data(), n, n);
                              blas::gemm(true, false, n, d, n, 1, triangle.data(), n, Gb + r * d, d,
                                         0, dVb + r * d, d);
                              if (below > 0)
                                  blas::gemm(true, false, n, d, below, 1, Pb + (r + n) * L + r, L,
                                             Gb + (r + n) * d, d, 1, dVb + r * d, d);
                          }
                      });
                      return Grads{dp, dv};
                  });
}

// u (..., m), s (..., 1) → y (..., m)
Tensor shifted_exp(const Tensor& u, const Tensor& s, float eps) {
    PF_CHECK(u.defined() && s.defined() && u.dim() >= 1 && s.dim() == u.dim() &&
                 s.shape().back() == 1 && numel(s.shape()) * u.shape().back() == u.numel(),
             "shifted_exp: s {} must be u's shape {} with a last axis of 1",
             s.defined() ? shape_str(s.shape()) : "undefined", u.defined() ? shape_str(u.shape()) : "undefined");
    const int64_t m = u.shape().back(), rows = s.numel();
    Tensor y = Tensor::empty(u.shape());
    const float *U = u.data(), *S = s.data();
    float* Y = y.mutable_data();
    parallel_for(rows, kernels::row_grain(m), [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r)
            for (int64_t j = 0; j < m; ++j) Y[r * m + j] = kernels::fast_exp(U[r * m + j] - S[r]) + eps;
    });
    return record("shifted_exp", y, {u, s}, [m, rows, eps, sy = SavedTensor(y)](const Tensor& g) {
        Tensor y = sy.get();
        Shape s_shape = y.shape();
        s_shape.back() = 1;
        Tensor du = Tensor::empty(y.shape()), ds = Tensor::empty(s_shape);
        const float *Y = y.data(), *G = g.data();
        float *dU = du.mutable_data(), *dS = ds.mutable_data();
        parallel_for(rows, kernels::row_grain(m), [&](int64_t begin, int64_t end) {
            for (int64_t r = begin; r < end; ++r) {
                float row_sum = 0.0f;
                for (int64_t j = 0; j < m; ++j) {
                    const float d = G[r * m + j] * (Y[r * m + j] - eps);
                    dU[r * m + j] = d;
                    row_sum += d;
                }
                dS[r] = -row_sum;
            }
        });
        return Grads{du, ds};
    });
}

}  // namespace pf
