// test_causality.cpp — causal attention is strictly causal: whatever q, k and v hold at
// positions >= t (other numbers, huge keys, NaN, inf), every output before t is the
// same to the last bit, for every mechanism; and the ops that make it so (the
// stabilised causal dot product, the lower-triangular product, the running maximum)
// agree with their references in values and gradients.
#include "gradcheck.h"

#include "nn/attention.h"
#include "nn/baselines.h"

#include <cmath>
#include <limits>

using namespace pf;
using namespace pf::nn;
using namespace pf::testing;

namespace {
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();


// x (B, H, L, d) with positions >= t along axis 2 replaced by `replace(b, h, j, i)`.
template <class Fn>
Tensor with_positions_from(const Tensor& x, int64_t t, Fn replace) {
    std::vector<float> values = x.to_vector();
    const Shape& s = x.shape();
    for (int64_t b = 0; b < s[0]; ++b)
        for (int64_t h = 0; h < s[1]; ++h)
            for (int64_t j = t; j < s[2]; ++j)
                for (int64_t i = 0; i < s[3]; ++i)
                    values[((b * s[1] + h) * s[2] + j) * s[3] + i] = replace(b, h, j, i);
    return Tensor::from_data(s, values);
}

// Outputs at positions [0, t) (along `axis`) equal bit for bit.
bool same_before(const Tensor& a, const Tensor& b, int64_t t, int64_t axis) {
    return same_bits(slice(a, axis, 0, t), slice(b, axis, 0, t));
}

// The index of W's longest row.
int64_t longest_row(const Tensor& W) {
    int64_t best = 0;
    double best_norm = -1;
    for (int64_t r = 0; r < W.shape()[0]; ++r) {
        double norm = 0;
        for (int64_t i = 0; i < W.shape()[1]; ++i) norm += double(W.at({r, i})) * W.at({r, i});
        if (norm > best_norm) best_norm = norm, best = r;
    }
    return best;
}
}  // namespace

TEST_CASE("cummax: running maximum, gradient to the first maximal element, NaN skipped",
          "[causality][ops]") {
    Tensor x = Tensor::from_data({2, 4}, {1, 3, 2, 5, -1, -1, kNaN, 0});
    REQUIRE(cummax(x, 1).to_vector() == std::vector<float>{1, 3, 3, 5, -1, -1, -1, 0});
    Tensor y = Tensor::from_data({3, 1}, {2, 1, 4});
    REQUIRE(cummax(y, 0).to_vector() == std::vector<float>{2, 2, 4});
    Tensor leaf = Tensor::from_data({1, 4}, {2, 2, 1, 3}).requires_grad_();
    sum(mul(cummax(leaf, 1), Tensor::from_data({1, 4}, {1, 10, 100, 1000}))).backward();
    REQUIRE(leaf.grad().to_vector() == std::vector<float>{111, 0, 0, 1000});
    REQUIRE_THROWS_WITH(cummax(x, 2), Catch::Contains("cummax"));
}

TEST_CASE("gradient: cummax", "[causality][gradient]") {
    // Distinct values 0.1 apart (a shuffled 0, 0.1, ..., 2.9), far more than the
    // finite-difference step: no perturbation changes which element is the maximum.
    std::vector<float> values(30);
    for (int i = 0; i < 30; ++i) values[i] = float((i * 7) % 30) * 0.1f;
    Tensor x = Tensor::from_data({2, 5, 3}, values);
    for (int64_t axis : {0, 1, 2})
        REQUIRE_GRADIENTS([=](const std::vector<Tensor>& t) { return cummax(t[0], axis); }, {x});
}

TEST_CASE("stabilised causal_dot_product equals the L x L reference, values and gradients",
          "[causality]") {
    Generator gen(81);
    struct Case { int64_t L, m, dv, chunk; float jump; };
    // jump: how far the log-scale c may rise at one position (40: e^-40 factors).
    for (Case c : {Case{9, 4, 3, 4, 1.0f}, Case{13, 5, 2, 3, 40.0f}, Case{70, 8, 5, 64, 3.0f},
                   Case{6, 3, 4, 1, 10.0f}}) {
        INFO("L " << c.L << " m " << c.m << " dv " << c.dv << " chunk " << c.chunk);
        Tensor q = Tensor::rand({2, c.L, c.m}, gen, 0.0f, 1.0f).requires_grad_();
        Tensor k = Tensor::rand({2, c.L, c.m}, gen, 0.0f, 1.0f).requires_grad_();
        Tensor v = random_tensor({2, c.L, c.dv}, gen).requires_grad_();
        std::vector<float> scales(2 * c.L);
        for (int64_t b = 0; b < 2; ++b) {
            float level = -5;
            for (int64_t i = 0; i < c.L; ++i) {
                if (gen.uniform() < 0.3) level += c.jump * float(gen.uniform());  // never falls
                scales[b * c.L + i] = level;
            }
        }
        Tensor log_scale = Tensor::from_data({2, c.L}, scales);
        Tensor weights = random_tensor({2, c.L, c.dv}, gen);
        Tensor fast = causal_dot_product(q, k, v, c.chunk, log_scale);
        sum(mul(fast, weights)).backward();
        Tensor fq = q.grad(), fk = k.grad(), fv = v.grad();
        q.zero_grad(), k.zero_grad(), v.zero_grad();
        Tensor slow = causal_dot_product_reference(q, k, v, log_scale);
        sum(mul(slow, weights)).backward();
        REQUIRE(max_abs_diff(fast, slow) < 1e-5 * (1 + max_abs(slow)));
        REQUIRE(max_abs_diff(fq, q.grad()) < 1e-5 * (1 + max_abs(fq)));
        REQUIRE(max_abs_diff(fk, k.grad()) < 1e-5 * (1 + max_abs(fk)));
        REQUIRE(max_abs_diff(fv, v.grad()) < 1e-5 * (1 + max_abs(fv)));
    }
}

TEST_CASE("gradient: causal_dot_product with log-scales", "[causality][gradient]") {
    Generator gen(82);
    Tensor log_scale = Tensor::from_data({2, 5}, {0, 0.5f, 0.5f, 2, 2.5f, -1, -1, 0, 3, 3});
    auto f = [=](const std::vector<Tensor>& t) {
        return causal_dot_product(t[0], t[1], t[2], 2, log_scale);
    };
    REQUIRE_GRADIENTS(f, {random_tensor({2, 5, 3}, gen), random_tensor({2, 5, 3}, gen),
                          random_tensor({2, 5, 2}, gen)});
}

TEST_CASE("causal_matmul equals matmul with a lower-triangular p; never reads later values",
          "[causality]") {
    Generator gen(83);
    for (int64_t L : {1, 5, 64, 150}) {
        INFO("L " << L);
        Tensor p = random_tensor({2, L, L}, gen).requires_grad_();
        Tensor v = random_tensor({2, L, 3}, gen).requires_grad_();
        std::vector<float> lower(2 * L * L, 0.0f);
        for (int64_t b = 0; b < 2; ++b)
            for (int64_t i = 0; i < L; ++i)
                for (int64_t j = 0; j <= i; ++j) lower[(b * L + i) * L + j] = 1;
        Tensor mask = Tensor::from_data({2, L, L}, lower);
        Tensor weights = random_tensor({2, L, 3}, gen);
        Tensor fast = causal_matmul(p, v);
        sum(mul(fast, weights)).backward();
        Tensor fp = p.grad(), fv = v.grad();
        p.zero_grad(), v.zero_grad();
        Tensor slow = matmul(mul(p, mask), v);
        sum(mul(slow, weights)).backward();
        REQUIRE(max_abs_diff(fast, slow) < 1e-5 * (1 + max_abs(slow)));
        REQUIRE(max_abs_diff(fp, p.grad()) < 1e-5 * (1 + max_abs(fp)));
        REQUIRE(max_abs_diff(fv, v.grad()) < 1e-5 * (1 + max_abs(fv)));

        // NaN above the diagonal and in the last value row: only the last row sees it.
        NoGradGuard no_grad;
        std::vector<float> pv = p.to_vector(), vv = v.to_vector();
        for (int64_t i = 0; i + 1 < L; ++i) pv[i * L + L - 1] = kNaN;
        for (int64_t c = 0; c < 3; ++c) vv[(L - 1) * 3 + c] = kNaN;
        Tensor out = causal_matmul(Tensor::from_data(p.shape(), pv), Tensor::from_data(v.shape(), vv));
        std::vector<float> values = out.to_vector();
        for (int64_t i = 0; i < L; ++i)
            for (int64_t c = 0; c < 3; ++c) REQUIRE(std::isnan(values[i * 3 + c]) == (i == L - 1));
    }
}

TEST_CASE("gradient: causal_matmul", "[causality][gradient]") {
    Generator gen(84);
    auto f = [](const std::vector<Tensor>& t) { return causal_matmul(t[0], t[1]); };
    REQUIRE_GRADIENTS(f, {random_tensor({2, 4, 4}, gen), random_tensor({2, 4, 3}, gen)});
}

TEST_CASE("strict causality: nothing at positions >= t changes an output before t, to the bit",
          "[causality][attention]") {
    // Per-head q, k, v of 2 heads of width 8, L = 29 with chunks of 8: t at the start,
    // at chunk boundaries, inside chunks, and at the last position.
    const int64_t B = 2, H = 2, L = 29, d = 8;
    Generator gen(85);
    Tensor q = random_tensor({B, H, L, d}, gen), k = random_tensor({B, H, L, d}, gen),
           v = random_tensor({B, H, L, d}, gen);
    Tensor W = gaussian_orthogonal_matrix(16, d, gen);
    MechanismTensors random;
    random.features = W;
    // Reformer: 3 rounds of 2 buckets, about 15 positions each: 2 chunks of 8 per bucket.
    random.rotations = random_rotations(3, d, 2, gen);
    const int64_t top = longest_row(W);
    // A key along W's longest row, long enough to raise a shared stabiliser far.
    auto huge_key = [&](int64_t, int64_t, int64_t, int64_t i) { return 6.0f * W.at({top, i}); };
    auto noise = [&](int64_t, int64_t, int64_t, int64_t) { return float(gen.normal()) * 5; };
    for (const std::string& name : mechanism_names()) {
        const Mechanism mechanism = parse_mechanism(name);
        AttentionConfig config;
        config.mechanism = mechanism;
        config.causal = true;
        config.chunk = 8;
        if (mechanism == Mechanism::Linformer) {  // refused: it mixes in later positions
            REQUIRE_THROWS_WITH(attend(config, random, q, k, v), Catch::Contains("cannot be causal"));
            continue;
        }
        Tensor base = attend(config, random, q, k, v);
        for (int64_t t : {1, 7, 8, 9, 16, 20, 28}) {
            INFO(mechanism_name(mechanism) << ", changes from position " << t);
            struct Change { const char* what; Tensor q, k, v; };
            for (Change change :
                 {Change{"q, k, v redrawn", with_positions_from(q, t, noise),
                         with_positions_from(k, t, noise), with_positions_from(v, t, noise)},
                  Change{"huge keys", q, with_positions_from(k, t, huge_key), v},
                  Change{"v NaN", q, k, with_positions_from(v, t, [](auto...) { return kNaN; })},
                  Change{"v +inf", q, k, with_positions_from(v, t, [](auto...) { return kInf; })},
                  Change{"v -inf", q, k, with_positions_from(v, t, [](auto...) { return -kInf; })},
                  Change{"q, k NaN", with_positions_from(q, t, [](auto...) { return kNaN; }),
                         with_positions_from(k, t, [](auto...) { return kNaN; }), v}}) {
                INFO(change.what);
                Tensor out = attend(config, random, change.q, change.k, change.v);
                REQUIRE(same_before(out, base, t, 2));
            }
        }
    }
}

TEST_CASE("strict causality of the module: later inputs (NaN too) leave earlier outputs' bits",
          "[causality][attention]") {
    for (const std::string& name : mechanism_names()) {
        const Mechanism mechanism = parse_mechanism(name);
        AttentionConfig config;
        config.dim = 16;
        config.heads = 2;
        config.mechanism = mechanism;
        config.features = 32;
        config.chunk = 4;
        config.hashes = 2, config.buckets = 2;  // reformer: 2 chunks a bucket, about
        Generator gen(86);
        if (mechanism == Mechanism::Linformer) {
            REQUIRE_THROWS_WITH(MultiHeadAttention(config, gen), Catch::Contains("cannot be causal"));
            continue;
        }
        MultiHeadAttention attention(config, gen);
        Tensor x = random_tensor({2, 11, 16}, gen, 3.0f);
        NoGradGuard no_grad;
        Tensor base = attention.forward(x);
        for (int64_t t : {3, 4, 10}) {
            for (float later : {kNaN, 40.0f}) {
                INFO(mechanism_name(mechanism) << ", position " << t << ", later inputs " << later);
                std::vector<float> changed = x.to_vector();
                for (int64_t b = 0; b < 2; ++b)
                    for (int64_t j = t; j < 11; ++j)
                        for (int64_t i = 0; i < 16; ++i) changed[(b * 11 + j) * 16 + i] *= later;
                Tensor out = attention.forward(Tensor::from_data(x.shape(), changed));
                REQUIRE(same_before(out, base, t, 1));
            }
        }
    }
}

TEST_CASE("causal FAVOR+: a huge later key neither zeroes earlier outputs nor splits decoding",
          "[causality][attention]") {
    // Keys 0..7 of norm 42; the last key points along W's longest row. With one
    // stabiliser for all keys, the last key raises it so far that the features of
    // keys 0..7 underflow to 0, and outputs 0..7 became exactly 0.
    const int64_t d = 8, L = 12, m = 16;
    AttentionConfig config;
    config.dim = d;
    config.heads = 1;
    config.features = m;
    config.chunk = 4;
    Generator gen(87);
    MultiHeadAttention attention(config, gen);
    // Identity projections, so that the inputs are the keys (and queries and values).
    for (auto& [name, p] : attention.named_parameters()) {
        std::vector<float> values(p.numel(), 0.0f);
        if (p.dim() == 2)
            for (int64_t i = 0; i < d; ++i) values[i * d + i] = 1;
        std::copy(values.begin(), values.end(), p.mutable_data());
    }
    const Tensor& W = attention.features();
    std::vector<float> x(L * d);
    for (int64_t j = 0; j < L; ++j) {
        double norm = 0;
        for (int64_t i = 0; i < d; ++i) norm += std::pow(x[j * d + i] = float(gen.normal()), 2);
        float length = j < 8 ? 42.0f : 1.0f;
        for (int64_t i = 0; i < d; ++i) x[j * d + i] *= float(length / std::sqrt(norm));
    }
    // The last key: along the longest row w, where u - h = w.x^ - |x^|^2/2 peaks (x^ = w).
    const int64_t top = longest_row(W);
    for (int64_t i = 0; i < d; ++i) x[(L - 1) * d + i] = W.at({top, i}) * std::pow(float(d), 0.25f);
    Tensor input = Tensor::from_data({1, L, d}, x);
    NoGradGuard no_grad;

    // The attack works on a shared stabiliser: bidirectional key features of 0..7 underflow.
    Tensor keys = reshape(input, {1, 1, L, d});
    Tensor shared = favor_features(keys, W, /*is_query=*/false);
    REQUIRE(max_abs(slice(shared, 2, 0, 8)) == 0.0);

    // The same inputs with an ordinary last key (norm 1) give outputs 0..7 to the bit;
    // a sequence cut after position 7 gives them up to rounding (other GEMM shapes).
    Tensor out = attention.forward(input);
    std::vector<float> ordinary = x;
    for (int64_t i = 0; i < d; ++i) ordinary[(L - 1) * d + i] = x[(L - 2) * d + i];
    Tensor ordinary_out = attention.forward(Tensor::from_data({1, L, d}, ordinary));
    REQUIRE(same_before(out, ordinary_out, 8, 1));
    Tensor cut = attention.forward(slice(input, 1, 0, 8));
    REQUIRE(max_abs_diff(cut, slice(out, 1, 0, 8)) <= 1e-5 * max_abs(cut));
    // Position 0 attends to itself alone: its output is v_0 = x_0.
    for (int64_t i = 0; i < d; ++i) REQUIRE(out.at({0, 0, i}) == Approx(x[i]).epsilon(1e-4));
    for (int64_t j = 0; j < 8; ++j) REQUIRE(max_abs(slice(out, 1, j, j + 1)) > 1.0);

    // Recurrent decoding (a running maximum) gives the forward's outputs.
    DecodeState state = attention.start_decoding();
    for (int64_t t = 0; t < L; ++t) {
        INFO("position " << t);
        Tensor step = attention.decode_step(reshape(slice(input, 1, t, t + 1), {1, d}), state);
        Tensor expected = reshape(slice(out, 1, t, t + 1), {1, d});
        REQUIRE(max_abs_diff(step, expected) <= 1e-4 * max_abs(expected) + 1e-6);
    }
}
