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
// It walks the sequence in chunks of C positions, holding S (m x dv) on the scale of
// the previous chunk's last position, c_p:
//
//   Y_c = diag(e^(c_p - c_i)) Q_c S  +  tril(Q_c K_c^T o E) V_c     (past, then chunk)
//   S  <- e^(c_p - c_l) S + K_c^T diag(e^(c_j - c_l)) V_c            (c_l: chunk's last)
//
// where E_ij = e^(c_j - c_i) and o multiplies elementwise. Nearly all the work is GEMMs
// of C-sized blocks, and the op keeps one m x dv state. Why chunks and not one
// position at a time: a per-position loop is rank-1 updates and matrix-vector
// products, memory-bound; the chunked form runs at BLAS speed. Its cost per position
// is 2C(m + dv) + 4 m dv multiply-adds, so C should be small but big enough for BLAS.
// The triangle inside a chunk is summed by a loop over j <= i (lower_triangular_product),
// never by a GEMM over the whole block: that would multiply the masked zeros by the
// later rows of V, and 0 * inf = NaN would carry a later NaN or inf back to row i.
//
// Backward, with G = dL/dY, runs two passes and stores no prefix sums either:
//   forward order:  dQ_c = [diag(e^(c_p - c_i)) G_c | tril(G_c V_c^T o E)] [S^T ; K_c]
//   reverse order:  dK_c = [diag(e^(c_j - c_l)) V_c | triu(V_c G_c^T o E^T)] [R^T ; Q_c]
//                   dV_c = [diag(e^(c_j - c_l)) K_c | triu(K_c Q_c^T o E^T)] [R ; G_c]
//                   R <- e^(c_p - c_l) R + Q_c^T diag(e^(c_p - c_i)) G_c
// where R = sum over later positions of e^(c_l - c_i) q_i g_i^T (m x dv). tril keeps
// j <= i; tril(A)^T = triu(A^T) is computed directly: tril(G V^T)^T = triu(V G^T).
// Each pair of products that share an output is one GEMM over a side-by-side block.
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
#include "engine/blas.h"
#include "engine/kernels.h"

#include <algorithm>
#include <cmath>
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

// One (batch item): Y = causal dot product of Q (L x m), K (L x m), V (L x dv), c (L).
void forward_item(const float* Q, const float* K, const float* V, const float* c, float* Y,
                  Sizes s, int64_t C) {
    const int64_t m = s.m, dv = s.dv;
    std::vector<float> S(m * dv, 0.0f), A(C * C), scaled_q(C * m), scaled_v(C * dv), factor(C);
    for (int64_t c0 = 0; c0 < s.L; c0 += C) {
        const int64_t n = std::min(C, s.L - c0);
        const float *Qc = Q + c0 * m, *Kc = K + c0 * m, *Vc = V + c0 * dv;
        float* Yc = Y + c0 * dv;
        ChunkScales scales(c + c0, n);
        const float c_p = c0 == 0 ? 0.0f : c[c0 - 1];
        // The past: Y_c = diag(e^(c_p - c_i)) Q_c S (zero for the first chunk).
        if (c0 == 0) {
            std::fill(Yc, Yc + n * dv, 0.0f);
        } else {
            for (int64_t i = 0; i < n; ++i) factor[i] = rescale(c_p, scales.c[i]);
            const float* Qs = scaled_rows(Qc, n, m, factor.data(), scaled_q.data());
            blas::gemm(false, false, n, dv, m, 1, Qs, m, S.data(), dv, 0, Yc, dv);
        }
        // The chunk: Y_c += tril(Q_c K_c^T o E) V_c.
        blas::gemm(false, true, n, n, m, 1, Qc, m, Kc, m, 0, A.data(), n);
        scales.apply_to_lower(A.data(), n);
        lower_triangular_product(A.data(), n, n, Vc, dv, Yc);
        // S <- e^(c_p - c_l) S + K_c^T diag(e^(c_j - c_l)) V_c.
        for (int64_t j = 0; j < n; ++j) factor[j] = rescale(scales.c[j], scales.last());
        const float* Vs = scaled_rows(Vc, n, dv, factor.data(), scaled_v.data());
        float keep = c0 == 0 ? 0.0f : rescale(c_p, scales.last());
        blas::gemm(true, false, m, dv, n, 1, Kc, m, Vs, dv, keep, S.data(), dv);
    }
}

void backward_item(const float* Q, const float* K, const float* V, const float* c, const float* G,
                   float* dQ, float* dK, float* dV, Sizes s, int64_t C) {
    const int64_t m = s.m, dv = s.dv;
    std::vector<float> left(C * (std::max(m, dv) + C)), factor(C), scaled(C * std::max(m, dv));
    // Forward order: dQ_c = [diag(e^(c_p - c_i)) G_c | tril(G_c V_c^T o E)] [S^T ; K_c].
    std::vector<float> right_q((dv + C) * m, 0.0f);
    float* S_t = right_q.data();  // S^T: dv x m, on the scale of c_p
    for (int64_t c0 = 0; c0 < s.L; c0 += C) {
        const int64_t n = std::min(C, s.L - c0), ld = dv + n;
        const float *Kc = K + c0 * m, *Vc = V + c0 * dv, *Gc = G + c0 * dv;
        ChunkScales scales(c + c0, n);
        const float c_p = c0 == 0 ? 0.0f : c[c0 - 1];
        for (int64_t i = 0; i < n; ++i) factor[i] = c0 == 0 ? 0.0f : rescale(c_p, scales.c[i]);
        copy_scaled_block(Gc, n, dv, factor.data(), left.data(), ld);
        blas::gemm(false, true, n, n, dv, 1, Gc, dv, Vc, dv, 0, left.data() + dv, ld);
        keep_lower_triangle(left.data() + dv, n, ld);
        scales.apply_to_lower(left.data() + dv, ld);
        std::copy_n(Kc, n * m, right_q.data() + dv * m);
        blas::gemm(false, false, n, m, ld, 1, left.data(), ld, right_q.data(), m, 0, dQ + c0 * m, m);
        // S^T <- e^(c_p - c_l) S^T + V_c^T diag(e^(c_j - c_l)) K_c
        for (int64_t j = 0; j < n; ++j) factor[j] = rescale(scales.c[j], scales.last());
        const float* Ks = scaled_rows(Kc, n, m, factor.data(), scaled.data());
        float keep = c0 == 0 ? 0.0f : rescale(c_p, scales.last());
        blas::gemm(true, false, dv, m, n, 1, Vc, dv, Ks, m, keep, S_t, m);
    }
    // Reverse order, with R = sum over later positions of e^(c_l - c_i) q_i g_i^T (m x dv):
    //   dK_c = [diag(e^(c_j - c_l)) V_c | triu(V_c G_c^T o E^T)] [R^T ; Q_c]
    //   dV_c = [diag(e^(c_j - c_l)) K_c | triu(K_c Q_c^T o E^T)] [R ; G_c]
    std::vector<float> right_k((dv + C) * m, 0.0f), right_v((m + C) * dv, 0.0f);
    float* R_t = right_k.data();  // R^T: dv x m
    float* R = right_v.data();    // R: m x dv
    const int64_t last = (s.L - 1) / C * C;
    for (int64_t c0 = last; c0 >= 0; c0 -= C) {
        const int64_t n = std::min(C, s.L - c0);
        const float *Qc = Q + c0 * m, *Kc = K + c0 * m, *Vc = V + c0 * dv, *Gc = G + c0 * dv;
        ChunkScales scales(c + c0, n);
        for (int64_t j = 0; j < n; ++j) factor[j] = rescale(scales.c[j], scales.last());
        int64_t ld = dv + n;
        copy_scaled_block(Vc, n, dv, factor.data(), left.data(), ld);
        blas::gemm(false, true, n, n, dv, 1, Vc, dv, Gc, dv, 0, left.data() + dv, ld);
        keep_upper_triangle(left.data() + dv, n, ld);
        scales.apply_to_upper(left.data() + dv, ld);
        std::copy_n(Qc, n * m, right_k.data() + dv * m);
        blas::gemm(false, false, n, m, ld, 1, left.data(), ld, right_k.data(), m, 0, dK + c0 * m, m);
        ld = m + n;
        copy_scaled_block(Kc, n, m, factor.data(), left.data(), ld);
        blas::gemm(false, true, n, n, m, 1, Kc, m, Qc, m, 0, left.data() + m, ld);
        keep_upper_triangle(left.data() + m, n, ld);
        scales.apply_to_upper(left.data() + m, ld);
        std::copy_n(Gc, n * dv, right_v.data() + m * dv);
        blas::gemm(false, false, n, dv, ld, 1, left.data(), ld, right_v.data(), dv, 0, dV + c0 * dv, dv);
        if (c0 == 0) break;
        // R <- e^(c_p - c_l) R + Q_c^T diag(e^(c_p - c_i)) G_c, and R^T
        const float c_p = c[c0 - 1];
        for (int64_t i = 0; i < n; ++i) factor[i] = rescale(c_p, scales.c[i]);
        const float* Gs = scaled_rows(Gc, n, dv, factor.data(), scaled.data());
        blas::gemm(true, false, m, dv, n, 1, Qc, m, Gs, dv, rescale(c_p, scales.last()), R, dv);
        for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < dv; ++j) R_t[j * m + i] = R[i * dv + j];
    }
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
//   Batch items run in parallel.
Tensor causal_dot_product(const Tensor& q, const Tensor& k, const Tensor& v, int64_t chunk,
                          const Tensor& log_scale) {
    Sizes s = check_sizes(q, k, v);
    PF_CHECK(chunk >= 1, "causal_dot_product: chunk size {} must be positive", chunk);
    auto c = std::make_shared<const std::vector<float>>(log_scales_of(log_scale, q, s));
    Tensor y = Tensor::empty(v.shape());
    const float *Q = q.data(), *K = k.data(), *V = v.data();
    float* Y = y.mutable_data();
    parallel_pieces(s.batch, [&](int64_t b) {
        forward_item(Q + b * s.L * s.m, K + b * s.L * s.m, V + b * s.L * s.dv, c->data() + b * s.L,
                     Y + b * s.L * s.dv, s, chunk);
    });
    return record("causal_dot_product", y, {q, k, v},
                  [s, chunk, c, sq = SavedTensor(q), sk = SavedTensor(k), sv = SavedTensor(v)](
                      const Tensor& g) {
                      Tensor q = sq.get(), k = sk.get(), v = sv.get();
                      Tensor dq = Tensor::empty(q.shape()), dk = Tensor::empty(k.shape()),
                             dv = Tensor::empty(v.shape());
                      const float *Q = q.data(), *K = k.data(), *V = v.data(), *G = g.data();
                      float *dQ = dq.mutable_data(), *dK = dk.mutable_data(), *dV = dv.mutable_data();
                      parallel_pieces(s.batch, [&](int64_t b) {
                          int64_t qo = b * s.L * s.m, vo = b * s.L * s.dv;
                          backward_item(Q + qo, K + qo, V + vo, c->data() + b * s.L, G + vo,
                                        dQ + qo, dK + qo, dV + vo, s, chunk);
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
