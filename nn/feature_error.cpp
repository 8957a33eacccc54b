// feature_error.cpp — Lemma 2's mean squared errors (see feature_error.h), in double.
#include "nn/feature_error.h"

#include "engine/error.h"

#include <cmath>

namespace pf::nn {

namespace {
// |x|^2, |y|^2 and x . y of two vectors of the same length d.
struct Products {
    double xx = 0, yy = 0, xy = 0;
};

Products products(std::span<const float> x, std::span<const float> y, int64_t m) {
    PF_CHECK(x.size() == y.size() && !x.empty(), "feature error: x has {} entries, y {}",
             x.size(), y.size());
    PF_CHECK(m > 0, "feature error: m = {} random features", m);
    Products p;
    for (size_t i = 0; i < x.size(); ++i)
        p.xx += double(x[i]) * x[i], p.yy += double(y[i]) * y[i], p.xy += double(x[i]) * y[i];
    return p;
}
}  // namespace

// (1/m) e^{|z|^2} SM^2 (1 - e^{-|z|^2}) = (1/m) e^{|z|^2 + 2 x.y} (1 - e^{-|z|^2}): one
// exponential, so that nothing overflows before the product does.
double positive_features_mse(std::span<const float> x, std::span<const float> y, int64_t m) {
    Products p = products(x, y, m);
    double z2 = p.xx + p.yy + 2 * p.xy;
    return std::exp(z2 + 2 * p.xy) * -std::expm1(-z2) / double(m);
}

// (1/2m) e^{|z|^2} SM^-2 (1 - e^{-|Δ|^2})^2 = (1/2m) e^{|x|^2 + |y|^2} (1 - e^{-|Δ|^2})^2.
double trig_features_mse(std::span<const float> x, std::span<const float> y, int64_t m) {
    Products p = products(x, y, m);
    double delta2 = p.xx + p.yy - 2 * p.xy;
    double shortfall = -std::expm1(-delta2);  // 1 - e^{-|Δ|^2}
    return std::exp(p.xx + p.yy) * shortfall * shortfall / (2.0 * double(m));
}

}  // namespace pf::nn
