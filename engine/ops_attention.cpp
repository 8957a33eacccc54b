// ops_attention.cpp — the causal dot product behind causal linear attention.
//
//   Y_i = sum_{j <= i} (q_i . k_j) v_j          q, k: (..., L, m), v: (..., L, dv)
//
// Causal linear attention (nn/attention.cpp) is Y / (the same with v = 1): with the
// prefix sums S_i = sum_{j <= i} k_j v_j^T it reads Y_i = S_i^T q_i. The reference
// below builds every S_i, a cumsum of outer products: L*m*dv numbers per head. The
// fused op never stores them. It walks the sequence in chunks of C positions:
//
//   Y_c = tril(Q_c K_c^T) V_c  +  Q_c S          (inside the chunk, then the past)
//   S  += K_c^T V_c                              (S: m x dv, the sum over past chunks)
//
// so nearly all its work is GEMMs of C-sized blocks, and it keeps one m x dv state.
// Why chunks and not one position at a time: a per-position loop is rank-1 updates
// and matrix-vector products, memory-bound; the chunked form runs at BLAS speed
// (measured with build/bench: see the README). Its cost per position is
// 2C(m + dv) + 4 m dv multiply-adds, so C should be small but big enough for BLAS.
// Each pair of products that share an output is one GEMM over a side-by-side block,
// e.g. Y_c = [Q_c | tril(Q_c K_c^T)] [S ; V_c]: fewer, larger calls run faster.
//
// Backward, with G = dL/dY, runs two passes and stores no prefix sums either:
//   forward order:   dQ_c = tril(G_c V_c^T) K_c + G_c S^T,         S += K_c^T V_c
//   reverse order:   dK_c = tril(G_c V_c^T)^T Q_c + V_c R^T
//                    dV_c = tril(Q_c K_c^T)^T G_c + K_c R,          R += Q_c^T G_c
// where R = sum over later chunks of q_i g_i^T (m x dv). tril keeps j <= i, and
// tril(A)^T = triu(A^T), computed directly: tril(G V^T)^T = triu(V G^T).
#include "engine/blas.h"
#include "engine/kernels.h"

#include <vector>

namespace pf {

namespace {

// In an n x n block with row stride ld: zero the entries above the diagonal (tril,
// keep j <= i) or below it (triu, keep j >= i).
void keep_lower_triangle(float* a, int64_t n, int64_t ld) {
    for (int64_t i = 0; i < n; ++i) std::fill(a + i * ld + i + 1, a + i * ld + n, 0.0f);
}
void keep_upper_triangle(float* a, int64_t n, int64_t ld) {
    for (int64_t i = 0; i < n; ++i) std::fill(a + i * ld, a + i * ld + i, 0.0f);
}

// Copy an n x width block (row stride `width`) into columns [column, column + width)
// of a matrix with row stride ld.
void copy_block(const float* from, int64_t n, int64_t width, float* to, int64_t ld) {
    for (int64_t i = 0; i < n; ++i) std::copy_n(from + i * width, width, to + i * ld);
}

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

// One (batch item): Y = causal dot product of Q (L x m), K (L x m), V (L x dv).
void forward_item(const float* Q, const float* K, const float* V, float* Y, Sizes s,
                  int64_t C) {
    const int64_t m = s.m, dv = s.dv;
    // left (n x (m + n)) = [Q_c | tril(Q_c K_c^T)];  right ((m + n) x dv) = [S ; V_c]
    std::vector<float> left(C * (m + C)), right((m + C) * dv, 0.0f);
    float* S = right.data();
    for (int64_t c0 = 0; c0 < s.L; c0 += C) {
        const int64_t n = std::min(C, s.L - c0), ld = m + n;
        const float *Qc = Q + c0 * m, *Kc = K + c0 * m, *Vc = V + c0 * dv;
        copy_block(Qc, n, m, left.data(), ld);
        blas::gemm(false, true, n, n, m, 1, Qc, m, Kc, m, 0, left.data() + m, ld);
        keep_lower_triangle(left.data() + m, n, ld);
        std::copy_n(Vc, n * dv, right.data() + m * dv);
        blas::gemm(false, false, n, dv, ld, 1, left.data(), ld, right.data(), dv, 0, Y + c0 * dv, dv);
        blas::gemm(true, false, m, dv, n, 1, Kc, m, Vc, dv, 1, S, dv);  // S += K_c^T V_c
    }
}

void backward_item(const float* Q, const float* K, const float* V, const float* G, float* dQ,
                   float* dK, float* dV, Sizes s, int64_t C) {
    const int64_t m = s.m, dv = s.dv;
    std::vector<float> left(C * (std::max(m, dv) + C));
    // Forward order: dQ_c = [G_c | tril(G_c V_c^T)] [S^T ; K_c].
    std::vector<float> right_q((dv + C) * m, 0.0f);
    float* S_t = right_q.data();  // S^T: dv x m
    for (int64_t c0 = 0; c0 < s.L; c0 += C) {
        const int64_t n = std::min(C, s.L - c0), ld = dv + n;
        const float *Kc = K + c0 * m, *Vc = V + c0 * dv, *Gc = G + c0 * dv;
        copy_block(Gc, n, dv, left.data(), ld);
        blas::gemm(false, true, n, n, dv, 1, Gc, dv, Vc, dv, 0, left.data() + dv, ld);
        keep_lower_triangle(left.data() + dv, n, ld);
        std::copy_n(Kc, n * m, right_q.data() + dv * m);
        blas::gemm(false, false, n, m, ld, 1, left.data(), ld, right_q.data(), m, 0, dQ + c0 * m, m);
        blas::gemm(true, false, dv, m, n, 1, Vc, dv, Kc, m, 1, S_t, m);  // S^T += V_c^T K_c
    }
    // Reverse order, with R = sum over later chunks of q g^T (m x dv):
    //   dK_c = [V_c | triu(V_c G_c^T)] [R^T ; Q_c],  dV_c = [K_c | triu(K_c Q_c^T)] [R ; G_c]
    std::vector<float> right_k((dv + C) * m, 0.0f), right_v((m + C) * dv, 0.0f);
    float* R_t = right_k.data();  // R^T: dv x m
    float* R = right_v.data();    // R: m x dv
    const int64_t last = (s.L - 1) / C * C;
    for (int64_t c0 = last; c0 >= 0; c0 -= C) {
        const int64_t n = std::min(C, s.L - c0);
        const float *Qc = Q + c0 * m, *Kc = K + c0 * m, *Vc = V + c0 * dv, *Gc = G + c0 * dv;
        int64_t ld = dv + n;
        copy_block(Vc, n, dv, left.data(), ld);
        blas::gemm(false, true, n, n, dv, 1, Vc, dv, Gc, dv, 0, left.data() + dv, ld);
        keep_upper_triangle(left.data() + dv, n, ld);
        std::copy_n(Qc, n * m, right_k.data() + dv * m);
        blas::gemm(false, false, n, m, ld, 1, left.data(), ld, right_k.data(), m, 0, dK + c0 * m, m);
        ld = m + n;
        copy_block(Kc, n, m, left.data(), ld);
        blas::gemm(false, true, n, n, m, 1, Kc, m, Qc, m, 0, left.data() + m, ld);
        keep_upper_triangle(left.data() + m, n, ld);
        std::copy_n(Gc, n * dv, right_v.data() + m * dv);
        blas::gemm(false, false, n, dv, ld, 1, left.data(), ld, right_v.data(), dv, 0, dV + c0 * dv, dv);
        blas::gemm(true, false, m, dv, n, 1, Qc, m, Gc, dv, 1, R, dv);  // R += Q_c^T G_c
        for (int64_t i = 0; i < m; ++i)                                 // and R^T
            for (int64_t j = 0; j < dv; ++j) R_t[j * m + i] = R[i * dv + j];
    }
}

}  // namespace

// causal_dot_product:  Y_i = sum_{j <= i} (q_i . k_j) v_j   (gradients: see the top of the file)
//   q, k: (..., L, m), v: (..., L, dv) → (..., L, dv). Batch items run in parallel.
Tensor causal_dot_product(const Tensor& q, const Tensor& k, const Tensor& v, int64_t chunk) {
    Sizes s = check_sizes(q, k, v);
    PF_CHECK(chunk >= 1, "causal_dot_product: chunk size {} must be positive", chunk);
    Tensor y = Tensor::empty(v.shape());
    const float *Q = q.data(), *K = k.data(), *V = v.data();
    float* Y = y.mutable_data();
    parallel_pieces(s.batch, [&](int64_t b) {
        forward_item(Q + b * s.L * s.m, K + b * s.L * s.m, V + b * s.L * s.dv, Y + b * s.L * s.dv,
                     s, chunk);
    });
    return record("causal_dot_product", y, {q, k, v},
                  [s, chunk, sq = SavedTensor(q), sk = SavedTensor(k), sv = SavedTensor(v)](
                      const Tensor& g) {
                      Tensor q = sq.get(), k = sk.get(), v = sv.get();
                      Tensor dq = Tensor::empty(q.shape()), dk = Tensor::empty(k.shape()),
                             dv = Tensor::empty(v.shape());
                      const float *Q = q.data(), *K = k.data(), *V = v.data(), *G = g.data();
                      float *dQ = dq.mutable_data(), *dK = dk.mutable_data(), *dV = dv.mutable_data();
                      parallel_pieces(s.batch, [&](int64_t b) {
                          int64_t qo = b * s.L * s.m, vo = b * s.L * s.dv;
                          backward_item(Q + qo, K + qo, V + vo, G + vo, dQ + qo, dK + qo, dV + vo,
                                        s, chunk);
                      });
                      return Grads{dq, dk, dv};
                  });
}

// The reference: every prefix sum S_i = sum_{j <= i} k_j v_j^T as a cumsum of outer
// products (..., L, m, dv), then Y_i = S_i^T q_i as a batch of (1 x m)(m x dv) products.
// Built from primitives, so its gradients come from theirs.
Tensor causal_dot_product_reference(const Tensor& q, const Tensor& k, const Tensor& v) {
    check_sizes(q, k, v);
    auto with = [](Shape shape, std::initializer_list<int64_t> tail) {
        shape.pop_back();
        shape.insert(shape.end(), tail);
        return shape;
    };
    int64_t m = q.shape().back(), dv = v.shape().back();
    Tensor outer = mul(reshape(k, with(k.shape(), {m, 1})), reshape(v, with(v.shape(), {1, dv})));
    Tensor prefix = cumsum(outer, -3);                          // (..., L, m, dv)
    Tensor y = matmul(reshape(q, with(q.shape(), {1, m})), prefix);  // (..., L, 1, dv)
    return reshape(y, v.shape());
}

}  // namespace pf
