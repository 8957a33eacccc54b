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
#include "engine/ops.h"

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

// linear:  y = x W + b   x: (..., K), W: (K, N), b: (N) or undefined → y: (..., N)
//   dx = g W^T,  dW = X^T G (all rows of x and g stacked: (R, K), (R, N)),  db = sum of g's rows
// Fused: b is copied into every row of y and the product added onto it (beta = 1), so
// b is never expanded into a tensor of its own. Equals add(matmul(x, W), b) (tested).
Tensor linear(const Tensor& x, const Tensor& W, const Tensor& b) {
    PF_CHECK(x.defined() && W.defined(), "linear: undefined operand");
    PF_CHECK(W.dim() == 2 && x.dim() >= 1 && x.shape().back() == W.shape()[0],
             "linear: input {} does not fit weight {} (want (..., K) and (K, N))",
             shape_str(x.shape()), shape_str(W.shape()));
    const int64_t K = W.shape()[0], N = W.shape()[1], R = K == 0 ? 0 : x.numel() / K;
    PF_CHECK(!b.defined() || b.shape() == Shape{N}, "linear: bias {} for weight {} (want ({}))",
             shape_str(b.shape()), shape_str(W.shape()), N);
    Shape out_shape = x.shape();
    out_shape.back() = N;
    Tensor y = Tensor::empty(out_shape);
    float* out = y.mutable_data();
    if (b.defined()) {
        const float* bias = b.data();
        parallel_for(R, kernels::row_grain(N), [&](int64_t begin, int64_t end) {
            for (int64_t r = begin; r < end; ++r) std::copy_n(bias, N, out + r * N);
        });
    }
    blas::gemm(false, false, R, N, K, 1.0f, x.data(), K, W.data(), N, b.defined() ? 1.0f : 0.0f,
               out, N);
    std::vector<Tensor> inputs{x, W};
    if (b.defined()) inputs.push_back(b);
    bool need_x = x.requires_grad(), need_W = W.requires_grad(), has_b = b.defined();
    return record("linear", y, inputs, [=, x_shape = x.shape(), sx = SavedTensor(x),
                                        sW = SavedTensor(W)](const Tensor& g) {
        Tensor g2 = reshape(g, {R, N});
        Grads grads{need_x ? reshape(matmul(g2, sW.get(), false, true), x_shape) : Tensor(),
                    need_W ? matmul(reshape(sx.get(), {R, K}), g2, true, false) : Tensor()};
        if (has_b) grads.push_back(sum(g2, 0));
        return grads;
    });
}

}  // namespace pf
