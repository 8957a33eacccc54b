// ops.h — every differentiable operation of the engine.
//
// Each op computes its output, then record()s a backward closure beside it (see
// tensor.h). The definitions live in ops_*.cpp, grouped by kind, each under a comment
// giving the math of its forward and backward and the shapes.
//
// Broadcasting happens only in add/sub/mul/div/where/masked_fill, numpy style: the
// shapes are aligned at the right and size-1 axes stretch. Those front ends expand()
// their operands to a common shape, so every kernel sees equal shapes; expand's
// backward sums the gradient back to the input's shape (sum_to).
//
// Axes may be negative (counting from the end). Bad shapes, axes or indices throw
// pf::Error naming the op and the shapes.
#pragma once

#include "engine/tensor.h"

#include <vector>

namespace pf {

class Generator;

// ---- elementwise, with broadcasting (ops_elementwise.cpp) ------------------------
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op_name);
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
// where(condition, a, b): a where condition != 0, else b (condition has no gradient).
Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b);
// masked_fill(x, mask, value): value where mask != 0, else x.
Tensor masked_fill(const Tensor& x, const Tensor& mask, float value);

// ---- elementwise, one input ------------------------------------------------------
Tensor neg(const Tensor& x);
Tensor add_scalar(const Tensor& x, float c);
Tensor mul_scalar(const Tensor& x, float c);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor pow(const Tensor& x, float exponent);
Tensor abs(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor gelu(const Tensor& x);  // tanh approximation, as in GPT-2
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor clone(const Tensor& x);  // a copy with its own storage; gradient passes through

// ---- reductions (ops_reduce.cpp) ----------------------------------------------------
Tensor sum(const Tensor& x);  // all elements → shape ()
Tensor sum(const Tensor& x, int64_t axis, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, int64_t axis, bool keepdim = false);
Tensor max(const Tensor& x);  // gradient goes to the first maximal element
Tensor max(const Tensor& x, int64_t axis, bool keepdim = false);

// ---- shapes (ops_shape.cpp) -------------------------------------------------------
// reshape shares the storage (tensors are always contiguous); one size may be -1.
Tensor reshape(const Tensor& x, const Shape& shape);
Tensor permute(const Tensor& x, const std::vector<int64_t>& order);
Tensor transpose(const Tensor& x, int64_t axis_a, int64_t axis_b);
Tensor slice(const Tensor& x, int64_t axis, int64_t start, int64_t end);  // [start, end)
Tensor concat(const std::vector<Tensor>& xs, int64_t axis);
Tensor expand(const Tensor& x, const Shape& shape);  // broadcast to shape (a copy)
Tensor sum_to(const Tensor& x, const Shape& shape);  // sum broadcast axes away

// ---- matrix products (ops_matmul.cpp) ------------------------------------------------
// matmul(a, b, trans_a, trans_b) = op(a) op(b) over the last two axes:
//   a (..., M, K) [or (..., K, M) with trans_a], b (..., K, N) [or (..., N, K) with trans_b]
//   → (..., M, N). The leading (batch) axes of a and b must be equal, or b is 2-D
//   and is used for every batch item (a Linear layer: x (B, L, D) @ W (D, N)).
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);
// linear(x, W, b) = x W + b for x (..., K), W (K, N), b (N) or undefined → (..., N):
// one fused op (the bias goes in before the product, PyTorch's addmm).
Tensor linear(const Tensor& x, const Tensor& W, const Tensor& b = {});

// ---- neural-network ops (ops_nn.cpp) ---------------------------------------------------
// softmax(scale * x) over the last axis. causal: in each matrix of the last two axes,
// row i sees columns j <= i only (the others get probability 0) — exact causal
// attention without building and expanding a mask.
Tensor softmax(const Tensor& x, float scale = 1.0f, bool causal = false);
Tensor log_softmax(const Tensor& x);  // over the last axis
// layer_norm over the last axis D: (x - mean) / sqrt(var + eps) * weight + bias.
// weight and bias have shape (D) and may be undefined (no affine part).
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps = 1e-5f);
// Mean over rows i with targets[i] != ignore_index of -log softmax(logits[i])[targets[i]].
// logits (N, C), targets N values in [0, C) or ignore_index → shape ().
Tensor cross_entropy(const Tensor& logits, const std::vector<int32_t>& targets,
                     int32_t ignore_index = -100);
// Rows of weight (V, D) picked by ids (N values in [0, V)) → (N, D).
Tensor embedding(const Tensor& weight, const std::vector<int32_t>& ids);
// Zero each element with probability p, scale the rest by 1 / (1 - p): element i by the
// draw at counter first + i of gen. The second form draws at the next x.numel() counters
// (none when p = 0).
Tensor dropout(const Tensor& x, float p, const Generator& gen, uint64_t first);
Tensor dropout(const Tensor& x, float p, Generator& gen);
Tensor cumsum(const Tensor& x, int64_t axis);  // y_i = sum_{j <= i} x_j along axis
Tensor cummax(const Tensor& x, int64_t axis);  // y_i = max_{j <= i} x_j along axis

// ---- positions (ops_index.cpp) --------------------------------------------------------
// Indices are float tensors of whole numbers. argsort(x, axis): for each line along
// axis, the positions of its elements in ascending order, stable (ties by position),
// NaN last; no gradient.  x: (..., n, ...) → same shape, values in [0, n)
Tensor argsort(const Tensor& x, int64_t axis = -1);
// gather(x, axis, index): y[a, k, i] = x[a, index[a, k], i] — whole slices picked along
// axis (a: the axes before it, i: those after). Backward: a scatter-add.
//   x: (A..., n, I...), index: (A..., p) → (A..., p, I...)
Tensor gather(const Tensor& x, int64_t axis, const Tensor& index);

// ---- causal attention products (ops_attention.cpp) --------------------------------------
// causal_dot_product(q, k, v, chunk, c): y_i = sum_{j <= i} e^(c_j - c_i) (q_i . k_j) v_j,
// fused and chunked (C positions at a time), memory O(L (m + dv)) per batch item, and
// while it runs the m x dv states of one window of chunks (at most 16 MB where the
// sizes allow a window of one chunk). The optional log-scale c (a constant,
// non-decreasing along L; 0 if undefined) lets keys carry a stabiliser built from
// earlier positions only (FAVOR+: nn/attention.h). Output i reads positions <= i
// alone, bit for bit. Parallel over (batch item, chunk) pieces, window by window.
//   q, k: (..., L, m), v: (..., L, dv), c: (..., L) → (..., L, dv)
Tensor causal_dot_product(const Tensor& q, const Tensor& k, const Tensor& v, int64_t chunk = 64,
                          const Tensor& log_scale = {});
// The same from primitives, as the L x L matrix (O(L^2) memory): the reference.
Tensor causal_dot_product_reference(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& log_scale = {});
// causal_matmul(p, v) = tril(p) v: y_i = sum_{j <= i} p_ij v_j, reading no p_ij or v_j
// with j > i (a later NaN never reaches row i).  p: (..., L, L), v: (..., L, d) → (..., L, d)
Tensor causal_matmul(const Tensor& p, const Tensor& v);

// shifted_exp(u, s, eps) = e^(u - s) + eps with one s per row, fused: FAVOR+'s feature
// map after its product. Keeps only its output for backward.
//   u: (..., m), s: (..., 1) → (..., m)
Tensor shifted_exp(const Tensor& u, const Tensor& s, float eps = 0.0f);

// ---- operators -------------------------------------------------------------------------
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& x) { return neg(x); }
inline Tensor operator+(const Tensor& x, float c) { return add_scalar(x, c); }
inline Tensor operator+(float c, const Tensor& x) { return add_scalar(x, c); }
inline Tensor operator-(const Tensor& x, float c) { return add_scalar(x, -c); }
inline Tensor operator-(float c, const Tensor& x) { return add_scalar(neg(x), c); }
inline Tensor operator*(const Tensor& x, float c) { return mul_scalar(x, c); }
inline Tensor operator*(float c, const Tensor& x) { return mul_scalar(x, c); }
inline Tensor operator/(const Tensor& x, float c) { return mul_scalar(x, 1.0f / c); }

// Normalise a possibly negative axis for a tensor of `dim` axes; throws if out of range.
int64_t normalize_axis(int64_t axis, int64_t dim, const char* op_name);

}  // namespace pf
