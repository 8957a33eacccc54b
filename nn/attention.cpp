// attention.cpp — feature maps, exact and linear attention, the multi-head module,
// and recurrent decoding.
#include "nn/attention.h"

#include "engine/ops.h"
#include "nn/baselines.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace pf::nn {

const std::vector<std::string>& mechanism_names() {
    static const std::vector<std::string> names = {"softmax",  "favor",     "trig",    "relu",
                                                   "identity", "linformer", "reformer"};
    return names;
}

Mechanism parse_mechanism(const std::string& name) {
    const std::vector<std::string>& names = mechanism_names();
    auto found = std::find(names.begin(), names.end(), name);
    PF_CHECK(found != names.end(), "unknown attention mechanism '{}' ({})", name,
             fmt::join(names, ", "));
    return Mechanism(found - names.begin());
}

std::string mechanism_name(Mechanism mechanism) { return mechanism_names().at(size_t(mechanism)); }

const std::vector<std::string>& feature_kind_names() {
    static const std::vector<std::string> names = {"iid", "orthogonal", "favor++"};
    return names;
}

bool uses_random_features(Mechanism mechanism) {
    return mechanism == Mechanism::Favor || mechanism == Mechanism::Trig ||
           mechanism == Mechanism::Relu;
}

void check_config(const AttentionConfig& config) {
    const std::string name = mechanism_name(config.mechanism);
    PF_CHECK(config.heads >= 1 && config.dim % config.heads == 0,
             "attention: width {} is not divisible by {} heads", config.dim, config.heads);
    PF_CHECK(config.max_length >= 1 && config.chunk >= 1, "attention: max_length {} and chunk {} "
             "must be at least 1", config.max_length, config.chunk);
    PF_CHECK(!uses_random_features(config.mechanism) || config.features >= 1,
             "attention: {} needs at least one random feature", name);
    PF_CHECK(config.feature_kind != FeatureKind::Optimal || config.mechanism == Mechanism::Favor,
             "attention: favor++ features are for favor attention, not {}", name);
    PF_CHECK(config.mechanism != Mechanism::Linformer || !config.causal,
             "attention: linformer cannot be causal: its projections E and F mix every position, "
             "later ones included, into each projected key and value (use it for bidirectional, "
             "masked models)");
    PF_CHECK(config.mechanism != Mechanism::Linformer || config.linformer_k >= 1,
             "attention: linformer needs k >= 1 projected rows, not {}", config.linformer_k);
    PF_CHECK(config.mechanism != Mechanism::Reformer ||
                 (config.hashes >= 1 && config.buckets >= 2 && config.buckets % 2 == 0),
             "attention: reformer needs at least one round of hashing ({}) and an even number of "
             "buckets, at least 2 ({}): each rotation's directions and their opposites",
             config.hashes, config.buckets);
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

// FAVOR+ computes phi(x) = m^-1/2 exp(u - h - c) as exp(u - (h + c + ln(m) / 2)): the
// same numbers with fewer passes over the (B, H, L, m) features — the small factors are
// applied to W (m x d) and to the per-row shift (B, H, L, 1).
// c is the largest u - h (of the row for a query; of the keys for a key), so that the
// largest feature is exactly 1. The reference implementations take the largest u
// instead, without h: then for a long x (h > 87) every feature underflows to 0, and a
// causal query whose keys all did divides 0 by 0 (we saw a trained model reach that).
// No constant is added to any feature (see attention.h): the one case a constant would
// guard, a denominator that underflowed, is handled where it arises (safe_divide).
namespace {
struct FavorExponents {
    Tensor u, h;  // u = W x^ (B, H, L, m), h = |x^|^2 / 2 (B, H, L, 1)
};

// |w_r|^2 for each row of W (m, d).
std::vector<double> squared_row_norms(const Tensor& W) {
    const int64_t m = W.shape()[0], d = W.shape()[1];
    std::vector<double> norms(m, 0.0);
    for (int64_t r = 0; r < m; ++r)
        for (int64_t i = 0; i < d; ++i) norms[r] += double(W.data()[r * d + i]) * W.data()[r * d + i];
    return norms;
}

// FAVOR++ with a (H): u = B_h W x^ + A_h |w_r|^2 instead, per head h (D left out).
FavorExponents favor_exponents(const Tensor& x, const Tensor& W, const Tensor& a = {}) {
    const int64_t d = x.shape().back();
    Tensor u = matmul(x, mul_scalar(W, std::pow(float(d), -0.25f)), false, true);
    Tensor h = mul_scalar(sum(mul(x, x), -1, /*keepdim=*/true), 0.5f / std::sqrt(float(d)));
    if (a.defined()) {
        const int64_t H = a.numel(), m = W.shape()[0];
        PF_CHECK(x.dim() == 4 && x.shape()[1] == H, "favor++: {} values of A for input {}", H,
                 shape_str(x.shape()));
        const std::vector<double> w2 = squared_row_norms(W);
        Tensor scale = Tensor::empty({1, H, 1, 1}), bias = Tensor::empty({1, H, 1, m});
        for (int64_t head = 0; head < H; ++head) {
            const double A = a.data()[head];
            scale.mutable_data()[head] = float(std::sqrt(1 - 4 * A));  // B
            for (int64_t r = 0; r < m; ++r) bias.mutable_data()[head * m + r] = float(A * w2[r]);
        }
        u = add(mul(u, scale), bias);
    }
    return {u, h};
}

// Each row's largest u - h: (B, H, L, 1), a constant for autograd.
Tensor largest_exponents(const FavorExponents& e) {
    NoGradGuard constant;
    return sub(max(e.u, -1, /*keepdim=*/true), e.h);
}

// phi = m^-1/2 exp(u - h - c), c broadcast over the features.
Tensor favor_map(const FavorExponents& e, const Tensor& c) {
    const int64_t m = e.u.shape().back();
    Tensor shift = add_scalar(add(e.h, c), 0.5f * std::log(float(m)));  // (B, H, L, 1)
    return shifted_exp(e.u, shift);  // one pass over (B, H, L, m)
}

// key_mask (B, L) → (B, 1, L, 1): 1 where padding, for masked_fill.
Tensor key_padding(const Tensor& key_mask) {
    NoGradGuard constant;
    int64_t B = key_mask.shape()[0], L = key_mask.shape()[1];
    return add_scalar(neg(reshape(key_mask, {B, 1, L, 1})), 1.0f);
}
}  // namespace

Tensor favor_features(const Tensor& x, const Tensor& W, bool is_query, const Tensor& key_mask,
                      const Tensor& a) {
    FavorExponents e = favor_exponents(x, W, a);
    Tensor c = largest_exponents(e);  // per row: (B, H, L, 1)
    if (!is_query) {
        NoGradGuard constant;
        if (key_mask.defined())  // padding keys do not count
            c = masked_fill(c, key_padding(key_mask), -std::numeric_limits<float>::infinity());
        c = max(c, -2, /*keepdim=*/true);  // per (batch, head): (B, H, 1, 1)
    }
    return favor_map(e, c);
}

CausalKeyFeatures favor_causal_key_features(const Tensor& k, const Tensor& W,
                                            const Tensor& key_mask, const Tensor& a) {
    FavorExponents e = favor_exponents(k, W, a);
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
    return {favor_map(e, c), reshape(c, scale_shape)};
}

double favor_plus_plus_a(double pair_norm2, int64_t d) {
    const double s = std::max(pair_norm2, 0.0), n = double(d);
    const double t = ((n + 2 * s) + std::sqrt((n + 2 * s) * (n + 2 * s) + 8 * n * s)) / (2 * n);
    return (1 - t) / 8;
}

// phi(x) = m^-1/2 exp(A |w|^2 + B W x^ - |x^|^2 / 2 + (d / 4) ln(1 - 4A))
Tensor optimal_positive_random_features(const Tensor& x, const Tensor& W, double a) {
    PF_CHECK(a < 0.25, "favor++: A = {} is not below 1/4", a);
    const int64_t m = W.shape()[0], d = W.shape()[1];
    const std::vector<double> w2 = squared_row_norms(W);
    Tensor bias = Tensor::empty({m});  // A |w_r|^2 + (d / 4) ln(1 - 4A) - ln(m) / 2
    for (int64_t r = 0; r < m; ++r)
        bias.mutable_data()[r] =
            float(a * w2[r] + 0.25 * double(d) * std::log(1 - 4 * a) - 0.5 * std::log(double(m)));
    Tensor xs = scaled_input(x);
    Tensor u = mul_scalar(matmul(xs, W, false, true), float(std::sqrt(1 - 4 * a)));
    Tensor h = mul_scalar(sum(mul(xs, xs), -1, /*keepdim=*/true), 0.5f);
    return exp(add(sub(u, h), bias));
}

std::vector<double> mean_pair_norm2(const Tensor& q, const Tensor& k) {
    PF_CHECK(q.dim() == 4 && q.shape() == k.shape(), "mean_pair_norm2: q {} and k {} differ",
             shape_str(q.shape()), shape_str(k.shape()));
    const int64_t B = q.shape()[0], H = q.shape()[1], L = q.shape()[2], d = q.shape()[3];
    std::vector<double> s(H, 0.0), q_mean(d), k_mean(d);
    for (int64_t b = 0; b < B; ++b)
        for (int64_t head = 0; head < H; ++head) {
            const float *qp = q.data() + (b * H + head) * L * d, *kp = k.data() + (b * H + head) * L * d;
            double norms = 0;
            std::fill(q_mean.begin(), q_mean.end(), 0.0);
            std::fill(k_mean.begin(), k_mean.end(), 0.0);
            for (int64_t j = 0; j < L * d; ++j) {
                norms += double(qp[j]) * qp[j] + double(kp[j]) * kp[j];
                q_mean[j % d] += qp[j], k_mean[j % d] += kp[j];
            }
            double cross = 0;
            for (int64_t i = 0; i < d; ++i) cross += q_mean[i] * k_mean[i];
            // x^ = d^-1/4 x: squares scale by d^-1/2
            s[head] += (norms / L + 2 * cross / (double(L) * L)) / std::sqrt(double(d)) / B;
        }
    return s;
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
// numerator / denominator, with a denominator below kSmallestDenominator in magnitude
// replaced by that floor. Features are scaled so that a query's largest is m^-1/2 and so
// is the largest key's (attention.h): a pair adds at most 1 to a positive denominator,
// and one below 1e-30 means every pair the query meets underflowed or nearly (keys of
// extreme norms). The numerator is as small (|out| is at most max |v|), the output tends
// to 0, and the gradients' 1/denominator stays below 1e30 instead of overflowing to inf
// (and inf x 0 to NaN). (Trig features' denominators may be negative: those are kept.)
bool usable_denominator(float denominator) { return std::fabs(denominator) >= kSmallestDenominator; }

Tensor safe_divide(const Tensor& numerator, const Tensor& denominator) {
    Tensor usable = Tensor::empty(denominator.shape());  // a constant: 1 where usable
    const float* den = denominator.data();
    float* ok = usable.mutable_data();
    for (int64_t i = 0; i < usable.numel(); ++i) ok[i] = usable_denominator(den[i]);
    return div(numerator, where(usable, denominator,
                                Tensor::full(denominator.shape(), kSmallestDenominator)));
}
}  // namespace

// out = numerator / denominator, both read off one product with [v, 1]: its last
// column is the denominator.
//   Bidirectional: phi_q (phi_k^T [v, 1]), two GEMMs; the (m, d + 1) state is S = phi_k^T v
//   beside z = phi_k^T 1. Their gradients are GEMMs too: no pass of its own for z.
//   Causal: the same with prefix sums, one causal dot product of phi_q, phi_k and [v, 1].
Tensor linear_attention(const Tensor& phi_q, const Tensor& phi_k, const Tensor& v, bool causal,
                        int64_t chunk, const Tensor& key_log_scale) {
    const int64_t d = v.shape().back();
    Shape ones_shape = v.shape();
    ones_shape.back() = 1;
    Tensor v_and_ones = concat({v, Tensor::ones(ones_shape)}, -1);  // (B, H, L, d + 1)
    Tensor numerator_and_denominator =
        causal ? causal_dot_product(phi_q, phi_k, v_and_ones, chunk, key_log_scale)
               : matmul(phi_q, matmul(phi_k, v_and_ones, /*trans_a=*/true));
    return safe_divide(slice(numerator_and_denominator, -1, 0, d),
                       slice(numerator_and_denominator, -1, d, d + 1));
}

// Term by term: S = phi_k^T v, z = phi_k^T 1, out = phi_q S / (phi_q z); causal, the
// L x L matrix of causal_dot_product_reference.
Tensor linear_attention_reference(const Tensor& phi_q, const Tensor& phi_k, const Tensor& v,
                                  bool causal, const Tensor& key_log_scale) {
    Shape ones_shape = v.shape();
    ones_shape.back() = 1;
    if (!causal) {
        Tensor S = matmul(phi_k, v, /*trans_a=*/true);                    // (B, H, m, d)
        Tensor z = sum(phi_k, -2, /*keepdim=*/true);                      // (B, H, 1, m)
        Tensor denominator = matmul(phi_q, z, false, /*trans_b=*/true);  // (B, H, L, 1)
        return safe_divide(matmul(phi_q, S), denominator);
    }
    Tensor numerator = causal_dot_product_reference(phi_q, phi_k, v, key_log_scale);
    Tensor denominator =
        causal_dot_product_reference(phi_q, phi_k, Tensor::ones(ones_shape), key_log_scale);
    return safe_divide(numerator, denominator);
}

LinearFeatures linear_features(const AttentionConfig& config, const MechanismTensors& tensors,
                               const Tensor& q, const Tensor& k, const Tensor& key_mask) {
    const Tensor& features = tensors.features;
    const Tensor& a = tensors.favor_a;  // favor++ only
    LinearFeatures f;
    switch (config.mechanism) {
        case Mechanism::Favor:
            f.phi_q = favor_features(q, features, true, {}, a);
            if (config.causal) {
                CausalKeyFeatures keys = favor_causal_key_features(k, features, key_mask, a);
                f.phi_k = keys.phi, f.key_log_scale = keys.log_scale;
            } else {
                f.phi_k = favor_features(k, features, false, key_mask, a);
            }
            break;
        case Mechanism::Trig:
            f.phi_q = trig_features(q, features);
            f.phi_k = trig_features(k, features);
            break;
        case Mechanism::Relu:
            f.phi_q = relu_features(q, features);
            f.phi_k = relu_features(k, features);
            break;
        default:
            throw Error(fmt::format("attention: {} has no feature maps", mechanism_name(config.mechanism)));
    }
    return f;
}

Tensor attend(const AttentionConfig& config, const MechanismTensors& tensors, const Tensor& q,
              const Tensor& k, const Tensor& v, const Tensor& key_mask) {
    check_key_mask(key_mask, q);
    switch (config.mechanism) {
        case Mechanism::Identity: return v;
        case Mechanism::Softmax: return softmax_attention(q, k, v, config.causal, key_mask);
        case Mechanism::Linformer:
            check_config(config);  // not causal
            return linformer_attention(q, k, v, tensors.E, tensors.F, key_mask);
        case Mechanism::Reformer:  // keys are the queries: k is not used
            return lsh_attention(q, v, tensors.rotations, config.chunk, config.causal, key_mask);
        default: break;
    }
    PF_CHECK((config.feature_kind == FeatureKind::Optimal) == tensors.favor_a.defined(),
             "attention: favor++ needs its A per head, and only favor++ takes one");
    LinearFeatures f = linear_features(config, tensors, q, k, key_mask);
    if (key_mask.defined()) {
        // Padded keys get phi = 0: they add nothing to numerator or denominator.
        int64_t B = key_mask.shape()[0], L = key_mask.shape()[1];
        f.phi_k = mul(f.phi_k, reshape(key_mask.detach(), {B, 1, L, 1}));
    }
    return linear_attention(f.phi_q, f.phi_k, v, config.causal, config.chunk, f.key_log_scale);
}

// ---- the module ------------------------------------------------------------------------

MultiHeadAttention::MultiHeadAttention(const AttentionConfig& config, Generator& gen)
    : config_(config), head_dim_(config.heads >= 1 ? config.dim / config.heads : 0) {
    check_config(config);
    const int64_t D = config.dim;
    // GPT-2's initialisation: N(0, 0.02^2) weights, zero biases.
    auto weight = [&](const char* name) {
        return register_parameter(name, Tensor::randn({D, D}, gen, 0.0f, 0.02f));
    };
    auto bias = [&](const char* name) { return register_parameter(name, Tensor::zeros({D})); };
    w_q_ = weight("query.weight"), b_q_ = bias("query.bias");
    if (config.mechanism != Mechanism::Reformer)  // reformer's keys are its queries
        w_k_ = weight("key.weight"), b_k_ = bias("key.bias");
    w_v_ = weight("value.weight"), b_v_ = bias("value.bias");
    w_out_ = weight("out.weight"), b_out_ = bias("out.bias");
    if (uses_random_features(config.mechanism))
        tensors_.features = register_buffer("features", Tensor::zeros({config.features, head_dim_}));
    if (config.feature_kind == FeatureKind::Optimal)
        pair_norm2_ = register_buffer("pair_norm2", Tensor::zeros({config.heads}));
    if (config.mechanism == Mechanism::Reformer)
        tensors_.rotations = register_buffer(
            "rotations", Tensor::zeros({config.hashes, head_dim_, config.buckets / 2}));
    redraw_features(gen);
    if (config.mechanism == Mechanism::Linformer) {
        // N(0, 1/k) entries, the random projection of the Linformer paper's analysis.
        const float scale = 1.0f / std::sqrt(float(config.linformer_k));
        auto projection = [&](const char* name) {
            Shape shape{config.linformer_k, config.max_length};
            return register_parameter(name, Tensor::randn(shape, gen, 0.0f, scale));
        };
        tensors_.E = projection("sequence_projection.E");
        tensors_.F = projection("sequence_projection.F");
    }
}

// New values in the buffers' own storage (the registry holds the same handles).
void MultiHeadAttention::redraw_features(Generator& gen) {
    auto refill = [](Tensor& buffer, const Tensor& fresh) {
        std::copy_n(fresh.data(), fresh.numel(), buffer.mutable_data());
    };
    if (tensors_.features.defined())
        refill(tensors_.features, config_.feature_kind == FeatureKind::Iid
                                      ? gaussian_iid_matrix(config_.features, head_dim_, gen)
                                      : gaussian_orthogonal_matrix(config_.features, head_dim_, gen));
    if (tensors_.rotations.defined())
        refill(tensors_.rotations, random_rotations(config_.hashes, head_dim_, config_.buckets, gen));
}

MechanismTensors MultiHeadAttention::tensors_with_a() const {
    MechanismTensors with = tensors_;
    if (pair_norm2_.defined()) {
        with.favor_a = Tensor::empty({config_.heads});  // new storage: a constant
        for (int64_t head = 0; head < config_.heads; ++head)
            with.favor_a.mutable_data()[head] =
                float(favor_plus_plus_a(pair_norm2_.data()[head], head_dim_));
    }
    return with;
}

// x (B, L, D) → q, k, v (B, H, L, d) → attention → (B, L, D)
Tensor MultiHeadAttention::forward(const Tensor& x, const Tensor& key_mask) {
    PF_CHECK(x.dim() == 3 && x.shape()[2] == config_.dim,
             "attention: input {} is not (B, L, {})", shape_str(x.shape()), config_.dim);
    const int64_t B = x.shape()[0], L = x.shape()[1], H = config_.heads, d = head_dim_;
    auto heads = [&](const Tensor& w, const Tensor& b) {  // (B, L, D) → (B, H, L, d)
        return permute(reshape(linear(x, w, b), {B, L, H, d}), {0, 2, 1, 3});
    };
    Tensor keys = w_k_.defined() ? heads(w_k_, b_k_) : Tensor();  // reformer: none
    // The mechanism as a function of every tensor that may need a gradient.
    auto mechanism = [config = config_, tensors = tensors_with_a(), key_mask](const std::vector<Tensor>& in) {
        MechanismTensors with = tensors;
        with.E = in[3], with.F = in[4];  // linformer's learned projections (else undefined)
        return attend(config, with, in[0], in[1], in[2], key_mask);
    };
    std::vector<Tensor> inputs{heads(w_q_, b_q_), keys, heads(w_v_, b_v_), tensors_.E, tensors_.F};
    if (observer_) observer_(inputs[0], keys.defined() ? keys : inputs[0]);
    Tensor out = config_.recompute ? recompute(mechanism, inputs) : mechanism(inputs);
    if (pair_norm2_.defined() && training()) {  // favor++: after this batch, for the next
        std::vector<double> s = mean_pair_norm2(inputs[0], keys);
        float* running = pair_norm2_.mutable_data();
        for (int64_t head = 0; head < H; ++head)
            running[head] = float(kPairNormMomentum * running[head] + (1 - kPairNormMomentum) * s[head]);
    }
    out = reshape(permute(out, {0, 2, 1, 3}), {B, L, H * d});  // (B, L, D)
    return linear(out, w_out_, b_out_);
}

// ---- recurrent decoding -----------------------------------------------------------------

// Softmax: the new key and value join the cache (B, H, t, d); the query attends to all.
Tensor decode_softmax(const Tensor& q, const Tensor& k, const Tensor& v, DecodeState& state) {
    state.keys = state.keys.defined() ? concat({state.keys, k}, 2) : k;
    state.values = state.values.defined() ? concat({state.values, v}, 2) : v;
    return softmax_attention(q, state.keys, state.values, /*causal=*/false);
}

// Per (batch, head), with c the running key stabiliser and c_k the new key's:
//   c' = max(c, c_k),  S <- e^(c - c') S + e^(c_k - c') phi(k) v^T,  z <- the same with 1
//   out = phi(q) S / phi(q) z, the denominator floored as in linear_attention
// The sums are kept in double: they add up thousands of terms.
Tensor decode_linear(const Tensor& phi_q, const Tensor& phi_k, const Tensor& key_log_scale,
                     const Tensor& v, DecodeState& state) {
    const int64_t m = phi_q.shape().back(), d = v.shape().back(), heads = v.numel() / d;
    if (state.S.empty()) {  // the first position: empty sums on no scale yet
        state.S.assign(heads * m * d, 0.0);
        state.z.assign(heads * m, 0.0);
        state.key_scale.assign(heads, -std::numeric_limits<float>::infinity());
    }
    Tensor out = Tensor::empty(v.shape());
    const float *fq = phi_q.data(), *fk = phi_k.data(), *vp = v.data();
    float* o = out.mutable_data();
    std::vector<double> numerator(d);
    for (int64_t bh = 0; bh < heads; ++bh) {
        const float c_k = key_log_scale.defined() ? key_log_scale.data()[bh] : 0.0f;
        const float c = std::max(state.key_scale[bh], c_k);
        const double keep = std::exp(double(state.key_scale[bh]) - c);  // 0 at the start
        const double add = std::exp(double(c_k) - c);
        state.key_scale[bh] = c;
        double* S = state.S.data() + bh * m * d;
        double* z = state.z.data() + bh * m;
        const float *q = fq + bh * m, *k = fk + bh * m, *value = vp + bh * d;
        double denominator = 0;
        std::fill(numerator.begin(), numerator.end(), 0.0);
        for (int64_t f = 0; f < m; ++f) {
            const double key = add * k[f];
            z[f] = z[f] * keep + key;
            denominator += q[f] * z[f];
            for (int64_t i = 0; i < d; ++i) {
                S[f * d + i] = S[f * d + i] * keep + key * value[i];
                numerator[i] += q[f] * S[f * d + i];
            }
        }
        for (int64_t i = 0; i < d; ++i)
            o[bh * d + i] = float(numerator[i] / (usable_denominator(float(denominator))
                                                      ? denominator : double(kSmallestDenominator)));
    }
    return out;
}

DecodeState MultiHeadAttention::start_decoding() const {
    PF_CHECK(config_.causal, "attention: recurrent decoding needs a causal layer");
    return DecodeState{};
}

// x_t (B, D) → q, k, v (B, H, 1, d) → one step of the mechanism → (B, D)
Tensor MultiHeadAttention::decode_step(const Tensor& x_t, DecodeState& state) const {
    NoGradGuard no_grad;
    PF_CHECK(x_t.dim() == 2 && x_t.shape()[1] == config_.dim,
             "attention: decode_step input {} is not (B, {})", shape_str(x_t.shape()), config_.dim);
    const int64_t B = x_t.shape()[0], H = config_.heads, d = head_dim_;
    auto heads = [&](const Tensor& w, const Tensor& b) {  // (B, D) → (B, H, 1, d)
        return reshape(linear(x_t, w, b), {B, H, 1, d});
    };
    Tensor q = heads(w_q_, b_q_), v = heads(w_v_, b_v_), out;
    Tensor k = w_k_.defined() ? heads(w_k_, b_k_) : Tensor();  // reformer: none
    if (config_.mechanism == Mechanism::Identity) {
        out = v;
    } else if (config_.mechanism == Mechanism::Softmax) {
        out = decode_softmax(q, k, v, state);
    } else if (config_.mechanism == Mechanism::Reformer) {
        out = decode_lsh(q, v, tensors_.rotations, config_.chunk, state);
    } else {
        LinearFeatures f = linear_features(config_, tensors_with_a(), q, k);
        out = decode_linear(f.phi_q, f.phi_k, f.key_log_scale, v, state);
    }
    state.position++;
    return linear(reshape(out, {B, H * d}), w_out_, b_out_);
}

}  // namespace pf::nn
