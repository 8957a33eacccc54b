// attention.cpp — feature maps, exact and linear attention, the multi-head module,
// and recurrent decoding.
#include "nn/attention.h"

#include "engine/ops.h"

#include <cmath>
#include <limits>

namespace pf::nn {

Mechanism parse_mechanism(const std::string& name) {
    if (name == "softmax") return Mechanism::Softmax;
    if (name == "favor") return Mechanism::Favor;
    if (name == "trig") return Mechanism::Trig;
    if (name == "relu") return Mechanism::Relu;
    if (name == "identity") return Mechanism::Identity;
    throw Error(fmt::format("unknown attention mechanism '{}' ({})", name,
                            fmt::join(mechanism_names(), ", ")));
}

std::string mechanism_name(Mechanism mechanism) {
    switch (mechanism) {
        case Mechanism::Softmax: return "softmax";
        case Mechanism::Favor: return "favor";
        case Mechanism::Trig: return "trig";
        case Mechanism::Relu: return "relu";
        case Mechanism::Identity: return "identity";
    }
    return "?";
}

const std::vector<std::string>& mechanism_names() {
    static const std::vector<std::string> names = {"softmax", "favor", "relu", "trig", "identity"};
    return names;
}

bool uses_random_features(Mechanism mechanism) {
    return mechanism == Mechanism::Favor || mechanism == Mechanism::Trig ||
           mechanism == Mechanism::Relu;
}

// ---- feature maps ------------------------------------------------------------------

namespace {
// x^ = d^-1/4 x: then W x^ . W y^ estimates x . y / sqrt(d), the softmax logit.
Tensor scaled_input(const Tensor& x) {
    return mul_scalar(x, std::pow(float(x.shape().back()), -0.25f));
}
}  // namespace

// phi(x) = m^-1/2 exp(u - h),  u = W x^ (B, H, L, m),  h = |x^|^2 / 2 (B, H, L, 1)
Tensor positive_random_features(const Tensor& x, const Tensor& W) {
    Tensor xs = scaled_input(x);
    Tensor u = matmul(xs, W, false, true);
    Tensor h = mul_scalar(sum(mul(xs, xs), -1, /*keepdim=*/true), 0.5f);
    return mul_scalar(exp(sub(u, h)), 1.0f / std::sqrt(float(W.shape()[0])));
}

// FAVOR+ computes phi(x) = m^-1/2 (exp(u - h - c) + eps) as exp(u - (h + c + ln(m) / 2))
// + eps / sqrt(m): the same numbers with fewer passes over the (B, H, L, m) features —
// the small factors are applied to W (m x d) and to the per-row shift (B, H, L, 1).
// c is the largest u - h (of the row for a query; of the keys for a key), so that the
// largest feature is exactly 1. The reference implementations take the largest u
// instead, without h: then for a long x (h > 87) every feature underflows to 0, and a
// causal query whose keys all did divides 0 by 0 (we saw a trained model reach that).
namespace {
struct FavorExponents {
    Tensor u, h;  // u = W x^ (B, H, L, m), h = |x^|^2 / 2 (B, H, L, 1)
};

FavorExponents favor_exponents(const Tensor& x, const Tensor& W) {
    const int64_t d = x.shape().back();
    Tensor u = matmul(x, mul_scalar(W, std::pow(float(d), -0.25f)), false, true);
    Tensor h = mul_scalar(sum(mul(x, x), -1, /*keepdim=*/true), 0.5f / std::sqrt(float(d)));
    return {u, h};
}

// Each row's largest u - h: (B, H, L, 1), a constant for autograd.
Tensor largest_exponents(const FavorExponents& e) {
    NoGradGuard constant;
    return sub(max(e.u, -1, /*keepdim=*/true), e.h);
}

// phi = m^-1/2 (exp(u - h - c) + eps), c broadcast over the features.
Tensor favor_map(const FavorExponents& e, const Tensor& c, float eps) {
    const int64_t m = e.u.shape().back();
    // -(h + c + ln(m)/2), negated while small: (B, H, L, 1) or so, not (B, H, L, m)
    Tensor shift = neg(add_scalar(add(e.h, c), 0.5f * std::log(float(m))));
    Tensor phi = exp(add(e.u, shift));
    return eps == 0.0f ? phi : add_scalar(phi, eps / std::sqrt(float(m)));
}

// key_mask (B, L) → (B, 1, L, 1): 1 where padding, for masked_fill.
Tensor key_padding(const Tensor& key_mask) {
    NoGradGuard constant;
    int64_t B = key_mask.shape()[0], L = key_mask.shape()[1];
    return add_scalar(neg(reshape(key_mask, {B, 1, L, 1})), 1.0f);
}
}  // namespace

Tensor favor_features(const Tensor& x, const Tensor& W, bool is_query, const Tensor& key_mask,
                      float eps) {
    FavorExponents e = favor_exponents(x, W);
    Tensor c = largest_exponents(e);  // per row: (B, H, L, 1)
    if (!is_query) {
        NoGradGuard constant;
        if (key_mask.defined())  // padding keys do not count
            c = masked_fill(c, key_padding(key_mask), -std::numeric_limits<float>::infinity());
        c = max(c, -2, /*keepdim=*/true);  // per (batch, head): (B, H, 1, 1)
    }
    return favor_map(e, c, is_query ? eps : 0.0f);  // keys take no eps: see attention.h
}

CausalKeyFeatures favor_causal_key_features(const Tensor& k, const Tensor& W,
                                            const Tensor& key_mask) {
    FavorExponents e = favor_exponents(k, W);
    Tensor rows = largest_exponents(e), c;  // (B, H, L, 1)
    {
        NoGradGuard constant;
        if (!key_mask.defined()) {
            c = cummax(rows, -2);
        } else {
            // The prefix maximum over real keys; a padding key before the first real one
            // takes its own row's (its feature is zeroed by the mask anyway).
            Tensor prefix = cummax(
                masked_fill(rows, key_padding(key_mask), -std::numeric_limits<float>::infinity()), -2);
            int64_t B = key_mask.shape()[0], L = key_mask.shape()[1];
            Tensor real_keys_so_far = reshape(cumsum(key_mask, 1), {B, 1, L, 1});
            c = where(real_keys_so_far, prefix, rows);
        }
    }
    Shape scale_shape = rows.shape();
    scale_shape.pop_back();
    return {favor_map(e, c, 0.0f), reshape(c, scale_shape)};
}

// phi(x) = m^-1/2 [cos(u), sin(u)] e^h: E[phi(x) . phi(y)] = e^{h_x + h_y} E[cos(w.(x^ - y^))]
//        = e^{h_x + h_y - |x^ - y^|^2 / 2} = e^{x^ . y^}
Tensor trig_features(const Tensor& x, const Tensor& W) {
    int64_t m = W.shape()[0];
    Tensor xs = scaled_input(x);
    Tensor u = matmul(xs, W, false, true);
    Tensor scale = mul_scalar(exp(mul_scalar(sum(mul(xs, xs), -1, true), 0.5f)),
                              1.0f / std::sqrt(float(m)));
    return mul(concat({cos(u), sin(u)}, -1), scale);
}

// phi(x) = relu(W x^) + 1e-3 (Performer-ReLU; the small constant keeps denominators > 0)
Tensor relu_features(const Tensor& x, const Tensor& W) {
    return add_scalar(relu(matmul(scaled_input(x), W, false, true)), kReluEpsilon);
}

// ---- attention ------------------------------------------------------------------------

namespace {
// key_mask (B, L) → the padding positions as (B, 1, 1, L) with 1 = padding.
Tensor padding_of(const Tensor& key_mask) {
    NoGradGuard constant;
    int64_t B = key_mask.shape()[0], L = key_mask.shape()[1];
    return reshape(add_scalar(neg(key_mask), 1.0f), {B, 1, 1, L});
}

void check_key_mask(const Tensor& key_mask, const Tensor& k) {
    if (!key_mask.defined()) return;
    PF_CHECK(key_mask.dim() == 2 && key_mask.shape()[0] == k.shape()[0] &&
                 key_mask.shape()[1] == k.shape()[2],
             "attention: key_mask {} does not fit keys {} (want (B, L))",
             shape_str(key_mask.shape()), shape_str(k.shape()));
}
}  // namespace

// out = softmax(q k^T / sqrt(d)) v, with row i seeing keys j <= i when causal (a fused
// softmax option, no mask tensor, and a product that reads no later value) and no
// padded key (scores -1e9: e^-1e9 = 0).
Tensor softmax_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                         const Tensor& key_mask) {
    check_key_mask(key_mask, k);
    int64_t d = q.shape()[3];
    Tensor scores = matmul(q, k, false, true);  // (B, H, L, L)
    if (key_mask.defined()) scores = masked_fill(scores, padding_of(key_mask), -1e9f);
    Tensor probabilities = softmax(scores, 1.0f / std::sqrt(float(d)), causal);
    return causal ? causal_matmul(probabilities, v) : matmul(probabilities, v);
}

namespace {
// numerator / denominator, except where the denominator is exactly 0: then every
// feature the query meets underflowed (keys of extreme norms), the numerator is 0 too,
// and the output is 0 rather than NaN.
Tensor safe_divide(const Tensor& numerator, const Tensor& denominator) {
    return div(numerator, where(denominator, denominator, Tensor::ones(denominator.shape())));
}
}  // namespace

// Bidirectional: S = phi_k^T v (m x d), z = phi_k^T 1; out = phi_q S / (phi_q z).
// Causal: the same with prefix sums, as one causal dot product of phi_q, phi_k and
// [v, 1] — its last column is the denominator.
Tensor linear_attention(const Tensor& phi_q, const Tensor& phi_k, const Tensor& v, bool causal,
                        int64_t chunk, const Tensor& key_log_scale) {
    int64_t d = v.shape().back();
    if (causal) {
        Shape ones_shape = v.shape();
        ones_shape.back() = 1;
        Tensor numerator_and_denominator =
            causal_dot_product(phi_q, phi_k, concat({v, Tensor::ones(ones_shape)}, -1), chunk,
                               key_log_scale);
        return safe_divide(slice(numerator_and_denominator, -1, 0, d),
                           slice(numerator_and_denominator, -1, d, d + 1));
    }
    Tensor S = matmul(phi_k, v, /*trans_a=*/true);           // (B, H, m, d)
    Tensor z = sum(phi_k, -2, /*keepdim=*/true);             // (B, H, 1, m)
    Tensor denominator = matmul(phi_q, z, false, /*trans_b=*/true);  // (B, H, L, 1)
    return safe_divide(matmul(phi_q, S), denominator);
}

Tensor linear_attention_reference(const Tensor& phi_q, const Tensor& phi_k, const Tensor& v,
                                  bool causal, const Tensor& key_log_scale) {
    if (!causal) return linear_attention(phi_q, phi_k, v, false);
    Shape ones_shape = v.shape();
    ones_shape.back() = 1;
    Tensor numerator = causal_dot_product_reference(phi_q, phi_k, v, key_log_scale);
    Tensor denominator =
        causal_dot_product_reference(phi_q, phi_k, Tensor::ones(ones_shape), key_log_scale);
    return safe_divide(numerator, denominator);
}

Tensor attend(const AttentionConfig& config, const Tensor& features, const Tensor& q,
              const Tensor& k, const Tensor& v, const Tensor& key_mask) {
    check_key_mask(key_mask, k);
    const bool causal = config.causal;
    Tensor phi_q, phi_k, key_log_scale;
    switch (config.mechanism) {
        case Mechanism::Identity: return v;
        case Mechanism::Softmax: return softmax_attention(q, k, v, causal, key_mask);
        case Mechanism::Favor:
            phi_q = favor_features(q, features, true);
            if (causal) {
                CausalKeyFeatures keys = favor_causal_key_features(k, features, key_mask);
                phi_k = keys.phi, key_log_scale = keys.log_scale;
            } else {
                phi_k = favor_features(k, features, false, key_mask);
            }
            break;
        case Mechanism::Trig:
            phi_q = trig_features(q, features);
            phi_k = trig_features(k, features);
            break;
        case Mechanism::Relu:
            phi_q = relu_features(q, features);
            phi_k = relu_features(k, features);
            break;
    }
    if (key_mask.defined()) {
        // Padded keys get phi = 0: they add nothing to numerator or denominator.
        int64_t B = key_mask.shape()[0], L = key_mask.shape()[1];
        phi_k = mul(phi_k, reshape(key_mask.detach(), {B, 1, L, 1}));
    }
    return linear_attention(phi_q, phi_k, v, causal, config.chunk, key_log_scale);
}

// ---- the module ------------------------------------------------------------------------

MultiHeadAttention::MultiHeadAttention(const AttentionConfig& config, Generator& gen)
    : config_(config), head_dim_(config.dim / config.heads) {
    const int64_t D = config.dim;
    PF_CHECK(config.heads >= 1 && D % config.heads == 0,
             "attention: width {} is not divisible by {} heads", D, config.heads);
    PF_CHECK(!uses_random_features(config.mechanism) || config.features >= 1,
             "attention: {} needs at least one random feature", mechanism_name(config.mechanism));
    // GPT-2's initialisation: N(0, 0.02^2) weights, zero biases.
    auto weight = [&](const char* name) {
        return register_parameter(name, Tensor::randn({D, D}, gen, 0.0f, 0.02f));
    };
    auto bias = [&](const char* name) { return register_parameter(name, Tensor::zeros({D})); };
    w_q_ = weight("query.weight"), b_q_ = bias("query.bias");
    w_k_ = weight("key.weight"), b_k_ = bias("key.bias");
    w_v_ = weight("value.weight"), b_v_ = bias("value.bias");
    w_out_ = weight("out.weight"), b_out_ = bias("out.bias");
    if (uses_random_features(config.mechanism)) {
        features_ = register_buffer("features", Tensor::zeros({config.features, head_dim_}));
        redraw_features(gen);
    }
}

void MultiHeadAttention::redraw_features(Generator& gen) {
    if (!features_.defined()) return;
    Tensor fresh = config_.orthogonal
                       ? gaussian_orthogonal_matrix(config_.features, head_dim_, gen, config_.scaling)
                       : gaussian_iid_matrix(config_.features, head_dim_, gen);
    std::copy_n(fresh.data(), fresh.numel(), features_.mutable_data());  // same storage: a buffer
}

// x (B, L, D) → q, k, v (B, H, L, d) → attention → (B, L, D)
Tensor MultiHeadAttention::forward(const Tensor& x, const Tensor& key_mask) {
    PF_CHECK(x.dim() == 3 && x.shape()[2] == config_.dim,
             "attention: input {} is not (B, L, {})", shape_str(x.shape()), config_.dim);
    const int64_t B = x.shape()[0], L = x.shape()[1], H = config_.heads, d = head_dim_;
    auto heads = [&](const Tensor& w, const Tensor& b) {  // (B, L, D) → (B, H, L, d)
        return permute(reshape(linear(x, w, b), {B, L, H, d}), {0, 2, 1, 3});
    };
    Tensor out = attend(config_, features_, heads(w_q_, b_q_), heads(w_k_, b_k_), heads(w_v_, b_v_),
                        key_mask);
    out = reshape(permute(out, {0, 2, 1, 3}), {B, L, H * d});  // (B, L, D)
    return linear(out, w_out_, b_out_);
}

// ---- recurrent decoding -----------------------------------------------------------------

DecodeState MultiHeadAttention::start_decoding(int64_t batch) const {
    PF_CHECK(config_.causal, "attention: recurrent decoding needs a causal layer");
    DecodeState state;
    int64_t features = config_.mechanism == Mechanism::Trig ? 2 * config_.features : config_.features;
    if (uses_random_features(config_.mechanism)) {
        state.S.assign(batch * config_.heads * features * head_dim_, 0.0);
        state.z.assign(batch * config_.heads * features, 0.0);
        state.key_max.assign(batch * config_.heads, -std::numeric_limits<float>::infinity());
    }
    return state;
}

Tensor MultiHeadAttention::decode_step(const Tensor& x_t, DecodeState& state) const {
    NoGradGuard no_grad;
    PF_CHECK(x_t.dim() == 2 && x_t.shape()[1] == config_.dim,
             "attention: decode_step input {} is not (B, {})", shape_str(x_t.shape()), config_.dim);
    const int64_t B = x_t.shape()[0], H = config_.heads, d = head_dim_, D = config_.dim;
    // q, k, v of this position side by side: (B, 3D)
    Tensor qkv = concat({linear(x_t, w_q_, b_q_), linear(x_t, w_k_, b_k_), linear(x_t, w_v_, b_v_)}, 1);
    Tensor out = Tensor::empty({B, D});
    const float* p = qkv.data();
    float* o = out.mutable_data();
    const int64_t t = state.position;

    if (config_.mechanism == Mechanism::Identity) {
        for (int64_t b = 0; b < B; ++b) std::copy_n(p + b * 3 * D + 2 * D, D, o + b * D);
    } else if (config_.mechanism == Mechanism::Softmax) {
        // Append this position's k and v to the cache, laid out (t, B, H, d).
        for (int64_t b = 0; b < B; ++b) {
            state.keys.insert(state.keys.end(), p + b * 3 * D + D, p + b * 3 * D + 2 * D);
            state.values.insert(state.values.end(), p + b * 3 * D + 2 * D, p + b * 3 * D + 3 * D);
        }
        std::vector<double> scores(t + 1);
        for (int64_t bh = 0; bh < B * H; ++bh) {
            int64_t b = bh / H, h = bh % H;
            const float* q = p + b * 3 * D + h * d;
            double top = -std::numeric_limits<double>::infinity(), total = 0;
            for (int64_t j = 0; j <= t; ++j) {
                double s = 0;
                for (int64_t i = 0; i < d; ++i) s += q[i] * state.keys[(j * B * H + bh) * d + i];
                scores[j] = s / std::sqrt(double(d));
                top = std::max(top, scores[j]);
            }
            for (int64_t j = 0; j <= t; ++j) total += (scores[j] = std::exp(scores[j] - top));
            for (int64_t i = 0; i < d; ++i) {
                double acc = 0;
                for (int64_t j = 0; j <= t; ++j) acc += scores[j] * state.values[(j * B * H + bh) * d + i];
                o[b * D + h * d + i] = float(acc / total);
            }
        }
    } else {
        // Linear mechanisms: features of q and k through the same maps as forward(),
        // as (B, H, 1, d) tensors; then S += phi(k) v^T, z += phi(k), out = phi(q) S / phi(q) z.
        Tensor qkv_heads = reshape(qkv, {B, 3, H, 1, d});
        auto part = [&](int64_t i) {
            return reshape(slice(qkv_heads, 1, i, i + 1), {B, H, 1, d});
        };
        Tensor q = part(0), k = part(1), phi_q, phi_k;
        std::vector<float> key_shift(B * H, 0.0f);  // favor: how much S, z must shrink
        if (config_.mechanism == Mechanism::Favor) {
            phi_q = favor_features(q, features_, true);
            // Keys: exp(u - h - c) with c the running max of u - h over the keys so far.
            // Any c shared by all keys cancels; when c grows, the sums are rescaled by
            // e^(c_old - c_new).
            Tensor xs = scaled_input(k);
            Tensor u = matmul(xs, features_, false, true);                 // (B, H, 1, m)
            Tensor h = mul_scalar(sum(mul(xs, xs), -1, true), 0.5f);
            const float *up = u.data(), *hp = h.data();
            int64_t m = config_.features;
            Tensor c = Tensor::empty({B, H, 1, 1});
            for (int64_t bh = 0; bh < B * H; ++bh) {
                float row_max = *std::max_element(up + bh * m, up + (bh + 1) * m) - hp[bh];
                float previous = state.key_max[bh];
                state.key_max[bh] = std::max(previous, row_max);
                key_shift[bh] = previous - state.key_max[bh];  // <= 0, or -inf at the start
                c.mutable_data()[bh] = state.key_max[bh];
            }
            phi_k = mul_scalar(exp(sub(sub(u, h), c)), 1.0f / std::sqrt(float(m)));
        } else if (config_.mechanism == Mechanism::Trig) {
            phi_q = trig_features(q, features_);
            phi_k = trig_features(k, features_);
        } else {
            phi_q = relu_features(q, features_);
            phi_k = relu_features(k, features_);
        }
        const int64_t m = phi_q.shape().back();
        const float *fq = phi_q.data(), *fk = phi_k.data();
        for (int64_t bh = 0; bh < B * H; ++bh) {
            int64_t b = bh / H, h = bh % H;
            const float* v = p + b * 3 * D + 2 * D + h * d;
            double* S = state.S.data() + bh * m * d;
            double* z = state.z.data() + bh * m;
            double shrink = t == 0 ? 1.0 : std::exp(double(key_shift[bh]));
            double denominator = 0;
            std::vector<double> numerator(d, 0.0);
            for (int64_t f = 0; f < m; ++f) {
                double kf = fk[bh * m + f], qf = fq[bh * m + f];
                z[f] = z[f] * shrink + kf;
                denominator += qf * z[f];
                for (int64_t i = 0; i < d; ++i) {
                    S[f * d + i] = S[f * d + i] * shrink + kf * v[i];
                    numerator[i] += qf * S[f * d + i];
                }
            }
            if (denominator == 0) denominator = 1;  // every feature underflowed: output 0, as in forward()
            for (int64_t i = 0; i < d; ++i) o[b * D + h * d + i] = float(numerator[i] / denominator);
        }
    }
    state.position++;
    return linear(out, w_out_, b_out_);
}

}  // namespace pf::nn
