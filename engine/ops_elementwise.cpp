// ops_elementwise.cpp — arithmetic with broadcasting, and the one-input math functions.
//
// Notation: x, a, b are inputs, y the output, g = dL/dy the incoming gradient; the
// comment above each op gives y and the gradients it returns. All shapes are equal
// inside the kernels: broadcast_operands() expands first, and expand's own backward
// sums gradients back to each input's shape.
#include "engine/kernels.h"
#include "engine/ops.h"

#include <cmath>

namespace pf {

using kernels::fast_exp;
using kernels::map;

int64_t normalize_axis(int64_t axis, int64_t dim, const char* op_name) {
    PF_CHECK(axis >= -dim && axis < dim, "{}: axis {} out of range for a tensor with {} axes",
             op_name, axis, dim);
    return axis < 0 ? axis + dim : axis;
}

// Numpy rule: align the shapes at the right; sizes must match or one of them be 1.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op_name) {
    size_t n = std::max(a.size(), b.size());
    Shape out(n);
    for (size_t i = 0; i < n; ++i) {
        int64_t sa = i < n - a.size() ? 1 : a[i - (n - a.size())];
        int64_t sb = i < n - b.size() ? 1 : b[i - (n - b.size())];
        PF_CHECK(sa == sb || sa == 1 || sb == 1, "{}: shapes {} and {} cannot be broadcast",
                 op_name, shape_str(a), shape_str(b));
        out[i] = sa == 1 ? sb : sa;
    }
    return out;
}

namespace {
Tensor expand_to(const Tensor& x, const Shape& shape) {
    return x.shape() == shape ? x : expand(x, shape);
}

std::pair<Tensor, Tensor> broadcast_operands(const Tensor& a, const Tensor& b,
                                             const char* op_name) {
    PF_CHECK(a.defined() && b.defined(), "{}: undefined operand", op_name);
    Shape shape = broadcast_shapes(a.shape(), b.shape(), op_name);
    return {expand_to(a, shape), expand_to(b, shape)};
}
}  // namespace

// ---- two inputs ----------------------------------------------------------------

// add:  y = a + b                       da = g,  db = g
Tensor add(const Tensor& a_in, const Tensor& b_in) {
    auto [a, b] = broadcast_operands(a_in, b_in, "add");
    Tensor y = map(a, b, [](float p, float q) { return p + q; });
    return record("add", y, {a, b}, [](const Tensor& g) { return Grads{g, g}; });
}

// sub:  y = a - b                       da = g,  db = -g
Tensor sub(const Tensor& a_in, const Tensor& b_in) {
    auto [a, b] = broadcast_operands(a_in, b_in, "sub");
    Tensor y = map(a, b, [](float p, float q) { return p - q; });
    return record("sub", y, {a, b}, [](const Tensor& g) { return Grads{g, neg(g)}; });
}

// mul:  y = a * b                       da = g * b,  db = g * a
Tensor mul(const Tensor& a_in, const Tensor& b_in) {
    auto [a, b] = broadcast_operands(a_in, b_in, "mul");
    Tensor y = map(a, b, [](float p, float q) { return p * q; });
    bool need_a = a.requires_grad(), need_b = b.requires_grad();
    return record("mul", y, {a, b}, [need_a, need_b, sa = SavedTensor(a), sb = SavedTensor(b)](
                                        const Tensor& g) {
        return Grads{need_a ? mul(g, sb.get()) : Tensor(), need_b ? mul(g, sa.get()) : Tensor()};
    });
}

// div:  y = a / b                       da = g / b,  db = -g * a / b^2 = -g * y / b
Tensor div(const Tensor& a_in, const Tensor& b_in) {
    auto [a, b] = broadcast_operands(a_in, b_in, "div");
    Tensor y = map(a, b, [](float p, float q) { return p / q; });
    bool need_b = b.requires_grad();
    return record("div", y, {a, b}, [need_b, sb = SavedTensor(b), sy = SavedTensor(y)](
                                        const Tensor& g) {
        Tensor b = sb.get();
        Tensor da = map(g, b, [](float gi, float bi) { return gi / bi; });
        Tensor db = need_b ? map(g, sy.get(), b, [](float gi, float yi, float bi) {
            return -gi * yi / bi;
        }) : Tensor();
        return Grads{da, db};
    });
}

// where:  y = c ? a : b (c != 0)        da = c ? g : 0,  db = c ? 0 : g
Tensor where(const Tensor& condition, const Tensor& a_in, const Tensor& b_in) {
    PF_CHECK(condition.defined() && a_in.defined() && b_in.defined(), "where: undefined operand");
    Shape shape = broadcast_shapes(broadcast_shapes(condition.shape(), a_in.shape(), "where"),
                                   b_in.shape(), "where");
    Tensor c = expand_to(condition.detach(), shape);
    Tensor a = expand_to(a_in, shape), b = expand_to(b_in, shape);
    Tensor y = map(c, a, b, [](float ci, float ai, float bi) { return ci != 0 ? ai : bi; });
    return record("where", y, {a, b}, [sc = SavedTensor(c)](const Tensor& g) {
        Tensor c = sc.get();
        return Grads{map(c, g, [](float ci, float gi) { return ci != 0 ? gi : 0.0f; }),
                     map(c, g, [](float ci, float gi) { return ci != 0 ? 0.0f : gi; })};
    });
}

// masked_fill:  y = m ? value : x       dx = m ? 0 : g
Tensor masked_fill(const Tensor& x_in, const Tensor& mask_in, float value) {
    PF_CHECK(x_in.defined() && mask_in.defined(), "masked_fill: undefined operand");
    Shape shape = broadcast_shapes(x_in.shape(), mask_in.shape(), "masked_fill");
    Tensor x = expand_to(x_in, shape), mask = expand_to(mask_in.detach(), shape);
    Tensor y = map(x, mask, [value](float xi, float mi) { return mi != 0 ? value : xi; });
    return record("masked_fill", y, {x}, [sm = SavedTensor(mask)](const Tensor& g) {
        return Grads{map(sm.get(), g, [](float mi, float gi) { return mi != 0 ? 0.0f : gi; })};
    });
}

// ---- one input -------------------------------------------------------------------

// neg:  y = -x                          dx = -g
Tensor neg(const Tensor& x) {
    Tensor y = map(x, [](float v) { return -v; });
    return record("neg", y, {x}, [](const Tensor& g) { return Grads{neg(g)}; });
}

// add_scalar:  y = x + c                dx = g
Tensor add_scalar(const Tensor& x, float c) {
    Tensor y = map(x, [c](float v) { return v + c; });
    return record("add_scalar", y, {x}, [](const Tensor& g) { return Grads{g}; });
}

// mul_scalar:  y = c x                  dx = c g
Tensor mul_scalar(const Tensor& x, float c) {
    Tensor y = map(x, [c](float v) { return v * c; });
    return record("mul_scalar", y, {x}, [c](const Tensor& g) { return Grads{mul_scalar(g, c)}; });
}

// exp:  y = e^x                         dx = g * y
Tensor exp(const Tensor& x) {
    Tensor y = map(x, [](float v) { return fast_exp(v); });
    return record("exp", y, {x}, [sy = SavedTensor(y)](const Tensor& g) {
        return Grads{mul(g, sy.get())};
    });
}

// log:  y = ln x                        dx = g / x
Tensor log(const Tensor& x) {
    Tensor y = map(x, [](float v) { return std::log(v); });
    return record("log", y, {x}, [sx = SavedTensor(x)](const Tensor& g) {
        return Grads{div(g, sx.get())};
    });
}

// sqrt:  y = x^(1/2)                    dx = g / (2 y)
Tensor sqrt(const Tensor& x) {
    Tensor y = map(x, [](float v) { return std::sqrt(v); });
    return record("sqrt", y, {x}, [sy = SavedTensor(y)](const Tensor& g) {
        return Grads{map(g, sy.get(), [](float gi, float yi) { return gi * 0.5f / yi; })};
    });
}

// pow:  y = x^p                         dx = g * p * x^(p-1)
Tensor pow(const Tensor& x, float p) {
    Tensor y = map(x, [p](float v) { return std::pow(v, p); });
    return record("pow", y, {x}, [p, sx = SavedTensor(x)](const Tensor& g) {
        return Grads{map(g, sx.get(), [p](float gi, float xi) {
            return gi * p * std::pow(xi, p - 1.0f);
        })};
    });
}

// abs:  y = |x|                         dx = g * sign(x)   (0 at x = 0)
Tensor abs(const Tensor& x) {
    Tensor y = map(x, [](float v) { return std::fabs(v); });
    return record("abs", y, {x}, [sx = SavedTensor(x)](const Tensor& g) {
        return Grads{map(g, sx.get(), [](float gi, float xi) {
            return xi > 0 ? gi : (xi < 0 ? -gi : 0.0f);
        })};
    });
}

// relu:  y = max(x, 0)                  dx = g * [x > 0]
Tensor relu(const Tensor& x) {
    Tensor y = map(x, [](float v) { return v > 0 ? v : 0.0f; });
    return record("relu", y, {x}, [sx = SavedTensor(x)](const Tensor& g) {
        return Grads{map(g, sx.get(), [](float gi, float xi) { return xi > 0 ? gi : 0.0f; })};
    });
}

// gelu (tanh approximation):  y = x/2 (1 + t),  t = tanh(k (x + 0.044715 x^3)), k = sqrt(2/pi)
//   dx = g * [ (1 + t)/2 + x/2 (1 - t^2) k (1 + 3 * 0.044715 x^2) ]
// tanh(z) = 1 - 2 / (e^2z + 1), with the vectorising exp.
namespace {
float gelu_tanh(float v) {
    constexpr float k = 0.7978845608028654f, c = 0.044715f;
    return 1.0f - 2.0f / (fast_exp(2.0f * k * (v + c * v * v * v)) + 1.0f);
}
}  // namespace

Tensor gelu(const Tensor& x) {
    constexpr float k = 0.7978845608028654f, c = 0.044715f;
    Tensor y = map(x, [](float v) { return 0.5f * v * (1.0f + gelu_tanh(v)); });
    return record("gelu", y, {x}, [sx = SavedTensor(x)](const Tensor& g) {
        return Grads{map(g, sx.get(), [](float gi, float v) {
            float t = gelu_tanh(v);
            float dt = k * (1.0f + 3.0f * c * v * v);
            return gi * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * dt);
        })};
    });
}

// tanh:  y = tanh x                     dx = g (1 - y^2)
Tensor tanh(const Tensor& x) {
    Tensor y = map(x, [](float v) { return std::tanh(v); });
    return record("tanh", y, {x}, [sy = SavedTensor(y)](const Tensor& g) {
        return Grads{map(g, sy.get(), [](float gi, float yi) { return gi * (1.0f - yi * yi); })};
    });
}

// sigmoid:  y = 1 / (1 + e^-x)          dx = g y (1 - y)
Tensor sigmoid(const Tensor& x) {
    Tensor y = map(x, [](float v) { return 1.0f / (1.0f + fast_exp(-v)); });
    return record("sigmoid", y, {x}, [sy = SavedTensor(y)](const Tensor& g) {
        return Grads{map(g, sy.get(), [](float gi, float yi) { return gi * yi * (1.0f - yi); })};
    });
}

// sin:  y = sin x                       dx = g cos x
Tensor sin(const Tensor& x) {
    Tensor y = map(x, [](float v) { return std::sin(v); });
    return record("sin", y, {x}, [sx = SavedTensor(x)](const Tensor& g) {
        return Grads{map(g, sx.get(), [](float gi, float xi) { return gi * std::cos(xi); })};
    });
}

// cos:  y = cos x                       dx = -g sin x
Tensor cos(const Tensor& x) {
    Tensor y = map(x, [](float v) { return std::cos(v); });
    return record("cos", y, {x}, [sx = SavedTensor(x)](const Tensor& g) {
        return Grads{map(g, sx.get(), [](float gi, float xi) { return -gi * std::sin(xi); })};
    });
}

// clone:  y = x (own storage)           dx = g
Tensor clone(const Tensor& x) {
    Tensor y = map(x, [](float v) { return v; });
    return record("clone", y, {x}, [](const Tensor& g) { return Grads{g}; });
}

}  // namespace pf
