// kernels.h — the loops the ops are made of (internal to the engine: ops_*.cpp, and
// autograd.cpp, which adds gradients up with map).
//
// These are not differentiable: they compute numbers. The ops in ops_*.cpp call them
// for their forward and backward passes and record() the graph themselves. Beneath the
// ops (this header knows only tensors), so that autograd can use them too.
// Elementwise loops are spread over the thread pool in contiguous pieces; each piece
// writes its own elements, so the result does not depend on the thread count.
#pragma once

#include "engine/tensor.h"
#include "engine/thread_pool.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace pf::kernels {

// e^x for float, written so that loops calling it vectorise (std::exp does not without
// -ffast-math, which we do not use; the Makefile's -fno-trapping-math lets the compiler
// turn the selects below into blends). Within 2 ulp of std::exp; the tests compare them.
//   e^x = 2^n e^r,  n = round(x / ln 2),  r = x - n ln 2 in [-ln 2 / 2, ln 2 / 2];
//   e^r by its degree-6 polynomial (Cephes' expf), 2^n by writing n into the exponent
//   bits. ln 2 is split in two constants so that n ln 2 is subtracted exactly.
inline float fast_exp(float x) {
    float clamped = x < -87.0f ? -87.0f : x;
    clamped = clamped > 88.0f ? 88.0f : clamped;
    const float n = std::floor(clamped * 1.44269504088896341f + 0.5f);
    const float r = clamped - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const float e_r = p * r * r + r + 1.0f;
    const float two_n = std::bit_cast<float>(int32_t(n + 127.0f) << 23);
    float y = e_r * two_n;
    y = x < -87.0f ? 0.0f : y;                                        // underflow: 0
    y = x > 88.0f ? std::numeric_limits<float>::infinity() : y;       // overflow: inf
    return x != x ? x : y;                                            // NaN stays NaN
}

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
