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
// Phases 1 and 3, nearly all the work, are GEMMs of C-sized blocks in independent
// pieces; walking each item's chunks in turn would give only batch pieces.
//
// The three phases run over windows of W consecutive chunks, one window after another,
// so that only one window's states live at once: batch x (W + 1) x m x dv floats, the
// window's own and the state carried over from the window before (P before its first
// chunk; none for the first). Keeping the states of all chunks instead would take
// batch x (chunks - 1) x m x dv floats: 545 MB at batch x heads 8, L 65536, C 64, m 256,
// dv 65 (1024 chunks), twice that in backward, against O(L (m + dv)) for everything else.
// W depends on the sizes alone: ceil(64 / batch) chunks, enough pieces for 64 threads
// (at least 1, at most chunks), capped so that the states take at most 2^22 floats
// (16 MB) where that leaves W >= 1. At batch 32, L 1024, C 128, m 128, dv 65: W = 2 of
// the 8 chunks, 64 pieces a phase, 3.2 MB of states (7.5 MB unwindowed); at the long
// context above: W = 8, 64 pieces, 4.8 MB. The scan carried from window to window adds
// the same terms in the same order as one scan over all chunks.
// In each phase every output is written by one piece, and the scan adds in an order
// fixed by the sizes, so results do not depend on the thread count.
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
// dQ needs the states P, summed first to last; dK and dV the states R, summed last to
// first. So backward is two sweeps over the windows, each keeping one window's states
// (the same batch x (W + 1) x m x dv floats, used by one sweep and then the other):
//   dQ, windows first to last, P carried forward:
//     1. each (batch item, chunk k but the last): T_k^T (dv x m, as dQ takes it);
//     2. the scan for P;
//     3. each (batch item, chunk): dQ_c.
//   dK and dV, windows last to first, R carried backward:
//     1. each (batch item, chunk k but the last): chunk k+1's
//        U_{k+1} = Q_c^T diag(e^(c_p - c_i)) G_c  (m x dv; c_p: chunk k's last position);
//     2. the scan in reverse order:  R_last = 0,  R_k = e^(c_l - c_n) R_{k+1} + U_{k+1}
//        (c_l, c_n: chunk k's and k+1's last positions);
//     3. each (batch item, chunk): dK_c and dV_c.
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
#include "engine/ops.h"

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
// may be shorter), windows of W consecutive chunks (the last may be shorter), and
// one window's chunk states per item, W + 1 slots of m x dv floats: the states of the
// window's chunks and the state carried in from the window before (or after).
//   W = ceil(64 / batch), at least 1 and at most chunks: enough pieces for 64 threads;
//   then at most 2^22 / (batch m dv) - 1 where that is >= 1: at most 16 MB of states.
// W depends on the sizes alone, never on the thread count.
struct Chunking {
    Sizes s;
    int64_t C, chunks, W, slots;
    const float* c;  // the log-scales, batch x L
    static int64_t window(Sizes s, int64_t chunks) {
        if (s.batch == 0 || chunks == 0) return 1;
        int64_t W = std::clamp<int64_t>((64 + s.batch - 1) / s.batch, 1, chunks);
        const int64_t fit = (int64_t(1) << 22) / std::max<int64_t>(s.batch * s.m * s.dv, 1) - 1;
        return fit >= 1 ? std::min(W, fit) : W;
    }
    // A chunk longer than the sequence is the whole sequence: the same sums, and memory
    // bounded by L, whatever chunk a flag or a checkpoint asks for.
    Chunking(Sizes s, int64_t C, const float* c)
        : s(s), C(std::min(C, std::max<int64_t>(s.L, 1))), chunks((s.L + this->C - 1) / this->C), W(window(s, chunks)), slots(W + 1), c(c) {}
    int64_t first(int64_t k) const { return k * C; }
    int64_t size(int64_t k) const { return std::min(C, s.L - k * C); }
    // Chunks in the window starting at chunk k0.
    int64_t window_size(int64_t k0) const { return std::min(W, chunks - k0); }
    // Offsets of chunk k of batch item b in the (L, m) and (L, dv) operands.
    int64_t in_m(int64_t b, int64_t k) const { return (b * s.L + first(k)) * s.m; }
    int64_t in_dv(int64_t b, int64_t k) const { return (b * s.L + first(k)) * s.dv; }
    // Offset of batch item b's slot j in the window's states.
    int64_t slot(int64_t b, int64_t j) const { return (b * slots + j) * s.m * s.dv; }
    Floats new_states() const { return uninitialised(s.batch * slots * s.m * s.dv); }
    // Each item's slot `from` copied to its slot `to`: the state carried to the next window.
    void carry(float* states, int64_t from, int64_t to) const {
        for (int64_t b = 0; b < s.batch; ++b)
            std::copy_n(states + slot(b, from), s.m * s.dv, states + slot(b, to));
    }
    ChunkScales scales(int64_t b, int64_t k) const {
        return ChunkScales(c + b * s.L + first(k), size(k));
    }
    float last_c(int64_t b, int64_t k) const { return c[b * s.L + first(k) + size(k) - 1]; }
};

// Forward phase 1, chunk k of batch item b:
//   Y_c = tril(Q_c K_c^T o E) V_c,   and unless k is the last chunk (T null),
//   T = T_k = K_c^T diag(e^(c_j - c_l)) V_c   (m x dv)
void forward_chunk(const Chunking& at, int64_t b, int64_t k, const float* Q, const float* K,
                   const float* V, float* Y, float* T) {
    const int64_t m = at.s.m, dv = at.s.dv, n = at.size(k);
    const float *Qc = Q + at.in_m(b, k), *Kc = K + at.in_m(b, k), *Vc = V + at.in_dv(b, k);
    float* Yc = Y + at.in_dv(b, k);
    const ChunkScales scales = at.scales(b, k);
    Floats A = uninitialised(n * n), factor = uninitialised(n), scaled_v = uninitialised(n * dv);
    blas::gemm(false, true, n, n, m, 1, Qc, m, Kc, m, 0, A.get(), n);
    scales.apply_to_lower(A.get(), n);
    std::fill(Yc, Yc + n * dv, 0.0f);
    lower_triangular_product(A.get(), n, n, Vc, dv, Yc);
    if (!T) return;  // the last chunk
    for (int64_t j = 0; j < n; ++j) factor[j] = rescale(scales.c[j], scales.last());
    const float* Vs = scaled_rows(Vc, n, dv, factor.get(), scaled_v.get());
    blas::gemm(true, false, m, dv, n, 1, Kc, m, Vs, dv, 0, T, dv);
}

// Phase 2, in place over each batch item's slots first..last of one window (rows x
// width floats each; slot j on the scale of chunk base + j's last position c_l(base + j)),
// in order, forward or reverse:
//   slot j += e^(c_l(base+j-1) - c_l(base+j)) slot j-1,  j = first+1, ..., last  (T_k → P_{k+1})
//   slot j += e^(c_l(base+j) - c_l(base+j+1)) slot j+1,  j = last-1, ..., first  (U_{k+1} → R_k)
// Every entry is its own scan, so the batch x rows rows split over any number of
// threads with the same result; each row walks its slots in order. Window after
// window, with the state carried in slot first (forward) or last (reverse), the
// additions are those of one scan over all chunks, in the same order.
void scan_states(const Chunking& at, float* states, int64_t rows, int64_t width, int64_t base,
                 int64_t first, int64_t last, bool reverse) {
    if (last <= first) return;
    const int64_t size = rows * width;
    const int64_t grain = kernels::row_grain(width * (last - first + 1));
    parallel_for(at.s.batch * rows, grain, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
            const int64_t b = r / rows;
            float* row = states + at.slot(b, 0) + r % rows * width;
            for (int64_t step = 1; step <= last - first; ++step) {
                const int64_t j = reverse ? last - step : first + step, from = reverse ? j + 1 : j - 1;
                const int64_t earlier = std::min(j, from), later = std::max(j, from);
                const float keep = rescale(at.last_c(b, base + earlier), at.last_c(b, base + later));
                if (keep == 0.0f) continue;  // underflow: drop the older sum (0 * inf = NaN)
                const float* older = row + from * size;
                float* sum = row + j * size;
                for (int64_t col = 0; col < width; ++col) sum[col] += keep * older[col];
            }
        }
    });
}

// Forward phase 3, chunk k >= 1 of batch item b, with P = P_k:
//   Y_c += diag(e^(c_p - c_i)) Q_c P_k
void add_past(const Chunking& at, int64_t b, int64_t k, const float* Q, const float* P, float* Y) {
    const int64_t m = at.s.m, dv = at.s.dv, n = at.size(k);
    const ChunkScales scales = at.scales(b, k);
    const float c_p = at.last_c(b, k - 1);
    Floats factor = uninitialised(n), scaled_q = uninitialised(n * m);
    for (int64_t i = 0; i < n; ++i) factor[i] = rescale(c_p, scales.c[i]);
    const float* Qs = scaled_rows(Q + at.in_m(b, k), n, m, factor.get(), scaled_q.get());
    blas::gemm(false, false, n, dv, m, 1, Qs, m, P, dv, 1, Y + at.in_dv(b, k), dv);
}

// Backward phase 1 of the dQ sweep, chunk k of batch item b (not the last chunk):
//   T = T_k^T = V_c^T diag(e^(c_j - c_l)) K_c     (dv x m)
void forward_state(const Chunking& at, int64_t b, int64_t k, const float* K, const float* V,
                   float* T) {
    const int64_t m = at.s.m, dv = at.s.dv;
    const ChunkScales scales = at.scales(b, k);
    Floats factor = uninitialised(scales.n), scaled = uninitialised(scales.n * m);
    for (int64_t j = 0; j < scales.n; ++j) factor[j] = rescale(scales.c[j], scales.last());
    const float* Ks = scaled_rows(K + at.in_m(b, k), scales.n, m, factor.get(), scaled.get());
    blas::gemm(true, false, dv, m, scales.n, 1, V + at.in_dv(b, k), dv, Ks, m, 0, T, m);
}

// Backward phase 1 of the dK/dV sweep, chunk k of batch item b (not the last chunk):
//   U = U_{k+1} = Q_c^T diag(e^(c_p - c_i)) G_c   (m x dv, of chunk k+1; c_p: chunk k's last)
void reverse_state(const Chunking& at, int64_t b, int64_t k, const float* Q, const float* G,
                   float* U) {
    const int64_t m = at.s.m, dv = at.s.dv;
    const float c_p = at.last_c(b, k);
    const ChunkScales scales = at.scales(b, k + 1);
    Floats factor = uninitialised(scales.n), scaled = uninitialised(scales.n * dv);
    for (int64_t i = 0; i < scales.n; ++i) factor[i] = rescale(c_p, scales.c[i]);
    const float* Gs = scaled_rows(G + at.in_dv(b, k + 1), scales.n, dv, factor.get(), scaled.get());
    blas::gemm(true, false, m, dv, scales.n, 1, Q + at.in_m(b, k + 1), m, Gs, dv, 0, U, dv);
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

// Backward phase 3 of the dQ sweep, chunk k of batch item b, with P = P_k^T (dv x m;
// null for chunk 0):
//   dQ_c = [diag(e^(c_p - c_i)) G_c | tril(G_c V_c^T o E)] [P_k^T ; K_c]
void backward_dq(const Chunking& at, int64_t b, int64_t k, const float* K, const float* V,
                 const float* G, const float* P, float* dQ) {
    const int64_t m = at.s.m, dv = at.s.dv, n = at.size(k), ld = dv + n;
    const float *Kc = K + at.in_m(b, k), *Vc = V + at.in_dv(b, k), *Gc = G + at.in_dv(b, k);
    const ChunkScales scales = at.scales(b, k);
    Floats left = uninitialised(n * ld), right = uninitialised(ld * m), factor = uninitialised(n);
    if (P) {
        const float c_p = at.last_c(b, k - 1);
        for (int64_t i = 0; i < n; ++i) factor[i] = rescale(c_p, scales.c[i]);
        copy_scaled_block(Gc, n, dv, factor.get(), left.get(), ld);
        std::copy_n(P, dv * m, right.get());
    }
    blas::gemm(false, true, n, n, dv, 1, Gc, dv, Vc, dv, 0, left.get() + dv, ld);
    keep_lower_triangle(left.get() + dv, n, ld);
    scales.apply_to_lower(left.get() + dv, ld);
    std::copy_n(Kc, n * m, right.get() + dv * m);
    side_by_side_product(left.get(), right.get(), n, dv, m, P != nullptr, dQ + at.in_m(b, k));
}

// Backward phase 3 of the dK/dV sweep, chunk k of batch item b, with R = R_k (m x dv;
// null for the last chunk):
//   dK_c = [diag(e^(c_j - c_l)) V_c | triu(V_c G_c^T o E^T)] [R_k^T ; Q_c]
//   dV_c = [diag(e^(c_j - c_l)) K_c | triu(K_c Q_c^T o E^T)] [R_k ; G_c]
void backward_dk_dv(const Chunking& at, int64_t b, int64_t k, const float* Q, const float* K,
                    const float* V, const float* G, const float* R, float* dK, float* dV) {
    const int64_t m = at.s.m, dv = at.s.dv, n = at.size(k), wide = std::max(m, dv);
    const float *Qc = Q + at.in_m(b, k), *Kc = K + at.in_m(b, k), *Vc = V + at.in_dv(b, k),
                *Gc = G + at.in_dv(b, k);
    const ChunkScales scales = at.scales(b, k);
    Floats left = uninitialised(n * (wide + n)), right = uninitialised((wide + n) * wide),
           factor = uninitialised(n);
    // dK_c
    for (int64_t j = 0; j < n; ++j) factor[j] = rescale(scales.c[j], scales.last());
    int64_t ld = dv + n;
    if (R) {
        copy_scaled_block(Vc, n, dv, factor.get(), left.get(), ld);
        for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < dv; ++j) right[j * m + i] = R[i * dv + j];
    }
    blas::gemm(false, true, n, n, dv, 1, Vc, dv, Gc, dv, 0, left.get() + dv, ld);
    keep_upper_triangle(left.get() + dv, n, ld);
    scales.apply_to_upper(left.get() + dv, ld);
    std::copy_n(Qc, n * m, right.get() + dv * m);
    side_by_side_product(left.get(), right.get(), n, dv, m, R != nullptr, dK + at.in_m(b, k));
    // dV_c
    ld = m + n;
    if (R) {
        copy_scaled_block(Kc, n, m, factor.get(), left.get(), ld);
        std::copy_n(R, m * dv, right.get());
    }
    blas::gemm(false, true, n, n, m, 1, Kc, m, Qc, m, 0, left.get() + m, ld);
    keep_upper_triangle(left.get() + m, n, ld);
    scales.apply_to_upper(left.get() + m, ld);
    std::copy_n(Gc, n * dv, right.get() + m * dv);
    side_by_side_product(left.get(), right.get(), n, m, dv, R != nullptr, dV + at.in_dv(b, k));
}

// The log-scales as one float per (batch item, position): c itself, or zeros.
std::vector<float> log_scales_of(const Tensor& log_scale, const Tensor& q, Sizes s) {
    if (!log_scale.defined()) return std::vector<float>(s.batch * s.L, 0.0f);
    Shape want(q.shape().begin(), q.shape().end() - 1);
    PF_CHECK(log_scale.shape() == want, "causal_dot_product: log_scale {} must be {} (..., L)",
             shape_str(log_scale.shape()), shape_str(want));
    return log_scale.to_vector();
}

// Forward, window after window from the first (see the top of the file). Slot j of
// the states holds the state after chunk k0 - 1 + j: slot 0 P_{k0} carried in (none in
// the first window), slot 1 + i first T_{k0+i}, after the scan P_{k0+i+1}.
void forward_windows(const Chunking& at, const float* Q, const float* K, const float* V, float* Y) {
    const int64_t batch = at.s.batch;
    Floats states = at.new_states();
    for (int64_t k0 = 0; k0 < at.chunks; k0 += at.W) {
        const int64_t n = at.window_size(k0);
        const int64_t with_state = std::min(k0 + n, at.chunks - 1) - k0;  // chunks with a T_k
        parallel_pieces(batch * n, [&](int64_t piece) {
            const int64_t b = piece / n, i = piece % n;
            forward_chunk(at, b, k0 + i, Q, K, V, Y, i < with_state ? states.get() + at.slot(b, i + 1) : nullptr);
        });
        const int64_t first = k0 > 0 ? 0 : 1;  // slot 0 holds P_{k0}; none before chunk 0
        scan_states(at, states.get(), at.s.m, at.s.dv, k0 - 1, first, with_state, /*reverse=*/false);
        parallel_pieces(batch * (n - first), [&](int64_t piece) {
            const int64_t b = piece / (n - first), i = piece % (n - first) + first;
            add_past(at, b, k0 + i, Q, states.get() + at.slot(b, i), Y);
        });
        if (k0 + n < at.chunks) at.carry(states.get(), n, 0);  // P_{k0+n}
    }
}

// Backward: two sweeps over the windows, each with one window's states.
//   dQ, first to last window: slot j holds the state after chunk k0 - 1 + j: slot 0
//   P_{k0}^T carried in, slot 1 + i first T_{k0+i}^T, after the scan P_{k0+i+1}^T.
//   dK and dV, last to first: slot i holds R_{k0+i}, first U_{k0+i+1}; slot W (after a
//   full window) R_{k0+W} carried in from the window after.
void backward_windows(const Chunking& at, const float* Q, const float* K, const float* V,
                      const float* G, float* dQ, float* dK, float* dV) {
    const int64_t batch = at.s.batch;
    Floats states = at.new_states();
    for (int64_t k0 = 0; k0 < at.chunks; k0 += at.W) {
        const int64_t n = at.window_size(k0);
        const int64_t with_state = std::min(k0 + n, at.chunks - 1) - k0;  // chunks with a T_k
        parallel_pieces(batch * with_state, [&](int64_t piece) {
            const int64_t b = piece / with_state, i = piece % with_state;
            forward_state(at, b, k0 + i, K, V, states.get() + at.slot(b, i + 1));
        });
        scan_states(at, states.get(), at.s.dv, at.s.m, k0 - 1, k0 > 0 ? 0 : 1, with_state,
                    /*reverse=*/false);
        parallel_pieces(batch * n, [&](int64_t piece) {
            const int64_t b = piece / n, k = k0 + piece % n;
            backward_dq(at, b, k, K, V, G, k > 0 ? states.get() + at.slot(b, k - k0) : nullptr, dQ);
        });
        if (k0 + n < at.chunks) at.carry(states.get(), n, 0);  // P_{k0+n}^T
    }
    const int64_t windows = (at.chunks + at.W - 1) / at.W;
    for (int64_t w = windows - 1; w >= 0; --w) {
        const int64_t k0 = w * at.W, n = at.window_size(k0);
        const int64_t with_state = std::min(k0 + n, at.chunks - 1) - k0;  // chunks with an R_k
        parallel_pieces(batch * with_state, [&](int64_t piece) {
            const int64_t b = piece / with_state, i = piece % with_state;
            reverse_state(at, b, k0 + i, Q, G, states.get() + at.slot(b, i));
        });
        const bool carried = k0 + n < at.chunks - 1;  // R_{k0+n} in slot n (= W)
        scan_states(at, states.get(), at.s.m, at.s.dv, k0, 0, carried ? n : with_state - 1,
                    /*reverse=*/true);
        parallel_pieces(batch * n, [&](int64_t piece) {
            const int64_t b = piece / n, i = piece % n;
            backward_dk_dv(at, b, k0 + i, Q, K, V, G, i < with_state ? states.get() + at.slot(b, i) : nullptr,
                           dK, dV);
        });
        if (k0 > 0 && with_state > 0) at.carry(states.get(), 0, at.W);  // R_{k0}
    }
}

}  // namespace

// causal_dot_product: Y_i = sum_{j <= i} e^(c_j - c_i) (q_i . k_j) v_j (see the top of the
// file; gradients flow to q, k, v, c is a constant)
//   q, k: (..., L, m), v: (..., L, dv), c: (..., L) or undefined (all 0) → (..., L, dv).
//   Window after window of W chunks, each parallel in pieces of (batch item, chunk)
//   fixed by the sizes: forward batch x W, then batch x W (one chunk fewer per item in
//   the first window); backward, per sweep, batch x W for the states (one fewer in
//   the last window), then batch x W for the products. At batch 32 (8 x 4 heads),
//   L 1024, C 128: W = 2, 4 windows of 64 pieces (32 where a chunk is skipped). The
//   scans between them: batch x m rows (4096), backward also batch x dv (2080).
Tensor causal_dot_product(const Tensor& q, const Tensor& k, const Tensor& v, int64_t chunk,
                          const Tensor& log_scale) {
    Sizes s = check_sizes(q, k, v);
    PF_CHECK(chunk >= 1, "causal_dot_product: chunk size {} must be positive", chunk);
    auto c = std::make_shared<const std::vector<float>>(log_scales_of(log_scale, q, s));
    Tensor y = Tensor::empty(v.shape());
    forward_windows(Chunking(s, chunk, c->data()), q.data(), k.data(), v.data(), y.mutable_data());
    return record("causal_dot_product", y, {q, k, v},
                  [s, chunk, c, sq = SavedTensor(q), sk = SavedTensor(k), sv = SavedTensor(v)](
                      const Tensor& g) {
                      Tensor q = sq.get(), k = sk.get(), v = sv.get();
                      Tensor dq = Tensor::empty(q.shape()), dk = Tensor::empty(k.shape()),
                             dv = Tensor::empty(v.shape());
                      backward_windows(Chunking(s, chunk, c->data()), q.data(), k.data(), v.data(),
                                       g.data(), dq.mutable_data(), dk.mutable_data(),
                                       dv.mutable_data());
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
