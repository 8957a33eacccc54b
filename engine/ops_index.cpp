// ops_index.cpp — ops on positions: argsort finds where elements go, gather moves them.
//
// Reformer's LSH attention (nn/baselines.h) sorts positions by their hash bucket and
// attends within chunks of the sorted order: argsort gives the order, gather moves
// queries, keys and values into it and the outputs back. Indices travel as float
// tensors holding whole numbers (exact up to 2^24, far above any sequence here).
#include "engine/kernels.h"
#include "engine/ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

namespace pf {

using kernels::AxisView;
using kernels::around_axis;

namespace {
constexpr int64_t kLargestIndex = int64_t(1) << 24;  // floats hold every integer below
}  // namespace

// argsort along an axis:  y[..., k, ...] = the index j of the k-th smallest x[..., j, ...]
// Stable (equal values keep their order: ties by index), NaN last. No gradient: the
// result is a list of positions, constant under small changes of x (gather along it
// carries the gradient of a sort).   x: (..., n, ...) → y: same shape, values in [0, n)
Tensor argsort(const Tensor& x, int64_t axis) {
    axis = normalize_axis(axis, x.dim(), "argsort");
    AxisView v = around_axis(x.shape(), axis);
    PF_CHECK(v.n <= kLargestIndex, "argsort: {} elements along axis {} of {}: at most 2^24",
             v.n, axis, shape_str(x.shape()));
    Tensor y = Tensor::empty(x.shape());
    const float* src = x.data();
    float* dst = y.mutable_data();
    // NaN compares as larger than every number, and equal to another NaN.
    auto before = [](float a, float b) { return !std::isnan(a) && (std::isnan(b) || a < b); };
    parallel_for(v.outer * v.inner, kernels::row_grain(v.n), [&](int64_t begin, int64_t end) {
        std::vector<int64_t> order(v.n);
        for (int64_t fiber = begin; fiber < end; ++fiber) {
            const int64_t o = fiber / v.inner, i = fiber % v.inner;
            auto at = [&](int64_t k) { return (o * v.n + k) * v.inner + i; };
            std::iota(order.begin(), order.end(), 0);
            std::stable_sort(order.begin(), order.end(),
                             [&](int64_t a, int64_t b) { return before(src[at(a)], src[at(b)]); });
            for (int64_t k = 0; k < v.n; ++k) dst[at(k)] = float(order[k]);
        }
    });
    return y;
}

// gather along an axis, whole slices at a time:
//   y[a, k, i] = x[a, index[a, k], i]          dx[a, j, i] = sum over k with index[a, k] = j of g[a, k, i]
// (a: the axes before `axis`, i: those after it). The backward is a scatter-add: an
// index may repeat (its slice gets every gradient sent to it) or be missing (zero).
//   x: (A..., n, I...), index: (A..., p), values in [0, n) → y: (A..., p, I...)
Tensor gather(const Tensor& x, int64_t axis, const Tensor& index) {
    axis = normalize_axis(axis, x.dim(), "gather");
    Shape lead(x.shape().begin(), x.shape().begin() + axis);
    PF_CHECK(index.dim() == axis + 1 &&
                 Shape(index.shape().begin(), index.shape().end() - 1) == lead,
             "gather: index {} does not fit x {} along axis {} (want the axes before it, then "
             "the positions)", shape_str(index.shape()), shape_str(x.shape()), axis);
    AxisView v = around_axis(x.shape(), axis);
    const int64_t p = index.shape().back();
    const float* positions = index.data();
    for (int64_t e = 0; e < index.numel(); ++e) {
        const float j = positions[e];
        PF_CHECK(j >= 0 && j < float(v.n) && j == std::floor(j),
                 "gather: index {} at element {} is not a position in [0, {}) of x {}", j, e,
                 v.n, shape_str(x.shape()));
    }
    Shape out_shape = lead;
    out_shape.push_back(p);
    out_shape.insert(out_shape.end(), x.shape().begin() + axis + 1, x.shape().end());
    Tensor y = Tensor::empty(out_shape);
    const float* src = x.data();
    float* dst = y.mutable_data();
    parallel_for(v.outer * p, kernels::row_grain(v.inner), [&](int64_t begin, int64_t end) {
        for (int64_t row = begin; row < end; ++row) {
            const int64_t o = row / p, j = int64_t(positions[row]);
            std::memcpy(dst + row * v.inner, src + (o * v.n + j) * v.inner, v.inner * sizeof(float));
        }
    });
    return record("gather", y, {x}, [v, p, x_shape = x.shape(), saved = SavedTensor(index)](
                                        const Tensor& g) {
        Tensor index = saved.get(), dx = Tensor::zeros(x_shape);
        const float* positions = index.data();
        const float* gd = g.data();
        float* d = dx.mutable_data();
        // Each a owns its slices of dx; within it, the k are added in order.
        parallel_for(v.outer, kernels::row_grain(p * v.inner),
                     [&](int64_t begin, int64_t end) {
            for (int64_t o = begin; o < end; ++o)
                for (int64_t k = 0; k < p; ++k) {
                    float* to = d + (o * v.n + int64_t(positions[o * p + k])) * v.inner;
                    const float* from = gd + (o * p + k) * v.inner;
                    for (int64_t i = 0; i < v.inner; ++i) to[i] += from[i];
                }
        });
        return Grads{dx};
    });
}

}  // namespace pf
