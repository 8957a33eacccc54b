// feature_error.h — how far random features are from the softmax kernel, in theory: the
// mean squared error of one estimated entry of the attention matrix (Performer paper,
// Lemma 2). build/approx prints it beside the measured error; tests/test_feature_error.cpp
// checks it against many independent draws of the features.
//
// x, y (d each) are a query and a key as the feature maps see them, scaled: x = q d^-1/4,
// y = k d^-1/4, so that the entry is SM(x, y) = exp(x . y) = exp(q . k / sqrt(d)). With
// z = x + y, Δ = x - y and m rows of W drawn iid from N(0, I_d):
//
//   positive  phi(x) = m^-1/2 exp(W x - |x|^2 / 2)
//             MSE = (1/m) e^{|z|^2} SM^2 (1 - e^{-|z|^2})
//   trig      phi(x) = m^-1/2 e^{|x|^2 / 2} [cos W x, sin W x]
//             MSE = (1/2m) e^{|z|^2} SM^-2 (1 - e^{-|Δ|^2})^2
//
// Both estimators are unbiased, so the MSE is their variance, that of one row w over m:
//   positive  one row gives e^{w.z - (|x|^2 + |y|^2)/2}, and E[e^{2 w.z}] = e^{2|z|^2}, so
//             Var = e^{2|z|^2 - |x|^2 - |y|^2} - SM^2 = SM^2 (e^{|z|^2} - 1), using
//             |z|^2 = |x|^2 + |y|^2 + 2 x.y;
//   trig      one row gives e^{(|x|^2 + |y|^2)/2} cos(w.Δ) (cos a cos b + sin a sin b =
//             cos(a - b)), and E[cos w.Δ] = e^{-|Δ|^2/2}, E[cos^2 w.Δ] = (1 + e^{-2|Δ|^2})/2,
//             so Var = e^{|x|^2 + |y|^2} (1 - e^{-|Δ|^2})^2 / 2, with e^{|x|^2 + |y|^2} =
//             e^{|z|^2} SM^-2.
// Orthogonal rows (random_features.h) are not independent: these formulas are not theirs
// (the paper's Theorem 2 bounds how much lower their error is).
//
// And in practice: attention_shift() takes a trained model's queries and keys and
// compares its FAVOR+ attention with that of a new draw of the features and with exact
// softmax attention (build/eval --attention-shift). The same matrices, row by row, are
// what build/explore puts on its page: softmax_attention_matrix, favor_attention_matrix,
// row_total_variation and row_norms below.
#pragma once

#include "engine/tensor.h"

#include <cstdint>
#include <span>

namespace pf::nn {

// The MSE of phi(x) . phi(y) as an estimate of exp(x . y), m iid rows, for scaled x, y (d).
double positive_features_mse(std::span<const float> x, std::span<const float> y, int64_t m);
double trig_features_mse(std::span<const float> x, std::span<const float> y, int64_t m);

// Per-head queries and keys q, k (B, H, L, d) under three attentions: exact softmax, and
// FAVOR+ with the features `trained` and with `redrawn` (m, d each). Rows of the
// attention matrices (causal: over j <= i) are compared by total variation,
// 1/2 sum_j |a_j - b_j| (0: the same weights, 1: disjoint), averaged over rows. Beside
// them, the sizes Lemma 2 says decide the error, averaged over positions or over the
// pairs attended: |x|^2, |y|^2 and |x + y|^2, for x = q d^-1/4 and y = k d^-1/4.
struct AttentionShift {
    double query_norm2 = 0, key_norm2 = 0, sum_norm2 = 0;
    double trained_vs_softmax = 0, redrawn_vs_softmax = 0, trained_vs_redrawn = 0;
};
AttentionShift attention_shift(const Tensor& q, const Tensor& k, const Tensor& trained,
                               const Tensor& redrawn, bool causal);

// ---- the same, row by row (build/explore) ---------------------------------------------
// q, k (B, H, L, d) → attention matrices (B, H, L, L) whose rows sum to 1; causal: row i
// over j <= i, zeros above the diagonal.
//   softmax   a_ij = exp(q_i . k_j / sqrt(d)) / sum_j' exp(q_i . k_j' / sqrt(d))
//   favor     a_ij = phi(q_i) . phi(k_j) / sum_j' phi(q_i) . phi(k_j'), with W (m, d) and
//             favor_features' stabilisers; causal keys as causal attention stabilises
//             them, by the prefix maximum c_j (favor_causal_key_features), the entry
//             rescaled by e^{c_j - c_i} (<= 1) as the running state of the fused op is:
//             the weights the model's FAVOR+ attention gives its values.
Tensor softmax_attention_matrix(const Tensor& q, const Tensor& k, bool causal);
Tensor favor_attention_matrix(const Tensor& q, const Tensor& k, const Tensor& W, bool causal);

// Total variation of each row: a, b (..., L, L) → (..., L), 1/2 sum_j |a_ij - b_ij|.
Tensor row_total_variation(const Tensor& a, const Tensor& b);

// Lemma 2's sizes for each position i, for x = q d^-1/4 and y = k d^-1/4 (q, k (B, H, L, d)):
// |x_i|^2, |y_i|^2 (the key at position i) and the mean of |x_i + y_j|^2 over the keys j
// that row i attends (causal: j <= i). (B, H, L) each.
struct RowNorms {
    Tensor query_norm2, key_norm2, sum_norm2;
};
RowNorms row_norms(const Tensor& q, const Tensor& k, bool causal);

}  // namespace pf::nn
