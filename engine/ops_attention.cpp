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
//
// Backward, with G = dL/dY, runs two passes and stores no prefix sums either:
//   forward order:   dQ_c = tril(G_c V_c^T) K_c + G_c S^T,         S += K_c^T V_c
//   reverse order:   dK_c = tril(G_c V_c^T)^T Q_c + V_c R^T
//                    dV_c = tril(Q_c K_c^T)^T G_c + K_c R,          R += Q_c^T G_c
// where R = sum over later chunks of q_i g_i^T (m x dv). tril keeps j <= i.
#include "engine/blas.h"
#include "engine/kernels.h"

#include <vector>

namespace pf {

namespace {

// Zero the entries above the diagonal of an n x n row-major matrix (keep j <= i).
void keep_lower_triangle(float* a, int64_t n) {
    for (int64_t i = 0; i < n; ++i) std::fill(a + i * n + i + 1, a + (i + 1) * n, 0.0f);
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
    std::vector<float> S(s.m * s.dv, 0.0f), A(C * C);
    for (int64_t c0 = 0; c0 < s.L; c0 += C) {
        int64_t n = std::min(C, s.L - c0);
        const float *Qc = Q + c0 * s.m, *Kc = K + c0 * s.m, *Vc = V + c0 * s.dv;
        float* Yc = Y + c0 * s.dv;
        blas::gemm(false, true, n, n, s.m, 1, Qc, s.m, Kc, s.m, 0, A.data(), n);      // Q_c K_c^T
        keep_lower_triangle(A.data(), n);
        blas::gemm(false, false, n, s.dv, n, 1, A.data(), n, Vc, s.dv, 0, Yc, s.dv);   // tril(.) V_c
        blas::gemm(false, false, n, s.dv, s.m, 1, Qc, s.m, S.data(), s.dv, 1, Yc, s.dv);  // + Q_c S
        blas::gemm(true, false, s.m, s.dv, n, 1, Kc, s.m, Vc, s.dv, 1, S.data(), s.dv);   // S += K_c^T V_c
    }
}

void backward_item(const float* Q, const float* K, const float* V, const float* G, float* dQ,
                   float* dK, float* dV, Sizes s, int64_t C) {
    std::vector<float> state(s.m * s.dv, 0.0f), A(C * C);
    // Forward order: dQ, with S (in `state`) the sum over past chunks.
    for (int64_t c0 = 0; c0 < s.L; c0 += C) {
        int64_t n = std::min(C, s.L - c0);
        const float *Kc = K + c0 * s.m, *Vc = V + c0 * s.dv, *Gc = G + c0 * s.dv;
        float* dQc = dQ + c0 * s.m;
        blas::gemm(false, true, n, n, s.dv, 1, Gc, s.dv, Vc, s.dv, 0, A.data(), n);   // G_c V_c^T
        keep_lower_triangle(A.data(), n);
        blas::gemm(false, false, n, s.m, n, 1, A.data(), n, Kc, s.m, 0, dQc, s.m);     // tril(.) K_c
        blas::gemm(false, true, n, s.m, s.dv, 1, Gc, s.dv, state.data(), s.dv, 1, dQc, s.m);  // + G_c S^T
        blas::gemm(true, false, s.m, s.dv, n, 1, Kc, s.m, Vc, s.dv, 1, state.data(), s.dv);
    }
    // Reverse order: dK, dV, with R (in `state`) the sum over later chunks of q g^T.
    std::fill(state.begin(), state.end(), 0.0f);
    int64_t last = (s.L - 1) / C * C;
    for (int64_t c0 = last; c0 >= 0; c0 -= C) {
        int64_t n = std::min(C, s.L - c0);
        const float *Qc = Q + c0 * s.m, *Kc = K + c0 * s.m, *Vc = V + c0 * s.dv, *Gc = G + c0 * s.dv;
        float *dKc = dK + c0 * s.m, *dVc = dV + c0 * s.dv;
        blas::gemm(false, true, n, n, s.dv, 1, Gc, s.dv, Vc, s.dv, 0, A.data(), n);   // G_c V_c^T
        keep_lower_triangle(A.data(), n);
        blas::gemm(true, false, n, s.m, n, 1, A.data(), n, Qc, s.m, 0, dKc, s.m);      // tril(.)^T Q_c
        blas::gemm(false, true, n, s.m, s.dv, 1, Vc, s.dv, state.data(), s.dv, 1, dKc, s.m);  // + V_c R^T
        blas::gemm(false, true, n, n, s.m, 1, Qc, s.m, Kc, s.m, 0, A.data(), n);       // Q_c K_c^T
        keep_lower_triangle(A.data(), n);
        blas::gemm(true, false, n, s.dv, n, 1, A.data(), n, Gc, s.dv, 0, dVc, s.dv);   // tril(.)^T G_c
        blas::gemm(false, false, n, s.dv, s.m, 1, Kc, s.m, state.data(), s.dv, 1, dVc, s.dv);  // + K_c R
        blas::gemm(true, false, s.m, s.dv, n, 1, Qc, s.m, Gc, s.dv, 1, state.data(), s.dv);   // R += Q_c^T G_c
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
