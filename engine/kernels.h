// kernels.h — the loops the ops are made of (internal to engine/ops_*.cpp).
//
// These are not differentiable: they compute numbers. The ops in ops_*.cpp call them
// for their forward and backward passes and record() the graph themselves.
// Elementwise loops are spread over the thread pool in contiguous pieces; each piece
// writes its own elements, so the result does not depend on the thread count.
#pragma once

#include "engine/ops.h"
#include "engine/thread_pool.h"

namespace pf::kernels {

// Below this many elements an elementwise loop stays on the calling thread.
constexpr int64_t kElementwiseGrain = 1 << 15;

// Grain in rows for row-wise work, so that a piece holds about 16k elements.
inline int64_t row_grain(int64_t row_length) {
    return std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(row_length, 1));
}

// y[i] = f(x[i])
template <typename F>
Tensor map(const Tensor& x, F f) {
    Tensor y = Tensor::empty(x.shape());
    const float* in = x.data();
    float* out = y.mutable_data();
    parallel_for(x.numel(), kElementwiseGrain, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) out[i] = f(in[i]);
    });
    return y;
}

// y[i] = f(a[i], b[i]); a and b have equal shapes.
template <typename F>
Tensor map(const Tensor& a, const Tensor& b, F f) {
    PF_CHECK(a.shape() == b.shape(), "kernel: shapes {} and {} differ", shape_str(a.shape()),
             shape_str(b.shape()));
    Tensor y = Tensor::empty(a.shape());
    const float* pa = a.data();
    const float* pb = b.data();
    float* out = y.mutable_data();
    parallel_for(a.numel(), kElementwiseGrain, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) out[i] = f(pa[i], pb[i]);
    });
    return y;
}

// y[i] = f(a[i], b[i], c[i]); equal shapes.
template <typename F>
Tensor map(const Tensor& a, const Tensor& b, const Tensor& c, F f) {
    PF_CHECK(a.shape() == b.shape() && a.shape() == c.shape(), "kernel: shapes {}, {}, {} differ",
             shape_str(a.shape()), shape_str(b.shape()), shape_str(c.shape()));
    Tensor y = Tensor::empty(a.shape());
    const float* pa = a.data();
    const float* pb = b.data();
    const float* pc = c.data();
    float* out = y.mutable_data();
    parallel_for(a.numel(), kElementwiseGrain, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) out[i] = f(pa[i], pb[i], pc[i]);
    });
    return y;
}

// A tensor seen as (outer, n, inner) around one axis: element (o, k, i) is at
// (o * n + k) * inner + i. Reductions, slices, concat and cumsum work on this view.
struct AxisView {
    int64_t outer, n, inner;
};

inline AxisView around_axis(const Shape& shape, int64_t axis) {
    AxisView v{1, shape[axis], 1};
    for (int64_t i = 0; i < axis; ++i) v.outer *= shape[i];
    for (size_t i = axis + 1; i < shape.size(); ++i) v.inner *= shape[i];
    return v;
}

}  // namespace pf::kernels
