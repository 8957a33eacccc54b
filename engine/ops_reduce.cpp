// ops_reduce.cpp — sum, mean and max, over one axis or over all elements.
//
// Determinism: every output element is summed in a fixed order — by one piece, or, for
// a long axis, as partial sums over fixed blocks of it added in order — and the
// all-element sum adds fixed-size blocks in order. The blocks depend on the sizes, never
// on the thread count, so results are identical for any number of threads. Sums
// accumulate in double.
#include "engine/allocator.h"
#include "engine/kernels.h"
#include "engine/ops.h"

#include <cmath>
#include <limits>

namespace pf {

using kernels::AxisView;
using kernels::around_axis;

namespace {

constexpr int64_t kSumBlock = 1 << 16;  // elements per partial sum in sum(x)
constexpr int64_t kColumnBlock = 256;   // inner positions per piece of an axis reduction
constexpr int64_t kRowBlock = 512;      // positions along a long axis per partial sum

Shape reduced_shape(const Shape& shape, int64_t axis, bool keepdim) {
    Shape out = shape;
    if (keepdim)
        out[axis] = 1;
    else
        out.erase(out.begin() + axis);
    return out;
}

// acc[i] = sum over k in [k0, k1) of in[o, k, i], for the inner positions [i0, i0 + width).
void sum_columns(const float* in, AxisView v, int64_t o, int64_t k0, int64_t k1, int64_t i0,
                 int64_t width, double* acc) {
    std::fill(acc, acc + width, 0.0);
    for (int64_t k = k0; k < k1; ++k) {
        const float* row = in + (o * v.n + k) * v.inner + i0;
        for (int64_t i = 0; i < width; ++i) acc[i] += row[i];
    }
}

// out[o, i] = sum_k in[o, k, i], for the (outer, n, inner) view. Pieces are
// (o, block of inner positions), each summing its columns in k order; when that
// offers fewer than 64 pieces and the axis is long (a bias gradient: the sum over
// 8192 rows of a (8192, 256) tensor makes 1 x 1 piece), also equal blocks of at least
// kRowBlock along k, whose partial sums are then added in order.
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
    const int64_t row_blocks = std::min((v.n + kRowBlock - 1) / kRowBlock,
                                        std::max<int64_t>(1, 64 / (v.outer * blocks)));
    if (row_blocks > 1) {
        // partial[(o, r), i]: the sum over rows block r; (outer x row_blocks x inner)
        ScratchBuffer<double> partial(size_t(v.outer * row_blocks * v.inner));
        const int64_t rows = (v.n + row_blocks - 1) / row_blocks;  // per block
        parallel_pieces(v.outer * blocks * row_blocks, [&](int64_t piece) {
            int64_t r = piece % row_blocks, column_block = piece / row_blocks % blocks,
                    o = piece / row_blocks / blocks, i0 = column_block * kColumnBlock;
            int64_t k0 = std::min(v.n, r * rows), k1 = std::min(v.n, (r + 1) * rows);
            sum_columns(in, v, o, k0, k1, i0, std::min(kColumnBlock, v.inner - i0),
                        partial.get() + (o * row_blocks + r) * v.inner + i0);
        });
        parallel_for(v.outer * v.inner, kernels::kElementwiseGrain, [&](int64_t begin, int64_t end) {
            for (int64_t e = begin; e < end; ++e) {
                int64_t o = e / v.inner, i = e % v.inner;
                double s = 0;
                for (int64_t r = 0; r < row_blocks; ++r) s += partial[(o * row_blocks + r) * v.inner + i];
                out[e] = float(s);
            }
        });
        return;
    }
    int64_t grain = std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(v.n * kColumnBlock, 1));
    parallel_for(v.outer * blocks, grain, [&](int64_t begin, int64_t end) {
        std::vector<double> acc(kColumnBlock);
        for (int64_t piece = begin; piece < end; ++piece) {
            int64_t o = piece / blocks, i0 = (piece % blocks) * kColumnBlock;
            int64_t width = std::min(kColumnBlock, v.inner - i0);
            sum_columns(in, v, o, 0, v.n, i0, width, acc.data());
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
