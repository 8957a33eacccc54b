// feature_error.cpp — Lemma 2's mean squared errors (see feature_error.h), in double; and a trained
// model's attention matrices under softmax and FAVOR+, row by row, compared.
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

// scores (..., L, L), non-negative → each row divided by its sum (floored at
// kSmallestDenominator, as linear attention floors its denominators: a row whose
// features all underflowed stays 0).
Tensor normalise_rows(const Tensor& scores) {
    const int64_t L = scores.shape().back(), rows = scores.numel() / std::max<int64_t>(L, 1);
    Tensor out = Tensor::empty(scores.shape());
    const float* in = scores.data();
    float* o = out.mutable_data();
    for (int64_t r = 0; r < rows; ++r) {
        double total = 0;
        for (int64_t j = 0; j < L; ++j) total += in[r * L + j];
        const double denominator = std::max(total, double(kSmallestDenominator));
        for (int64_t j = 0; j < L; ++j) o[r * L + j] = float(in[r * L + j] / denominator);
    }
    return out;
}

// Mean over rows of 1/2 sum_j |a_ij - b_ij|.
double total_variation(const Tensor& a, const Tensor& b) {
    return mean(row_total_variation(a, b)).item();
}
}  // namespace

Tensor softmax_attention_matrix(const Tensor& q, const Tensor& k, bool causal) {
    PF_CHECK(q.dim() == 4 && q.shape() == k.shape(), "softmax_attention_matrix: q {} and k {} "
             "must be (B, H, L, d)", shape_str(q.shape()), shape_str(k.shape()));
    NoGradGuard analysis;
    return softmax(matmul(q, k, false, true), 1.0f / std::sqrt(float(q.shape()[3])), causal);
}

Tensor favor_attention_matrix(const Tensor& q, const Tensor& k, const Tensor& W, bool causal) {
    PF_CHECK(q.dim() == 4 && q.shape() == k.shape(), "favor_attention_matrix: q {} and k {} "
             "must be (B, H, L, d)", shape_str(q.shape()), shape_str(k.shape()));
    NoGradGuard analysis;
    const int64_t L = q.shape()[2];
    Tensor phi_q = favor_features(q, W, true);  // (B, H, L, m)
    if (!causal) return normalise_rows(matmul(phi_q, favor_features(k, W, false), false, true));
    CausalKeyFeatures keys = favor_causal_key_features(k, W);  // phi (B, H, L, m), c (B, H, L)
    Tensor scores = matmul(phi_q, keys.phi, false, true);      // (B, H, L, L)
    // Row i of a (batch, head): phi(q_i) . phi(k_j) e^{c_j - c_i} for j <= i, 0 after.
    float* s = scores.mutable_data();
    const float* c = keys.log_scale.data();
    for (int64_t head = 0; head < scores.numel() / (L * L); ++head)
        for (int64_t i = 0; i < L; ++i) {
            float* row = s + (head * L + i) * L;
            const float c_i = c[head * L + i];
            for (int64_t j = 0; j <= i; ++j) row[j] *= std::exp(c[head * L + j] - c_i);
            std::fill(row + i + 1, row + L, 0.0f);
        }
    return normalise_rows(scores);
}

Tensor row_total_variation(const Tensor& a, const Tensor& b) {
    PF_CHECK(a.shape() == b.shape(), "row_total_variation: {} vs {}", shape_str(a.shape()),
             shape_str(b.shape()));
    NoGradGuard analysis;
    return mul_scalar(sum(abs(sub(a, b)), -1), 0.5f);
}

RowNorms row_norms(const Tensor& q, const Tensor& k, bool causal) {
    PF_CHECK(q.dim() == 4 && q.shape() == k.shape(), "row_norms: q {} and k {} must be "
             "(B, H, L, d)", shape_str(q.shape()), shape_str(k.shape()));
    NoGradGuard analysis;
    const int64_t L = q.shape()[2], d = q.shape()[3];
    const Tensor pairs = attended_pairs(L, causal);
    const float scale = std::pow(float(d), -0.25f);
    Tensor x = mul_scalar(q, scale), y = mul_scalar(k, scale);
    Tensor xx = sum(mul(x, x), -1, true), yy = sum(mul(y, y), -1, true);  // (B, H, L, 1)
    // |x_i + y_j|^2 = |x_i|^2 + |y_j|^2 + 2 x_i . y_j, averaged over the pairs row i attends
    Tensor z2 = add(add(xx, transpose(yy, -1, -2)), mul_scalar(matmul(x, y, false, true), 2.0f));
    Tensor attended = sum(pairs, -1);  // (L): keys per row
    return {sum(xx, -1), sum(yy, -1), div(sum(mul(z2, pairs), -1), attended)};
}

AttentionShift attention_shift(const Tensor& q, const Tensor& k, const Tensor& trained,
                               const Tensor& redrawn, bool causal) {
    PF_CHECK(q.dim() == 4 && q.shape() == k.shape(), "attention_shift: q {} and k {} must be "
             "(B, H, L, d)", shape_str(q.shape()), shape_str(k.shape()));
    NoGradGuard analysis;
    // Lemma 2's sizes: means over positions, and |x_i + y_j|^2 over every attended pair
    // (each row's mean weighted by the keys it attends).
    const RowNorms norms = row_norms(q, k, causal);
    const Tensor attended = sum(attended_pairs(q.shape()[2], causal), -1);  // (L): keys per row
    const double heads = double(q.shape()[0] * q.shape()[1]);              // B x H
    AttentionShift shift;
    shift.query_norm2 = mean(norms.query_norm2).item();
    shift.key_norm2 = mean(norms.key_norm2).item();
    shift.sum_norm2 = sum(mul(norms.sum_norm2, attended)).item() / (sum(attended).item() * heads);
    Tensor exact = softmax_attention_matrix(q, k, causal);
    Tensor with_trained = favor_attention_matrix(q, k, trained, causal);
    Tensor with_redrawn = favor_attention_matrix(q, k, redrawn, causal);
    shift.trained_vs_softmax = total_variation(with_trained, exact);
    shift.redrawn_vs_softmax = total_variation(with_redrawn, exact);
    shift.trained_vs_redrawn = total_variation(with_trained, with_redrawn);
    return shift;
}

}  // namespace pf::nn
