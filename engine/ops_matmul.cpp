// ops_matmul.cpp — matrix products, through blas::gemm with transpose flags.
//
// For C = op(A) op(B) with incoming gradient G = dL/dC, each case's gradients are
// again products of G with A or B, expressed with flags rather than copies:
//
//   C = A B        dA = G B^T           dB = A^T G
//   C = A^T B      dA = B G^T           dB = A G
//   C = A B^T      dA = G B             dB = G^T A
//   C = A^T B^T    dA = B^T G^T         dB = G^T A^T
#include "engine/blas.h"
#include "engine/kernels.h"

namespace pf {

namespace {

// The last two axes of a, as (rows, cols) before any transpose flag.
std::pair<int64_t, int64_t> matrix_dims(const Tensor& t) {
    return {t.shape()[t.dim() - 2], t.shape()[t.dim() - 1]};
}

Shape batch_shape(const Tensor& t) { return Shape(t.shape().begin(), t.shape().end() - 2); }

}  // namespace

// matmul:  y = op(a) op(b) over the last two axes (see the table above for gradients)
//   a: (..., M, K) or (..., K, M) if trans_a;  b: (..., K, N) or (..., N, K) if trans_b;
//   y: (..., M, N). b may be 2-D and shared by every batch item of a.
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
    PF_CHECK(a.defined() && b.defined(), "matmul: undefined operand");
    PF_CHECK(a.dim() >= 2 && b.dim() >= 2, "matmul: operands need at least 2 axes, got {} @ {}",
             shape_str(a.shape()), shape_str(b.shape()));
    auto [a_rows, a_cols] = matrix_dims(a);
    auto [b_rows, b_cols] = matrix_dims(b);
    int64_t M = trans_a ? a_cols : a_rows, K = trans_a ? a_rows : a_cols;
    int64_t N = trans_b ? b_rows : b_cols, K_b = trans_b ? b_cols : b_rows;
    PF_CHECK(K == K_b, "matmul: inner sizes differ: {}{} @ {}{}", shape_str(a.shape()),
             trans_a ? "^T" : "", shape_str(b.shape()), trans_b ? "^T" : "");
    Shape batch = batch_shape(a);
    bool shared_b = b.dim() == 2 && a.dim() > 2;
    PF_CHECK(shared_b || batch == batch_shape(b),
             "matmul: batch axes differ: {} @ {} (they must be equal, or b must be 2-D)",
             shape_str(a.shape()), shape_str(b.shape()));
    PF_CHECK(!(shared_b && trans_a), "matmul: trans_a with a batched a and a 2-D b is not "
             "supported: {}^T @ {}", shape_str(a.shape()), shape_str(b.shape()));

    Shape out_shape = batch;
    out_shape.push_back(M);
    out_shape.push_back(N);
    Tensor y = Tensor::empty(out_shape);
    int64_t batch_count = numel(batch);
    if (shared_b) {
        // x (..., M, K) @ W (K, N): one product with all batch rows stacked.
        blas::gemm(false, trans_b, batch_count * M, N, K, 1.0f, a.data(), a_cols, b.data(),
                   b_cols, 0.0f, y.mutable_data(), N);
    } else {
        blas::gemm_batched(batch_count, trans_a, trans_b, M, N, K, 1.0f, a.data(), a_cols,
                           a_rows * a_cols, b.data(), b_cols, b_rows * b_cols, 0.0f,
                           y.mutable_data(), N, M * N);
    }

    bool need_a = a.requires_grad(), need_b = b.requires_grad();
    return record("matmul", y, {a, b}, [=, sa = SavedTensor(a), sb = SavedTensor(b)](
                                           const Tensor& g) {
        Tensor A = sa.get(), B = sb.get(), dA, dB;
        if (need_a) {
            if (!trans_a) dA = matmul(g, B, false, !trans_b);  // G op(B)^T
            else dA = matmul(B, g, trans_b, true);             // op(B) G^T
        }
        if (need_b) {
            if (shared_b) {
                // Gradient of the shared W: all batch rows at once, A (R, K), G (R, N).
                Tensor A2 = reshape(A, {batch_count * M, K}), G2 = reshape(g, {batch_count * M, N});
                dB = trans_b ? matmul(G2, A2, true, false) : matmul(A2, G2, true, false);
            } else if (!trans_b) {
                dB = matmul(A, g, !trans_a, false);  // op(A)^T G
            } else {
                dB = matmul(g, A, true, trans_a);    // G^T op(A)
            }
        }
        return Grads{dA, dB};
    });
}

}  // namespace pf
