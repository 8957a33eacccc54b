// ops_shape.cpp — ops that move elements around: reshape, permute, slice, concat,
// expand and its inverse sum_to.
//
// Tensors are always contiguous, so reshape shares the storage and every other op
// here copies. Each backward moves the gradient back to where its elements came from.
#include "engine/kernels.h"
#include "engine/ops.h"

#include <cstring>
#include <numeric>

namespace pf {

using kernels::AxisView;
using kernels::around_axis;

namespace {
std::vector<int64_t> contiguous_strides(const Shape& shape) {
    std::vector<int64_t> strides(shape.size(), 1);
    for (int64_t i = int64_t(shape.size()) - 2; i >= 0; --i)
        strides[i] = strides[i + 1] * shape[i + 1];
    return strides;
}

// Copy a strided view of `in` into a contiguous `out` of shape `shape`:
// out[j0, ..., jn] = in[sum_a j_a * in_strides[a]]. Rows (all but the last axis) are
// spread over the threads; a row whose elements are adjacent in `in` is one memcpy.
void gather_strided(const float* in, const std::vector<int64_t>& in_strides, float* out,
                    const Shape& shape) {
    int64_t dims = int64_t(shape.size());
    if (dims == 0) {
        out[0] = in[0];
        return;
    }
    int64_t row_length = shape.back(), rows = numel(shape) / std::max<int64_t>(row_length, 1);
    if (row_length == 0) return;
    int64_t last_stride = in_strides.back();
    parallel_for(rows, kernels::row_grain(row_length), [&](int64_t begin, int64_t end) {
        for (int64_t row = begin; row < end; ++row) {
            int64_t offset = 0;  // input offset of this row's first element
            for (int64_t a = dims - 2, rest = row; a >= 0; --a) {
                offset += (rest % shape[a]) * in_strides[a];
                rest /= shape[a];
            }
            float* dst = out + row * row_length;
            if (last_stride == 1)
                std::memcpy(dst, in + offset, row_length * sizeof(float));
            else if (last_stride == 0)
                std::fill_n(dst, row_length, in[offset]);
            else
                for (int64_t j = 0; j < row_length; ++j) dst[j] = in[offset + j * last_stride];
        }
    });
}
}  // namespace

// reshape:  same elements, new shape (shared storage)     dx = reshape(g, x.shape)
Tensor reshape(const Tensor& x, const Shape& shape_in) {
    Shape shape = shape_in;
    int64_t known = 1, unknown = -1;
    for (size_t i = 0; i < shape.size(); ++i) {
        if (shape[i] == -1) {
            PF_CHECK(unknown < 0, "reshape: more than one -1 in {}", shape_str(shape_in));
            unknown = int64_t(i);
        } else {
            PF_CHECK(shape[i] >= 0, "reshape: bad size in {}", shape_str(shape_in));
            known *= shape[i];
        }
    }
    if (unknown >= 0) {
        PF_CHECK(known > 0 && x.numel() % known == 0, "reshape: cannot reshape {} into {}",
                 shape_str(x.shape()), shape_str(shape_in));
        shape[unknown] = x.numel() / known;
    }
    PF_CHECK(numel(shape) == x.numel(), "reshape: cannot reshape {} ({} elements) into {}",
             shape_str(x.shape()), x.numel(), shape_str(shape_in));
    Tensor y(shape, x.storage());
    return record("reshape", y, {x}, [old = x.shape()](const Tensor& g) {
        return Grads{reshape(g, old)};
    });
}

// permute:  y[j_0..j_n] = x[i] with i_{order[a]} = j_a       dx = permute(g, inverse order)
Tensor permute(const Tensor& x, const std::vector<int64_t>& order_in) {
    int64_t dims = x.dim();
    PF_CHECK(int64_t(order_in.size()) == dims, "permute: order of {} axes for shape {}",
             order_in.size(), shape_str(x.shape()));
    std::vector<int64_t> order(dims), inverse(dims, -1);
    for (int64_t a = 0; a < dims; ++a) {
        order[a] = normalize_axis(order_in[a], dims, "permute");
        PF_CHECK(inverse[order[a]] < 0, "permute: axis {} repeated in the order",
                 order_in[a]);
        inverse[order[a]] = a;
    }
    Shape shape(dims);
    std::vector<int64_t> x_strides = contiguous_strides(x.shape()), strides(dims);
    for (int64_t a = 0; a < dims; ++a) {
        shape[a] = x.shape()[order[a]];
        strides[a] = x_strides[order[a]];
    }
    Tensor y = Tensor::empty(shape);
    gather_strided(x.data(), strides, y.mutable_data(), shape);
    return record("permute", y, {x}, [inverse](const Tensor& g) {
        return Grads{permute(g, inverse)};
    });
}

Tensor transpose(const Tensor& x, int64_t axis_a, int64_t axis_b) {
    axis_a = normalize_axis(axis_a, x.dim(), "transpose");
    axis_b = normalize_axis(axis_b, x.dim(), "transpose");
    std::vector<int64_t> order(x.dim());
    std::iota(order.begin(), order.end(), 0);
    std::swap(order[axis_a], order[axis_b]);
    return permute(x, order);
}

// slice:  y = x[..., start:end, ...] along axis      dx = g placed in zeros at [start, end)
Tensor slice(const Tensor& x, int64_t axis, int64_t start, int64_t end) {
    axis = normalize_axis(axis, x.dim(), "slice");
    int64_t size = x.shape()[axis];
    PF_CHECK(0 <= start && start <= end && end <= size,
             "slice: range [{}, {}) out of bounds for axis {} of shape {}", start, end, axis,
             shape_str(x.shape()));
    Shape shape = x.shape();
    shape[axis] = end - start;
    Tensor y = Tensor::empty(shape);
    AxisView v = around_axis(x.shape(), axis);
    int64_t width = (end - start) * v.inner;
    const float* in = x.data();
    float* out = y.mutable_data();
    parallel_for(v.outer, kernels::row_grain(width), [&](int64_t b, int64_t e) {
        for (int64_t o = b; o < e; ++o)
            std::memcpy(out + o * width, in + (o * v.n + start) * v.inner, width * sizeof(float));
    });
    return record("slice", y, {x}, [xs = x.shape(), axis, start, v, width](const Tensor& g) {
        Tensor dx = Tensor::zeros(xs);
        float* d = dx.mutable_data();
        const float* gd = g.data();
        parallel_for(v.outer, kernels::row_grain(width), [&](int64_t b, int64_t e) {
            for (int64_t o = b; o < e; ++o)
                std::memcpy(d + (o * v.n + start) * v.inner, gd + o * width, width * sizeof(float));
        });
        return Grads{dx};
    });
}

// concat:  y = [x_0, x_1, ...] along axis             dx_t = slice of g where x_t went
Tensor concat(const std::vector<Tensor>& xs, int64_t axis) {
    PF_CHECK(!xs.empty(), "concat: no tensors");
    axis = normalize_axis(axis, xs[0].dim(), "concat");
    Shape shape = xs[0].shape();
    shape[axis] = 0;
    for (const Tensor& t : xs) {
        Shape expected = xs[0].shape(), got = t.shape();
        PF_CHECK(got.size() == expected.size(), "concat: shapes {} and {} have different ranks",
                 shape_str(expected), shape_str(got));
        expected[axis] = got[axis];
        PF_CHECK(got == expected, "concat: shapes {} and {} differ outside axis {}",
                 shape_str(xs[0].shape()), shape_str(got), axis);
        shape[axis] += got[axis];
    }
    Tensor y = Tensor::empty(shape);
    AxisView v = around_axis(shape, axis);
    float* out = y.mutable_data();
    std::vector<int64_t> starts;
    int64_t start = 0;
    for (const Tensor& t : xs) {
        starts.push_back(start);
        int64_t width = t.shape()[axis] * v.inner;
        const float* in = t.data();
        parallel_for(v.outer, kernels::row_grain(width), [&](int64_t b, int64_t e) {
            for (int64_t o = b; o < e; ++o)
                std::memcpy(out + (o * v.n + start) * v.inner, in + o * width, width * sizeof(float));
        });
        start += t.shape()[axis];
    }
    return record("concat", y, xs, [axis, starts, xs_count = xs.size(), shape](const Tensor& g) {
        Grads grads;
        for (size_t t = 0; t < xs_count; ++t) {
            int64_t end = t + 1 < xs_count ? starts[t + 1] : shape[axis];
            grads.push_back(slice(g, axis, starts[t], end));
        }
        return grads;
    });
}

// expand:  y = x broadcast to shape (size-1 and missing leading axes repeat)
//          dx = sum_to(g, x.shape)
Tensor expand(const Tensor& x, const Shape& shape) {
    int64_t dims = int64_t(shape.size()), lead = dims - x.dim();
    PF_CHECK(lead >= 0, "expand: cannot expand {} to fewer axes {}", shape_str(x.shape()),
             shape_str(shape));
    std::vector<int64_t> x_strides = contiguous_strides(x.shape()), strides(dims, 0);
    for (int64_t a = 0; a < x.dim(); ++a) {
        int64_t from = x.shape()[a], to = shape[lead + a];
        PF_CHECK(from == to || from == 1, "expand: cannot expand {} to {}", shape_str(x.shape()),
                 shape_str(shape));
        strides[lead + a] = from == 1 ? 0 : x_strides[a];
    }
    Tensor y = Tensor::empty(shape);
    gather_strided(x.data(), strides, y.mutable_data(), shape);
    return record("expand", y, {x}, [xs = x.shape()](const Tensor& g) {
        return Grads{sum_to(g, xs)};
    });
}

// sum_to:  y = x summed over the axes that broadcasting to x.shape stretched
//          dx = expand(g, x.shape)
Tensor sum_to(const Tensor& x, const Shape& shape) {
    int64_t dims = x.dim(), lead = dims - int64_t(shape.size());
    PF_CHECK(lead >= 0, "sum_to: cannot sum {} to more axes {}", shape_str(x.shape()),
             shape_str(shape));
    Tensor y = x;
    for (int64_t a = 0; a < dims; ++a) {
        int64_t target = a < lead ? 1 : shape[a - lead];
        PF_CHECK(target == x.shape()[a] || target == 1, "sum_to: cannot sum {} to {}",
                 shape_str(x.shape()), shape_str(shape));
        if (target == 1 && x.shape()[a] != 1) y = sum(y, a, /*keepdim=*/true);
    }
    return y.shape() == shape ? y : reshape(y, shape);
}

}  // namespace pf
