// gradcheck.h — compare an op's backward with central finite differences.
//
// For a function f of some tensors we take the scalar L = sum_i r_i f(x)_i with fixed
// random weights r (so every output element matters, each differently), compute
// dL/dx by backward, and compare it with (L(x + h e_j) - L(x - h e_j)) / 2h for every
// input element j. L is summed in double from the float outputs.
//
// Float32 is noisy: with h = 1e-2 the rounding error of L is ~1e-7 |y| sqrt(n) / h and
// the truncation error ~h^2 |f'''| / 6, both far below the tolerance
// |analytic - numeric| <= atol + rtol |numeric| with atol = 5e-3, rtol = 2e-2, while a
// wrong backward (a missing factor, a wrong sign, a swapped input) is far above it.
#pragma once

#include "engine/ops.h"
#include "engine/random.h"
#include "engine/thread_pool.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace pf::testing {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

struct GradcheckResult {
    bool ok = true;
    double worst = 0;     // largest |analytic - numeric| / (atol + rtol |numeric|)
    std::string message;  // where the worst mismatch was
};

inline double weighted_sum(const Tensor& y, const Tensor& weights) {
    double total = 0;
    for (int64_t i = 0; i < y.numel(); ++i) total += double(y.data()[i]) * weights.data()[i];
    return total;
}

inline GradcheckResult gradcheck(const Fn& f, std::vector<Tensor> inputs, uint64_t seed = 7,
                                 float h = 1e-2f, double atol = 5e-3, double rtol = 2e-2) {
    for (Tensor& x : inputs) {
        x.requires_grad_();
        x.zero_grad();  // the same tensor may be checked several times
    }
    Tensor y = f(inputs);
    Generator gen(seed);
    Tensor weights = Tensor::rand(y.shape(), gen, -1.0f, 1.0f);
    y.backward(weights);

    GradcheckResult result;
    NoGradGuard no_grad;
    for (size_t t = 0; t < inputs.size(); ++t) {
        Tensor analytic = inputs[t].grad();
        float* x = inputs[t].mutable_data();
        for (int64_t j = 0; j < inputs[t].numel(); ++j) {
            float original = x[j];
            x[j] = original + h;
            double plus = weighted_sum(f(inputs), weights);
            x[j] = original - h;
            double minus = weighted_sum(f(inputs), weights);
            x[j] = original;
            double numeric = (plus - minus) / (2.0 * h);
            double got = analytic.defined() ? analytic.data()[j] : 0.0;
            double ratio = std::fabs(got - numeric) / (atol + rtol * std::fabs(numeric));
            if (ratio > result.worst) {
                result.worst = ratio;
                result.message = fmt::format("input {} element {}: analytic {:.6g}, numeric {:.6g}",
                                             t, j, got, numeric);
            }
        }
    }
    result.ok = result.worst <= 1.0;
    return result;
}

// REQUIRE that f's gradients match; prints the worst element when they do not.
#define REQUIRE_GRADIENTS(f, ...)                                   \
    do {                                                            \
        auto gradcheck_result = ::pf::testing::gradcheck(f, __VA_ARGS__); \
        INFO(gradcheck_result.message);                             \
        REQUIRE(gradcheck_result.ok);                               \
    } while (0)

// Random test data: normal values, or values kept away from 0 (for kinks and log).
inline Tensor random_tensor(const Shape& shape, Generator& gen, float scale = 1.0f) {
    return Tensor::randn(shape, gen, 0.0f, scale);
}

inline Tensor positive_tensor(const Shape& shape, Generator& gen, float low = 0.5f,
                              float high = 2.0f) {
    return Tensor::rand(shape, gen, low, high);
}

// Normal values pushed at least `gap` away from zero (kinks of relu and abs).
inline Tensor away_from_zero(const Shape& shape, Generator& gen, float gap = 0.1f) {
    Tensor t = Tensor::randn(shape, gen);
    float* p = t.mutable_data();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] += p[i] >= 0 ? gap : -gap;
    return t;
}

// A random shape of `dims` axes with sizes in [1, max_size]: size-1 axes included.
inline Shape random_shape(Generator& gen, int dims, int max_size = 4) {
    Shape shape(dims);
    for (auto& s : shape) s = 1 + int64_t(gen.below(uint64_t(max_size)));
    return shape;
}

// Largest |x| over a tensor's elements.
inline double max_abs(const Tensor& t) {
    double worst = 0;
    for (int64_t i = 0; i < t.numel(); ++i) worst = std::max(worst, double(std::fabs(t.data()[i])));
    return worst;
}

// Largest |a - b| over two equally shaped tensors.
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
    REQUIRE(a.shape() == b.shape());
    double worst = 0;
    for (int64_t i = 0; i < a.numel(); ++i)
        worst = std::max(worst, double(std::fabs(a.data()[i] - b.data()[i])));
    return worst;
}

// Equal shapes and every float equal bit for bit (NaNs equal to themselves).
inline bool same_bits(const Tensor& a, const Tensor& b) {
    return a.shape() == b.shape() &&
           std::memcmp(a.data(), b.data(), size_t(a.numel()) * sizeof(float)) == 0;
}
inline void require_same_bits(const Tensor& a, const Tensor& b) {
    REQUIRE(a.shape() == b.shape());
    REQUIRE(same_bits(a, b));
}

// Sets the thread count for a scope; restores it when the scope ends, even by an exception.
struct ThreadCount {
    int saved = num_threads();
    explicit ThreadCount(int n) { set_num_threads(n); }
    ~ThreadCount() { set_num_threads(saved); }
};

}  // namespace pf::testing
