// feature_error.cpp — Lemma 2's mean squared errors (see feature_error.h), in double.
#include "nn/feature_error.h"

#include "engine/error.h"
#include "engine/ops.h"
#include "nn/attention.h"

#include <algorithm>
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

namespace {
// The pairs attended: (L, L) ones where j <= i (causal) or everywhere.
Tensor attended_pairs(int64_t L, bool causal) {
    Tensor pairs = Tensor::ones({L, L});
    if (causal)
        for (int64_t i = 0; i < L; ++i)
            std::fill(pairs.mutable_data() + i * L + i + 1, pairs.mutable_data() + (i + 1) * L, 0.0f);
    return pairs;
}

// FAVOR+'s attention matrix: rows of phi(q) phi(k)^T over the attended pairs, summing to 1.
Tensor favor_attention_matrix(const Tensor& q, const Tensor& k, const Tensor& W,
                              const Tensor& pairs) {
    Tensor scores = mul(matmul(favor_features(q, W, true), favor_features(k, W, false), false, true), pairs);
    return div(scores, sum(scores, -1, /*keepdim=*/true));
}

// Mean over rows of 1/2 sum_j |a_ij - b_ij|.
double total_variation(const Tensor& a, const Tensor& b) {
    return 0.5 * mean(sum(abs(sub(a, b)), -1)).item();
}
}  // namespace

AttentionShift attention_shift(const Tensor& q, const Tensor& k, const Tensor& trained,
                               const Tensor& redrawn, bool causal) {
    PF_CHECK(q.dim() == 4 && q.shape() == k.shape(), "attention_shift: q {} and k {} must be "
             "(B, H, L, d)", shape_str(q.shape()), shape_str(k.shape()));
    NoGradGuard analysis;
    const int64_t L = q.shape()[2], d = q.shape()[3];
    const Tensor pairs = attended_pairs(L, causal);
    const float scale = std::pow(float(d), -0.25f);
    Tensor x = mul_scalar(q, scale), y = mul_scalar(k, scale);
    Tensor xx = sum(mul(x, x), -1, true), yy = sum(mul(y, y), -1, true);  // (B, H, L, 1)
    // |x_i + y_j|^2 = |x_i|^2 + |y_j|^2 + 2 x_i . y_j over the attended pairs
    Tensor z2 = add(add(xx, transpose(yy, -1, -2)), mul_scalar(matmul(x, y, false, true), 2.0f));
    AttentionShift shift;
    shift.query_norm2 = mean(xx).item();
    shift.key_norm2 = mean(yy).item();
    shift.sum_norm2 = sum(mul(z2, pairs)).item() / (double(sum(pairs).item()) * (q.numel() / (L * d)));
    Tensor exact = softmax(matmul(q, k, false, true), 1.0f / std::sqrt(float(d)), causal);
    Tensor with_trained = favor_attention_matrix(q, k, trained, pairs);
    Tensor with_redrawn = favor_attention_matrix(q, k, redrawn, pairs);
    shift.trained_vs_softmax = total_variation(with_trained, exact);
    shift.redrawn_vs_softmax = total_variation(with_redrawn, exact);
    shift.trained_vs_redrawn = total_variation(with_trained, with_redrawn);
    return shift;
}

}  // namespace pf::nn
