// test_favor_plus_plus.cpp — FAVOR++'s optimal positive random features: unbiased for
// any A < 1/4, less variance than FAVOR+ at the closed-form A, attention through the
// stabilised map equal to the unbiased map's estimate, gradients, and the module's
// running statistic (what it measures, when it moves, that causality and decoding hold).
#include "gradcheck.h"

#include "nn/attention.h"

#include <cmath>

using namespace pf;
using namespace pf::nn;
using namespace pf::testing;

namespace {
double dot(const Tensor& a, const Tensor& b) {
    double total = 0;
    for (int64_t i = 0; i < a.numel(); ++i) total += double(a.data()[i]) * b.data()[i];
    return total;
}

// The log of the second moment of one feature's product f(w, x) f(w, y), |x + y|^2 = s,
// |x|^2 + |y|^2 = n2 (written out here from the Gaussian integral, not from the code).
double log_second_moment(double A, double s, double n2, int64_t d) {
    return d * std::log(1 - 4 * A) - 0.5 * d * std::log(1 - 8 * A) + 2 * (1 - 4 * A) * s / (1 - 8 * A) -
           n2;
}

// The unbiased map of one head of x (B, H, L, d), head by head: (B, H, L, m).
Tensor optimal_features_per_head(const Tensor& x, const Tensor& W, const std::vector<float>& a) {
    std::vector<Tensor> heads;
    for (size_t h = 0; h < a.size(); ++h)
        heads.push_back(optimal_positive_random_features(slice(x, 1, h, h + 1), W, a[h]));
    return concat(heads, 1);
}

MultiHeadAttention favor_plus_plus_module(bool causal, Generator& gen) {
    AttentionConfig config;
    config.dim = 16, config.heads = 2, config.max_length = 32, config.features = 32;
    config.chunk = 4, config.causal = causal;
    config.feature_kind = FeatureKind::Optimal;
    return MultiHeadAttention(config, gen);
}

Tensor pair_norm2_buffer(const MultiHeadAttention& attention) {
    for (const auto& [name, buffer] : attention.named_buffers())
        if (name == "pair_norm2") return buffer;
    return {};
}
}  // namespace

TEST_CASE("favor++: the closed-form A minimises the second moment; s = 0 gives FAVOR+",
          "[attention][favor++]") {
    REQUIRE(favor_plus_plus_a(0.0, 16) == 0.0);
    for (int64_t d : {8, 16, 64})
        for (double s : {0.5, 3.0, 12.0, 40.0}) {
            const double A = favor_plus_plus_a(s, d);
            INFO("d " << d << " s " << s << " A " << A);
            REQUIRE(A < 0);  // shrinks long w
            const double best = log_second_moment(A, s, 0, d);
            for (double step : {1e-3, 1e-2, 5e-2})
                for (double other : {A - step, A + step})
                    if (other < 0.125) REQUIRE(log_second_moment(other, s, 0, d) > best);
            REQUIRE(log_second_moment(0, s, 0, d) > best + 1e-6);  // better than FAVOR+
        }
}

TEST_CASE("favor++: optimal positive features are unbiased for any A < 1/4, with less "
          "variance than FAVOR+ at the closed-form A", "[attention][favor++]") {
    const int64_t d = 16, m = 16, draws = 6000;
    Generator gen(81);
    Tensor q = random_tensor({1, 1, 1, d}, gen, 0.8f), k = random_tensor({1, 1, 1, d}, gen, 0.8f);
    const double target = std::exp(dot(q, k) / std::sqrt(double(d)));
    const double a_best = favor_plus_plus_a(mean_pair_norm2(q, k)[0], d);
    const std::vector<double> as = {0.0, a_best, -0.3, 0.1};
    std::vector<double> total(as.size()), total_sq(as.size());
    for (int64_t draw = 0; draw < draws; ++draw) {
        Tensor W = gaussian_iid_matrix(m, d, gen);  // the same draw for every A
        for (size_t i = 0; i < as.size(); ++i) {
            double estimate = dot(optimal_positive_random_features(q, W, as[i]),
                                  optimal_positive_random_features(k, W, as[i]));
            total[i] += estimate, total_sq[i] += estimate * estimate;
        }
    }
    std::vector<double> variance(as.size());
    for (size_t i = 0; i < as.size(); ++i) {
        double mean = total[i] / draws;
        variance[i] = total_sq[i] / draws - mean * mean;
        INFO("A " << as[i] << ": mean " << mean << " target " << target << " var " << variance[i]);
        REQUIRE(std::fabs(mean - target) < 4 * std::sqrt(variance[i] / draws));
    }
    INFO("A* " << a_best << " variance " << variance[1] << " against FAVOR+'s " << variance[0]);
    REQUIRE(a_best < -0.02);
    REQUIRE(variance[1] < 0.7 * variance[0]);
    REQUIRE(variance[1] < variance[2]);  // the optimum beats another A too
    REQUIRE(variance[1] < variance[3]);
    REQUIRE_THROWS(optimal_positive_random_features(q, gaussian_iid_matrix(m, d, gen), 0.25));
}

TEST_CASE("favor++: mean_pair_norm2 is the mean of |q^_i + k^_j|^2 over every pair",
          "[attention][favor++]") {
    Generator gen(82);
    const int64_t B = 2, H = 3, L = 5, d = 4;
    Tensor q = random_tensor({B, H, L, d}, gen, 1.5f), k = random_tensor({B, H, L, d}, gen, 0.7f);
    std::vector<double> s = mean_pair_norm2(q, k);
    const double scale = 1 / std::sqrt(double(d));  // |x^|^2 = |x|^2 / sqrt(d)
    for (int64_t h = 0; h < H; ++h) {
        double naive = 0;
        for (int64_t b = 0; b < B; ++b)
            for (int64_t i = 0; i < L; ++i)
                for (int64_t j = 0; j < L; ++j)
                    for (int64_t c = 0; c < d; ++c) {
                        double sum = q.at({b, h, i, c}) + k.at({b, h, j, c});
                        naive += sum * sum * scale / double(B * L * L);
                    }
        REQUIRE(s[h] == Approx(naive).epsilon(1e-6));  // q, k are floats
    }
}

TEST_CASE("favor++ attention: the stabilised features give exactly the unbiased map's "
          "estimate, causal or not", "[attention][favor++]") {
    Generator gen(83);
    const int64_t B = 2, H = 2, L = 11, d = 8, m = 16;
    Tensor q = random_tensor({B, H, L, d}, gen, 1.2f), k = random_tensor({B, H, L, d}, gen, 1.2f),
           v = random_tensor({B, H, L, d}, gen);
    const std::vector<float> a = {-0.05f, -0.4f};
    MechanismTensors tensors;
    tensors.features = gaussian_orthogonal_matrix(m, d, gen);
    tensors.favor_a = Tensor::from_data({H}, a);
    for (bool causal : {false, true}) {
        INFO("causal " << causal);
        AttentionConfig config;
        config.dim = H * d, config.heads = H, config.features = m, config.causal = causal;
        config.chunk = 4;
        config.feature_kind = FeatureKind::Optimal;
        Tensor out = attend(config, tensors, q, k, v);
        Tensor expected = linear_attention_reference(optimal_features_per_head(q, tensors.features, a),
                                                     optimal_features_per_head(k, tensors.features, a),
                                                     v, causal);
        REQUIRE(max_abs_diff(out, expected) <= 1e-5 * max_abs(expected));
        // FAVOR+'s map (A = 0) gives other numbers: A matters.
        MechanismTensors plus = tensors;
        plus.favor_a = Tensor::zeros({H});
        REQUIRE(max_abs_diff(attend(config, plus, q, k, v), expected) > 1e-3);
        // Without its A, or with one it does not take, attend refuses.
        plus.favor_a = Tensor();
        REQUIRE_THROWS(attend(config, plus, q, k, v));
    }
}

TEST_CASE("gradient: favor++ features and attention", "[attention][favor++][gradient]") {
    // The stabilised maps' c is a constant for autograd and cancels only in attention's
    // ratio: their gradients are checked through attention, the unbiased map's alone.
    Generator gen(84);
    const int64_t H = 2, d = 4, m = 6;
    Tensor W = gaussian_orthogonal_matrix(m, d, gen);
    REQUIRE_GRADIENTS([&](const std::vector<Tensor>& t) {
        return optimal_positive_random_features(t[0], W, -0.2);
    }, {random_tensor({1, H, 3, d}, gen, 0.5f)});
    MechanismTensors tensors;
    tensors.features = W;
    tensors.favor_a = Tensor::from_data({H}, {-0.1f, -0.3f});
    for (bool causal : {false, true}) {
        INFO("causal " << causal);
        AttentionConfig config;
        config.dim = H * d, config.heads = H, config.features = m, config.causal = causal;
        config.chunk = 2;
        config.feature_kind = FeatureKind::Optimal;
        auto f = [&](const std::vector<Tensor>& t) { return attend(config, tensors, t[0], t[1], t[2]); };
        REQUIRE_GRADIENTS(f, {random_tensor({1, H, 5, d}, gen), random_tensor({1, H, 5, d}, gen),
                              random_tensor({1, H, 5, d}, gen)});
    }
}

TEST_CASE("favor++ module: the running s moves after training batches only, from the "
          "batch's own q and k; causal outputs see no later position", "[attention][favor++]") {
    Generator gen(85);
    MultiHeadAttention attention = favor_plus_plus_module(true, gen);
    Tensor running = pair_norm2_buffer(attention);
    REQUIRE(running.defined());
    REQUIRE(running.shape() == Shape{2});
    REQUIRE(running.to_vector() == std::vector<float>{0, 0});
    Tensor seen_q, seen_k;
    attention.set_observer([&](const Tensor& q, const Tensor& k) { seen_q = q, seen_k = k; });

    Tensor x = random_tensor({2, 9, 16}, gen, 20.0f);  // large: s far from 0
    NoGradGuard no_grad;
    // Training forward 1 attends with A = 0 (FAVOR+), then moves s a tenth of the way.
    Tensor first = attention.forward(x);
    std::vector<double> s = mean_pair_norm2(seen_q, seen_k);
    for (int h = 0; h < 2; ++h) REQUIRE(running.data()[h] == Approx(0.1 * s[h]).epsilon(1e-5));
    std::vector<float> after_one = running.to_vector();
    // Evaluation: the buffer stays; the output uses A from it, so it differs from the
    // first (A = 0) forward, and repeated evaluation gives the same numbers.
    attention.eval();
    Tensor evaluated = attention.forward(x);
    REQUIRE(running.to_vector() == after_one);
    REQUIRE(max_abs_diff(attention.forward(x), evaluated) == 0.0f);
    REQUIRE(max_abs_diff(evaluated, first) > 1e-4 * max_abs(first));
    // A second training forward: s' = 0.9 s + 0.1 s_batch.
    attention.train();
    Tensor y = random_tensor({2, 9, 16}, gen, 5.0f);
    attention.forward(y);
    std::vector<double> s2 = mean_pair_norm2(seen_q, seen_k);
    for (int h = 0; h < 2; ++h)
        REQUIRE(running.data()[h] == Approx(0.9 * after_one[h] + 0.1 * s2[h]).epsilon(1e-5));

    // Causality with a non-zero A (evaluation mode, so A stays put): cutting the sequence
    // after position 4 leaves outputs 0..4 unchanged, and decoding reproduces the forward.
    attention.eval();
    REQUIRE(favor_plus_plus_a(running.data()[0], 8) < -0.01);
    Tensor full = attention.forward(x);
    Tensor cut = attention.forward(slice(x, 1, 0, 5));
    REQUIRE(max_abs_diff(cut, slice(full, 1, 0, 5)) <= 1e-5 * max_abs(cut));
    DecodeState state = attention.start_decoding();
    for (int64_t t = 0; t < 9; ++t) {
        INFO("position " << t);
        Tensor step = attention.decode_step(reshape(slice(x, 1, t, t + 1), {2, 16}), state);
        Tensor expected = reshape(slice(full, 1, t, t + 1), {2, 16});
        REQUIRE(max_abs_diff(step, expected) <= 1e-4 * max_abs(expected) + 1e-7);
    }
}

TEST_CASE("favor++ module: no gradient from later positions; bad configurations refused",
          "[attention][favor++]") {
    Generator gen(86);
    MultiHeadAttention attention = favor_plus_plus_module(true, gen);
    float* running = pair_norm2_buffer(attention).mutable_data();
    running[0] = 6.0f, running[1] = 2.0f;
    attention.eval();
    Tensor x = random_tensor({2, 13, 16}, gen, 3.0f).requires_grad_();
    const int64_t i = 5;
    sum(mul(slice(attention.forward(x), 1, i, i + 1), random_tensor({2, 1, 16}, gen))).backward();
    double before = 0;
    for (int64_t b = 0; b < 2; ++b)
        for (int64_t j = 0; j < 13; ++j)
            for (int64_t c = 0; c < 16; ++c) {
                if (j > i) REQUIRE(x.grad().at({b, j, c}) == 0.0f);
                else before += std::fabs(x.grad().at({b, j, c}));
            }
    REQUIRE(before > 0);

    AttentionConfig config;
    config.feature_kind = FeatureKind::Optimal;
    for (Mechanism other : {Mechanism::Softmax, Mechanism::Trig, Mechanism::Relu}) {
        config.mechanism = other;
        REQUIRE_THROWS_WITH(check_config(config), Catch::Contains("favor++"));
    }
}
