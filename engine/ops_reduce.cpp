// ops_reduce.cpp — sum, mean and max, over one axis or over all elements.
//
// Determinism: every output element is summed by one thread in a fixed order, and
// the all-element sum adds fixed-size blocks (their number does not depend on the
// thread count) in order. So results are identical for any number of threads.
// Sums accumulate in double.
#include "engine/kernels.h"

#include <cmath>
#include <limits>

namespace pf {

using kernels::AxisView;
using kernels::around_axis;

namespace {

constexpr int64_t kSumBlock = 1 << 16;  // elements per partial sum in sum(x)
constexpr int64_t kColumnBlock = 256;   // inner positions per piece of an axis reduction

Shape reduced_shape(const Shape& shape, int64_t axis, bool keepdim) {
    Shape out = shape;
    if (keepdim)
        out[axis] = 1;
    else
        out.erase(out.begin() + axis);
    return out;
}

// out[o, i] = sum_k in[o, k, i], for the (outer, n, inner) view. Pieces are
// (o, block of inner positions), each summing its columns in k order.
void sum_axis_kernel(const float* in, float* out, AxisView v) {
    if (v.inner == 1) {  // rows are contiguous: one sum per row
        parallel_for(v.outer, kernels::row_grain(v.n), [&](int64_t begin, int64_t end) {
            for (int64_t o = begin; o < end; ++o) {
                double s = 0;
                for (int64_t k = 0; k < v.n; ++k) s += in[o * v.n + k];
                out[o] = float(s);
            }
        });
        return;
    }
    int64_t blocks = (v.inner + kColumnBlock - 1) / kColumnBlock;
    int64_t grain = std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(v.n * kColumnBlock, 1));
    parallel_for(v.outer * blocks, grain, [&](int64_t begin, int64_t end) {
        std::vector<double> acc(kColumnBlock);
        for (int64_t piece = begin; piece < end; ++piece) {
            int64_t o = piece / blocks, i0 = (piece % blocks) * kColumnBlock;
            int64_t width = std::min(kColumnBlock, v.inner - i0);
            std::fill(acc.begin(), acc.begin() + width, 0.0);
            for (int64_t k = 0; k < v.n; ++k) {
                const float* row = in + (o * v.n + k) * v.inner + i0;
                for (int64_t i = 0; i < width; ++i) acc[i] += row[i];
            }
            for (int64_t i = 0; i < width; ++i) out[o * v.inner + i0 + i] = float(acc[i]);
        }
    });
}

}  // namespace

// sum (all):  y = sum_i x_i  → shape ()          dx_i = g
Tensor sum(const Tensor& x) {
    const float* in = x.data();
    int64_t n = x.numel(), blocks = (n + kSumBlock - 1) / kSumBlock;
    std::vector<double> partial(blocks);
    parallel_pieces(blocks, [&](int64_t b) {
        double s = 0;
        for (int64_t i = b * kSumBlock; i < std::min(n, (b + 1) * kSumBlock); ++i) s += in[i];
        partial[b] = s;
    });
    double total = 0;
    for (double s : partial) total += s;
    Tensor y = Tensor::scalar(float(total));
    return record("sum", y, {x}, [shape = x.shape()](const Tensor& g) {
        return Grads{Tensor::full(shape, g.item())};
    });
}

// sum (axis):  y[o, i] = sum_k x[o, k, i]          dx[o, k, i] = g[o, i]
Tensor sum(const Tensor& x, int64_t axis, bool keepdim) {
    axis = normalize_axis(axis, x.dim(), "sum");
    Tensor y = Tensor::empty(reduced_shape(x.shape(), axis, keepdim));
    sum_axis_kernel(x.data(), y.mutable_data(), around_axis(x.shape(), axis));
    return record("sum", y, {x}, [shape = x.shape(), axis](const Tensor& g) {
        Shape kept = shape;
        kept[axis] = 1;
        return Grads{expand(reshape(g, kept), shape)};
    });
}

// mean:  y = sum(x) / n                            dx = g / n
Tensor mean(const Tensor& x) {
    PF_CHECK(x.numel() > 0, "mean: tensor of shape {} is empty", shape_str(x.shape()));
    return mul_scalar(sum(x), 1.0f / float(x.numel()));
}

Tensor mean(const Tensor& x, int64_t axis, bool keepdim) {
    axis = normalize_axis(axis, x.dim(), "mean");
    PF_CHECK(x.shape()[axis] > 0, "mean: axis {} of shape {} is empty", axis, shape_str(x.shape()));
    return mul_scalar(sum(x, axis, keepdim), 1.0f / float(x.shape()[axis]));
}

// max (all):  y = max_i x_i                        dx = g at the first maximal element, else 0
Tensor max(const Tensor& x) {
    PF_CHECK(x.numel() > 0, "max: tensor of shape {} is empty", shape_str(x.shape()));
    const float* in = x.data();
    int64_t n = x.numel(), blocks = (n + kSumBlock - 1) / kSumBlock;
    std::vector<int64_t> best(blocks);
    parallel_pieces(blocks, [&](int64_t b) {
        int64_t arg = b * kSumBlock;
        for (int64_t i = arg + 1; i < std::min(n, (b + 1) * kSumBlock); ++i)
            if (in[i] > in[arg]) arg = i;
        best[b] = arg;
    });
    int64_t arg = best[0];
    for (int64_t b = 1; b < blocks; ++b)
        if (in[best[b]] > in[arg]) arg = best[b];
    Tensor y = Tensor::scalar(in[arg]);
    return record("max", y, {x}, [shape = x.shape(), arg](const Tensor& g) {
        Tensor dx = Tensor::zeros(shape);
        dx.mutable_data()[arg] = g.item();
        return Grads{dx};
    });
}

// max (axis):  y[o, i] = max_k x[o, k, i]          dx[o, k*, i] = g[o, i] at the first argmax k*
Tensor max(const Tensor& x, int64_t axis, bool keepdim) {
    axis = normalize_axis(axis, x.dim(), "max");
    AxisView v = around_axis(x.shape(), axis);
    PF_CHECK(v.n > 0, "max: axis {} of shape {} is empty", axis, shape_str(x.shape()));
    Tensor y = Tensor::empty(reduced_shape(x.shape(), axis, keepdim));
    auto argmax = std::make_shared<std::vector<int32_t>>(v.outer * v.inner);
    const float* in = x.data();
    float* out = y.mutable_data();
    parallel_for(v.outer, kernels::row_grain(v.n * v.inner), [&](int64_t begin, int64_t end) {
        for (int64_t o = begin; o < end; ++o) {
            for (int64_t i = 0; i < v.inner; ++i) {
                int32_t arg = 0;
                float best = in[o * v.n * v.inner + i];
                for (int64_t k = 1; k < v.n; ++k) {
                    float value = in[(o * v.n + k) * v.inner + i];
                    if (value > best) best = value, arg = int32_t(k);
                }
                out[o * v.inner + i] = best;
                (*argmax)[o * v.inner + i] = arg;
            }
        }
    });
    return record("max", y, {x}, [shape = x.shape(), v, argmax](const Tensor& g) {
        Tensor dx = Tensor::zeros(shape);
        float* d = dx.mutable_data();
        const float* gd = g.data();
        for (int64_t o = 0; o < v.outer; ++o)
            for (int64_t i = 0; i < v.inner; ++i)
                d[(o * v.n + (*argmax)[o * v.inner + i]) * v.inner + i] = gd[o * v.inner + i];
        return Grads{dx};
    });
}

}  // namespace pf
