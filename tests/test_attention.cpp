// test_attention.cpp — FAVOR+ and the other mechanisms: the fused causal op against its
// reference, causality, unbiasedness, convergence to softmax, recurrent decoding,
// padding, orthogonal features, and gradients.
#include "gradcheck.h"

#include "nn/attention.h"

#include <cmath>

using namespace pf;
using namespace pf::nn;
using namespace pf::testing;

namespace {
const Mechanism kAllMechanisms[] = {Mechanism::Softmax,  Mechanism::Favor,    Mechanism::Trig,
                                    Mechanism::Relu,     Mechanism::Identity, Mechanism::Linformer,
                                    Mechanism::Reformer};
// Linformer is bidirectional only: a causal one is refused.
const Mechanism kCausalMechanisms[] = {Mechanism::Softmax, Mechanism::Favor,    Mechanism::Trig,
                                       Mechanism::Relu,    Mechanism::Identity, Mechanism::Reformer};

AttentionConfig small_config(Mechanism mechanism, bool causal) {
    AttentionConfig config;
    config.dim = 16;
    config.heads = 2;
    config.max_length = 32;
    config.mechanism = mechanism;
    config.causal = causal;
    config.features = 32;
    config.chunk = 4;  // several chunks, and a partial one, at the lengths used here
    config.linformer_k = 8;
    config.hashes = 2, config.buckets = 2;  // reformer: buckets of several chunks
    return config;
}

}  // namespace

TEST_CASE("fused causal_dot_product equals the L x L reference, values and gradients",
          "[attention]") {
    Generator gen(60);
    struct Case { Shape lead; int64_t L, m, dv, chunk; };
    for (Case c : {Case{{1}, 1, 3, 2, 64}, Case{{2, 3}, 7, 5, 4, 3}, Case{{2}, 10, 4, 3, 4},
                   Case{{1, 2}, 65, 8, 5, 64}, Case{{3}, 9, 2, 6, 1}}) {
        INFO("L " << c.L << " m " << c.m << " dv " << c.dv << " chunk " << c.chunk);
        Shape qs = c.lead, vs = c.lead;
        qs.insert(qs.end(), {c.L, c.m});
        vs.insert(vs.end(), {c.L, c.dv});
        Tensor q = random_tensor(qs, gen).requires_grad_(), k = random_tensor(qs, gen).requires_grad_(),
               v = random_tensor(vs, gen).requires_grad_();
        Tensor weights = random_tensor(vs, gen);
        Tensor fast = causal_dot_product(q, k, v, c.chunk);
        sum(mul(fast, weights)).backward();
        Tensor fq = q.grad(), fk = k.grad(), fv = v.grad();
        q.zero_grad(), k.zero_grad(), v.zero_grad();
        Tensor slow = causal_dot_product_reference(q, k, v);
        sum(mul(slow, weights)).backward();
        double scale = 1e-5 * (1 + max_abs(slow));
        REQUIRE(max_abs_diff(fast, slow) < scale);
        REQUIRE(max_abs_diff(fq, q.grad()) < 1e-5 * (1 + max_abs(fq)));
        REQUIRE(max_abs_diff(fk, k.grad()) < 1e-5 * (1 + max_abs(fk)));
        REQUIRE(max_abs_diff(fv, v.grad()) < 1e-5 * (1 + max_abs(fv)));
    }
}

TEST_CASE("causal_dot_product: output and gradients bit-identical on 1, 2, 3 and 16 threads",
          "[attention][threads]") {
    struct Case {
        int64_t batch, L, m, dv, chunk;
    };
    // 3 items of 70 positions in chunks of 16: 5 chunks, the last of 6, so 15 pieces (12
    // in the phases that skip the first or the last chunk), spread differently by each
    // thread count; one window (W = 22, at most the 5 chunks). 2 items of 150 positions
    // in chunks of 2: 75 chunks in windows of W = 32, so 3 windows, the last of 11
    // chunks, with states carried between them. c rises along each sequence by jumps,
    // inside chunks and at their edges.
    for (const Case& at : {Case{3, 70, 8, 5, 16}, Case{2, 150, 8, 5, 2}}) {
        const int64_t batch = at.batch, L = at.L, m = at.m, dv = at.dv, chunk = at.chunk;
        INFO("batch " << batch << ", L " << L << ", chunk " << chunk);
        Generator gen(64);
        Tensor q = Tensor::rand({batch, L, m}, gen, 0.0f, 1.0f).requires_grad_();
        Tensor k = Tensor::rand({batch, L, m}, gen, 0.0f, 1.0f).requires_grad_();
        Tensor v = random_tensor({batch, L, dv}, gen).requires_grad_();
        Tensor weights = random_tensor({batch, L, dv}, gen);
        std::vector<float> scales(batch * L);
        for (int64_t b = 0; b < batch; ++b) {
            float level = -3;
            for (int64_t i = 0; i < L; ++i) {
                if (i % chunk == 0 || gen.uniform() < 0.2) level += 4.0f * float(gen.uniform());
                scales[b * L + i] = level;
            }
        }
        Tensor log_scale = Tensor::from_data({batch, L}, scales);
        auto run = [&](int threads) {
            ThreadCount thread_count(threads);
            q.zero_grad(), k.zero_grad(), v.zero_grad();
            Tensor y = causal_dot_product(q, k, v, chunk, log_scale);
            sum(mul(y, weights)).backward();
            return std::vector<Tensor>{y, q.grad(), k.grad(), v.grad()};
        };
        const char* names[] = {"y", "dq", "dk", "dv"};
        const std::vector<Tensor> one = run(1);
        for (int threads : {2, 3, 16}) {
            const std::vector<Tensor> many = run(threads);
            for (size_t i = 0; i < one.size(); ++i) {
                INFO(names[i] << " on " << threads << " threads");
                require_same_bits(many[i], one[i]);
            }
        }
        // And the same result is right.
        q.zero_grad(), k.zero_grad(), v.zero_grad();
        Tensor slow = causal_dot_product_reference(q, k, v, log_scale);
        sum(mul(slow, weights)).backward();
        const std::vector<Tensor> reference{slow, q.grad(), k.grad(), v.grad()};
        for (size_t i = 0; i < one.size(); ++i) {
            INFO(names[i] << " against the reference");
            REQUIRE(max_abs_diff(one[i], reference[i]) < 1e-5 * (1 + max_abs(reference[i])));
        }
    }
}

TEST_CASE("linear_attention equals its term-by-term reference, values and gradients, "
          "both ways", "[attention]") {
    for (bool causal : {false, true}) {
        INFO("causal " << causal);
        auto run = [&](bool reference) {
            Generator g(62);
            Tensor phi_q = positive_tensor({2, 3, 9, 5}, g, 0.01f, 2.0f).requires_grad_();
            Tensor phi_k = positive_tensor({2, 3, 9, 5}, g, 0.01f, 2.0f).requires_grad_();
            Tensor v = random_tensor({2, 3, 9, 4}, g).requires_grad_();
            Tensor out = reference ? linear_attention_reference(phi_q, phi_k, v, causal)
                                   : linear_attention(phi_q, phi_k, v, causal, 4);
            sum(mul(out, random_tensor(out.shape(), g))).backward();
            return std::vector<Tensor>{out, phi_q.grad(), phi_k.grad(), v.grad()};
        };
        std::vector<Tensor> fast = run(false), slow = run(true);
        for (size_t i = 0; i < fast.size(); ++i) {
            INFO("tensor " << i);
            REQUIRE(max_abs_diff(fast[i], slow[i]) < 1e-5 * (1 + max_abs(slow[i])));
        }
    }
}

TEST_CASE("gradient: causal_dot_product", "[attention][gradient]") {
    Generator gen(61);
    auto f = [](const std::vector<Tensor>& t) { return causal_dot_product(t[0], t[1], t[2], 2); };
    REQUIRE_GRADIENTS(f, {random_tensor({2, 5, 3}, gen), random_tensor({2, 5, 3}, gen),
                          random_tensor({2, 5, 2}, gen)});
}

TEST_CASE("every causal mechanism is causal: no gradient from later positions", "[attention]") {
    for (Mechanism mechanism : kCausalMechanisms) {
        INFO(mechanism_name(mechanism));
        Generator gen(62);
        MultiHeadAttention attention(small_config(mechanism, true), gen);
        Tensor x = random_tensor({2, 13, 16}, gen, 3.0f).requires_grad_();
        Tensor out = attention.forward(x);
        const int64_t i = 5;
        sum(mul(slice(out, 1, i, i + 1), random_tensor({2, 1, 16}, gen))).backward();
        Tensor g = x.grad();
        double before = 0;
        for (int64_t b = 0; b < 2; ++b)
            for (int64_t j = 0; j < 13; ++j)
                for (int64_t c = 0; c < 16; ++c) {
                    if (j > i) REQUIRE(g.at({b, j, c}) == 0.0f);  // exactly zero
                    else before += std::fabs(g.at({b, j, c}));
                }
        REQUIRE(before > 0);

        // Cutting the sequence after position 7 leaves outputs 0..7 unchanged (up to rounding).
        NoGradGuard no_grad;
        Tensor cut = attention.forward(slice(x, 1, 0, 8));
        REQUIRE(max_abs_diff(cut, slice(out, 1, 0, 8)) <= 1e-5 * max_abs(cut));
    }
}

TEST_CASE("positive random features are unbiased; orthogonal ones have lower variance",
          "[attention]") {
    const int64_t d = 16, m = 16, draws = 6000;
    Generator gen(63);
    Tensor q = random_tensor({1, 1, 1, d}, gen, 0.4f), k = random_tensor({1, 1, 1, d}, gen, 0.4f);
    double target = 0;
    for (int64_t i = 0; i < d; ++i) target += q.at({0, 0, 0, i}) * k.at({0, 0, 0, i});
    target = std::exp(target / std::sqrt(double(d)));
    double variance[2];
    for (bool orthogonal : {false, true}) {
        double total = 0, total_sq = 0;
        for (int64_t draw = 0; draw < draws; ++draw) {
            Tensor W = orthogonal ? gaussian_orthogonal_matrix(m, d, gen) : gaussian_iid_matrix(m, d, gen);
            double estimate = sum(mul(positive_random_features(q, W), positive_random_features(k, W))).item();
            total += estimate;
            total_sq += estimate * estimate;
        }
        double mean = total / draws, var = total_sq / draws - mean * mean;
        variance[orthogonal] = var;
        INFO("orthogonal " << orthogonal << ": mean " << mean << " target " << target << " var " << var);
        REQUIRE(std::fabs(mean - target) < 4 * std::sqrt(var / draws));  // 4 standard errors
    }
    REQUIRE(variance[1] < 0.9 * variance[0]);
}

TEST_CASE("favor attention approaches softmax attention as m grows", "[attention]") {
    // Inputs of small norm, over few and more positions. (With unit-variance inputs the
    // estimator's variance, about e^{|q^ + k^|^2} / m ~ e^8 / m for d = 16, dwarfs these m:
    // see build/approx.)
    for (int64_t L : {40, 256})
    for (bool causal : {false, true}) {
        Generator gen(64);
        Tensor q = random_tensor({1, 2, L, 16}, gen, 0.5f), k = random_tensor({1, 2, L, 16}, gen, 0.5f),
               v = random_tensor({1, 2, L, 16}, gen);
        Tensor exact = softmax_attention(q, k, v, causal);
        std::vector<double> errors;
        for (int64_t m : {8, 32, 128, 512}) {
            double error = 0;
            for (int seed = 0; seed < 4; ++seed) {
                Generator wgen(100 + seed);
                MechanismTensors random;
                random.features = gaussian_orthogonal_matrix(m, 16, wgen);
                AttentionConfig favor;
                favor.causal = causal;
                Tensor approx = attend(favor, random, q, k, v);
                Tensor diff = sub(approx, exact);
                error += mean(mul(diff, diff)).item();  // mean squared error
            }
            errors.push_back(error / 4);
        }
        INFO("L " << L << " causal " << causal << " errors " << errors[0] << " " << errors[1] << " " << errors[2]
                       << " " << errors[3]);
        for (size_t i = 1; i < errors.size(); ++i) REQUIRE(errors[i] < errors[i - 1]);
        REQUIRE(errors.back() < errors.front() / 10);  // MSE falls about as 1/m
    }
}

TEST_CASE("recurrent decoding reproduces the causal forward position by position",
          "[attention]") {
    for (Mechanism mechanism : kCausalMechanisms) {
        INFO(mechanism_name(mechanism));
        Generator gen(65);
        MultiHeadAttention attention(small_config(mechanism, true), gen);
        Tensor x = random_tensor({2, 17, 16}, gen, 4.0f);
        NoGradGuard no_grad;
        Tensor full = attention.forward(x);
        DecodeState state = attention.start_decoding();
        for (int64_t t = 0; t < 17; ++t) {
            Tensor step = attention.decode_step(reshape(slice(x, 1, t, t + 1), {2, 16}), state);
            Tensor expected = reshape(slice(full, 1, t, t + 1), {2, 16});
            INFO("position " << t);
            REQUIRE(max_abs_diff(step, expected) <= 1e-4 * max_abs(expected) + 1e-7);
        }
    }
}

TEST_CASE("decode_linear, position by position, equals causal linear attention of the prefix",
          "[attention]") {
    // Decoding gets each key on its own scale c_j (the true key is phi_k e^(c_j)), with
    // c_j jumping up and down by up to 30; the naive reference, the L x L form over the
    // whole prefix, gets the same keys on the scale of the running maximum C_j.
    Generator gen(73);
    const int64_t B = 2, H = 2, L = 9, m = 5, d = 3;
    Tensor phi_q = Tensor::rand({B, H, L, m}, gen, 0.1f, 1.0f);
    std::vector<float> keys = Tensor::rand({B, H, L, m}, gen, 0.1f, 1.0f).to_vector();
    Tensor v = random_tensor({B, H, L, d}, gen);
    std::vector<float> own(B * H * L), running(B * H * L), rescaled = keys;
    for (int64_t bh = 0; bh < B * H; ++bh)
        for (int64_t j = 0; j < L; ++j) {
            const int64_t at = bh * L + j;
            own[at] = 30 * gen.uniform() - 15;
            running[at] = j == 0 ? own[at] : std::max(running[at - 1], own[at]);
            for (int64_t f = 0; f < m; ++f) rescaled[at * m + f] *= std::exp(own[at] - running[at]);
        }
    Tensor phi_k = Tensor::from_data({B, H, L, m}, keys), c = Tensor::from_data({B, H, L}, own);
    Tensor expected = linear_attention_reference(phi_q, Tensor::from_data({B, H, L, m}, rescaled), v,
                                                 /*causal=*/true, Tensor::from_data({B, H, L}, running));
    DecodeState state;
    for (int64_t t = 0; t < L; ++t) {
        INFO("position " << t);
        auto at = [t](const Tensor& x) { return slice(x, 2, t, t + 1); };
        Tensor out = decode_linear(at(phi_q), at(phi_k), at(c), at(v), state);
        state.position++;
        REQUIRE(max_abs_diff(out, at(expected)) <= 1e-5 * (1 + max_abs(expected)));
    }
}

namespace {
// Equal as numbers: both NaN, the same infinity, or within rel of each other.
bool same_number(float a, float b, float rel) {
    if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
    if (std::isinf(a) || std::isinf(b)) return a == b;
    return std::fabs(a - b) <= rel * (std::fabs(a) + std::fabs(b)) + 1e-30f;
}
bool same_numbers(const Tensor& a, const Tensor& b, float rel) {
    if (a.shape() != b.shape()) return false;
    for (int64_t i = 0; i < a.numel(); ++i)
        if (!same_number(a.data()[i], b.data()[i], rel)) return false;
    return true;
}
}  // namespace

TEST_CASE("fused shifted_exp equals exp(u - s) + eps composed, values and gradients, also "
          "where every feature underflows or overflows, and with a NaN", "[attention]") {
    Generator gen(41);
    Tensor u = random_tensor({3, 4, 6}, gen, 3.0f), s = random_tensor({3, 4, 1}, gen, 3.0f);
    s.mutable_data()[1] = 200.0f;   // row 1: every e^(u - s) underflows to 0
    s.mutable_data()[2] = -100.0f;  // row 2: every one overflows to inf
    u.mutable_data()[3 * 6 + 2] = std::numeric_limits<float>::quiet_NaN();  // row 3: one NaN
    Tensor g = random_tensor(u.shape(), gen);
    for (float eps : {0.0f, 1e-3f}) {
        INFO("eps " << eps);
        auto run = [&](bool fused) {
            Tensor du = u.detach(), ds = s.detach();
            du.requires_grad_(), ds.requires_grad_();
            Tensor y = fused ? shifted_exp(du, ds, eps) : add_scalar(exp(sub(du, ds)), eps);
            y.backward(g);
            return std::tuple{y, du.grad(), ds.grad()};
        };
        auto [y1, du1, ds1] = run(true);
        auto [y2, du2, ds2] = run(false);
        REQUIRE(same_numbers(y1, y2, 0.0f));  // the same float operations
        // du: g (y - eps) against g e^(u - s), a rounding apart when eps > 0.
        REQUIRE(same_numbers(du1, du2, eps == 0.0f ? 0.0f : 1e-6f));
        REQUIRE(same_numbers(ds1, ds2, 1e-6f));  // sums in another order
        REQUIRE(du1.data()[1 * 6] == 0.0f);       // underflow: no gradient, no NaN
        REQUIRE(std::isinf(du1.data()[2 * 6]));
    }
    REQUIRE_THROWS_WITH(shifted_exp(u, random_tensor({3, 4, 2}, gen)), Catch::Contains("last axis of 1"));
}

TEST_CASE("recomputed attention: bit-identical outputs and gradients, every mechanism, with "
          "padding; less memory kept for FAVOR+", "[attention]") {
    for (Mechanism mechanism : kAllMechanisms) {
        for (bool causal : {false, true}) {
            if (causal && mechanism == Mechanism::Linformer) continue;
            INFO(mechanism_name(mechanism) << " causal " << causal);
            AttentionConfig config = small_config(mechanism, causal);
            auto run = [&](bool recomputed) {
                config.recompute = recomputed;
                Generator gen(67);
                MultiHeadAttention attention(config, gen);
                Tensor x = random_tensor({2, 9, 16}, gen, 2.0f).requires_grad_();
                Tensor mask = Tensor::from_data({2, 9}, {1, 1, 1, 1, 1, 1, 1, 1, 1,  //
                                                         1, 1, 1, 1, 1, 1, 0, 0, 0});
                Tensor weights = random_tensor({2, 9, 16}, gen);
                Storage::reset_peak();
                const int64_t before = Storage::live_bytes();
                Tensor y = attention.forward(x, mask);
                const int64_t kept = Storage::live_bytes() - before;
                y.backward(weights);
                std::vector<std::vector<float>> values{y.to_vector(), x.grad().to_vector()};
                for (const Tensor& p : attention.parameters())  // identity: q, k get none
                    values.push_back(p.grad().defined() ? p.grad().to_vector() : std::vector<float>{});
                return std::pair{values, kept};
            };
            auto [plain, kept_plain] = run(false);
            auto [recomputed, kept_recomputed] = run(true);
            REQUIRE(plain == recomputed);
            if (mechanism == Mechanism::Favor) REQUIRE(kept_recomputed < kept_plain / 2);
        }
    }
}

TEST_CASE("padding is invisible: real positions' outputs do not change", "[attention]") {
    for (Mechanism mechanism : kAllMechanisms) {
        for (bool causal : {false, true}) {
            if (causal && mechanism == Mechanism::Linformer) continue;
            INFO(mechanism_name(mechanism) << " causal " << causal);
            Generator gen(66);
            MultiHeadAttention attention(small_config(mechanism, causal), gen);
            Tensor real = random_tensor({1, 6, 16}, gen, 2.0f);
            Tensor junk = random_tensor({1, 3, 16}, gen, 9.0f);  // large, to make leaks visible
            Tensor mask = Tensor::from_data({1, 9}, {1, 1, 1, 1, 1, 1, 0, 0, 0});
            NoGradGuard no_grad;
            Tensor alone = attention.forward(real);
            Tensor padded = slice(attention.forward(concat({real, junk}, 1), mask), 1, 0, 6);
            REQUIRE(max_abs_diff(alone, padded) <= 1e-5 * max_abs(alone));
        }
    }
}

TEST_CASE("orthogonal random matrices: orthogonal blocks, Gaussian-like row norms",
          "[attention]") {
    Generator gen(67);
    const int64_t d = 8, m = 20;  // two full blocks and 4 rows of a third
    Tensor sqrt_rows = gaussian_orthogonal_matrix(m, d, gen, RowScaling::SqrtD);
    for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < m; ++j) {
            double dot = 0;
            for (int64_t c = 0; c < d; ++c) dot += sqrt_rows.at({i, c}) * sqrt_rows.at({j, c});
            if (i == j) REQUIRE(dot == Approx(d).epsilon(1e-5));
            else if (i / d == j / d) REQUIRE(std::fabs(dot) < 1e-5);  // same block: orthogonal
        }
    // chi(d) lengths: mean squared norm d over many rows.
    Tensor chi_rows = gaussian_orthogonal_matrix(4000, d, gen, RowScaling::Chi);
    double mean_sq = sum(mul(chi_rows, chi_rows)).item() / 4000;
    REQUIRE(mean_sq == Approx(d).epsilon(0.03));

    std::vector<double> a(25), q, r;
    for (double& v : a) v = gen.normal();
    householder_qr(a, 5, q, r);
    for (int64_t i = 0; i < 5; ++i)
        for (int64_t j = 0; j < 5; ++j) {
            double qtq = 0, qr = 0;
            for (int64_t k = 0; k < 5; ++k) qtq += q[k * 5 + i] * q[k * 5 + j], qr += q[i * 5 + k] * r[k * 5 + j];
            REQUIRE(qtq == Approx(i == j ? 1.0 : 0.0).margin(1e-12));
            REQUIRE(qr == Approx(a[i * 5 + j]).margin(1e-12));
            if (i > j) REQUIRE(std::fabs(r[i * 5 + j]) < 1e-12);
        }
}

TEST_CASE("gradient: feature maps", "[attention][gradient]") {
    Generator gen(68);
    Tensor W = gaussian_orthogonal_matrix(6, 4, gen);
    auto positive = [&](const std::vector<Tensor>& t) { return positive_random_features(t[0], W); };
    auto trig = [&](const std::vector<Tensor>& t) { return trig_features(t[0], W); };
    REQUIRE_GRADIENTS(positive, {random_tensor({1, 2, 3, 4}, gen, 0.5f)});
    REQUIRE_GRADIENTS(trig, {random_tensor({1, 2, 3, 4}, gen, 0.5f)});
    // relu has a kink at 0: use an input whose projections all stay clear of it.
    Tensor x;
    for (uint64_t seed = 0;; ++seed) {
        Generator g(1000 + seed);
        x = random_tensor({1, 2, 3, 4}, g);
        Tensor u = matmul(x, W, false, true);
        bool clear = true;
        for (float value : u.to_vector()) clear = clear && std::fabs(value) > 0.1f;
        if (clear) break;
    }
    REQUIRE_GRADIENTS([&](const std::vector<Tensor>& t) { return relu_features(t[0], W); }, {x});
}

TEST_CASE("gradient: the whole attention module, every mechanism", "[attention][gradient]") {
    for (Mechanism mechanism : kAllMechanisms) {
        for (bool causal : {false, true}) {
            if (causal && mechanism == Mechanism::Linformer) continue;
            INFO(mechanism_name(mechanism) << " causal " << causal);
            AttentionConfig config = small_config(mechanism, causal);
            config.dim = 8;
            config.features = 8;
            config.chunk = 2;
            Generator gen(69);
            MultiHeadAttention attention(config, gen);
            Tensor x = random_tensor({1, 5, 8}, gen);
            std::vector<Tensor> inputs{x};
            for (Tensor p : attention.parameters()) {
                // Bigger weights than the 0.02 initialisation, so attention is not uniform
                // (but |q|^2 / sqrt(d) stays moderate, as finite differences need).
                float* w = p.mutable_data();
                for (int64_t i = 0; i < p.numel(); ++i) w[i] = gen.normal() * 0.3f;
                inputs.push_back(p);
            }
            if (mechanism == Mechanism::Relu) continue;  // kinks: covered by the feature-map test
            if (mechanism == Mechanism::Reformer) {
                // Hashing is a step function: a finite difference may cross into another
                // bucket. Zero rotations put every position in bucket 0 whatever q is: the
                // sorted order is then the sequence, chunked (hashing: test_baselines.cpp).
                Tensor rotations = attention.mechanism_tensors().rotations;
                std::fill_n(rotations.mutable_data(), rotations.numel(), 0.0f);
            }
            auto f = [&](const std::vector<Tensor>& t) { return attention.forward(t[0]); };
            REQUIRE_GRADIENTS(f, inputs);
        }
    }
}

TEST_CASE("features are a redrawable buffer; bad configurations are refused", "[attention]") {
    Generator gen(70);
    MultiHeadAttention attention(small_config(Mechanism::Favor, true), gen);
    auto buffers = attention.named_buffers();
    REQUIRE(buffers.size() == 1);
    REQUIRE(buffers[0].first == "features");
    REQUIRE(buffers[0].second.shape() == Shape{32, 8});
    std::vector<float> before = attention.features().to_vector();
    attention.redraw_features(gen);
    REQUIRE(attention.features().to_vector() != before);
    REQUIRE(buffers[0].second.to_vector() == attention.features().to_vector());  // same storage
    REQUIRE(attention.parameter_count() == 16 * 48 + 48 + 16 * 16 + 16);

    AttentionConfig bad = small_config(Mechanism::Favor, true);
    bad.heads = 3;
    REQUIRE_THROWS_WITH(MultiHeadAttention(bad, gen), Catch::Contains("divisible"));
    REQUIRE_THROWS_WITH(parse_mechanism("performer"), Catch::Contains("unknown attention"));
    REQUIRE_THROWS_WITH(attention.forward(Tensor::zeros({2, 3, 15})), Catch::Contains("(2, 3, 15)"));
    REQUIRE_THROWS_WITH(attention.forward(Tensor::zeros({2, 3, 16}), Tensor::ones({2, 4})),
                        Catch::Contains("key_mask"));
}

TEST_CASE("reformer: rotations are a redrawable buffer and keys are the queries; linformer: "
          "E and F are parameters, and a causal linformer is refused", "[attention]") {
    Generator gen(74);
    MultiHeadAttention reformer(small_config(Mechanism::Reformer, true), gen);
    auto buffers = reformer.named_buffers();
    REQUIRE(buffers.size() == 1);
    REQUIRE(buffers[0].first == "rotations");
    REQUIRE(buffers[0].second.shape() == Shape{2, 8, 1});  // (hashes, d, buckets / 2)
    std::vector<float> before = buffers[0].second.to_vector();
    reformer.redraw_features(gen);
    REQUIRE(buffers[0].second.to_vector() != before);
    REQUIRE(buffers[0].second.to_vector() == reformer.mechanism_tensors().rotations.to_vector());
    REQUIRE(reformer.parameter_count() == 3 * (16 * 16 + 16));  // query, value, out: no key.*
    for (auto& [name, p] : reformer.named_parameters()) REQUIRE(name.rfind("key.", 0) != 0);

    MultiHeadAttention linformer(small_config(Mechanism::Linformer, false), gen);
    REQUIRE(linformer.named_buffers().empty());
    int projections = 0;
    for (auto& [name, p] : linformer.named_parameters())
        if (name.rfind("sequence_projection.", 0) == 0) {
            REQUIRE(p.shape() == Shape{8, 32});  // (k, max_length)
            ++projections;
        }
    REQUIRE(projections == 2);
    REQUIRE_THROWS_WITH(MultiHeadAttention(small_config(Mechanism::Linformer, true), gen),
                        Catch::Contains("linformer cannot be causal") &&
                            Catch::Contains("later ones included"));
    AttentionConfig odd = small_config(Mechanism::Reformer, true);
    odd.buckets = 3;
    REQUIRE_THROWS_WITH(MultiHeadAttention(odd, gen), Catch::Contains("even number of buckets"));
    // A sequence longer than linformer's projections is refused by name.
    REQUIRE_THROWS_WITH(linformer.forward(Tensor::zeros({1, 33, 16})), Catch::Contains("33 positions"));
    // A bidirectional layer does not decode recurrently.
    REQUIRE_THROWS_WITH(linformer.start_decoding(), Catch::Contains("causal"));
}

TEST_CASE("favor features stay finite for long vectors: causal attention of large keys",
          "[attention]") {
    // |x^|^2 / 2 far above 87: e^-h alone would underflow to 0 for every feature.
    Generator gen(71);
    Tensor q = random_tensor({1, 1, 6, 8}, gen, 12.0f), k = random_tensor({1, 1, 6, 8}, gen, 12.0f),
           v = random_tensor({1, 1, 6, 8}, gen);
    Tensor W = gaussian_orthogonal_matrix(64, 8, gen);
    Tensor phi_q = favor_features(q, W, true);
    CausalKeyFeatures causal_keys = favor_causal_key_features(k, W);
    for (Tensor out : {linear_attention(phi_q, favor_features(k, W, false), v, false),
                       linear_attention(phi_q, causal_keys.phi, v, true, 64, causal_keys.log_scale)})
        for (float value : out.to_vector()) REQUIRE(std::isfinite(value));
}

namespace {
// FAVOR+'s estimate of attention with the plain features, in double and term by term:
// A_ij = sum_r e^(u_ir - h_i) e^(u_jr - h_j) / m (j <= i when causal), out = A v / A 1.
// No stabiliser and nothing added: what favor_features and linear_attention must give.
std::vector<double> favor_estimate(const Tensor& q, const Tensor& k, const Tensor& v,
                                   const Tensor& W, bool causal) {
    const int64_t L = q.shape()[2], d = q.shape()[3], dv = v.shape()[3], m = W.shape()[0];
    auto features = [&](const Tensor& x) {  // (L, m): e^(w_r . x^ - |x^|^2 / 2)
        std::vector<double> phi(L * m);
        const double scale = std::pow(double(d), -0.25);
        for (int64_t i = 0; i < L; ++i) {
            double h = 0;
            for (int64_t c = 0; c < d; ++c) h += std::pow(scale * x.data()[i * d + c], 2) / 2;
            for (int64_t r = 0; r < m; ++r) {
                double u = 0;
                for (int64_t c = 0; c < d; ++c) u += W.data()[r * d + c] * scale * x.data()[i * d + c];
                phi[i * m + r] = std::exp(u - h);
            }
        }
        return phi;
    };
    std::vector<double> fq = features(q), fk = features(k), out(L * dv, 0.0);
    for (int64_t i = 0; i < L; ++i) {
        double total = 0;
        for (int64_t j = 0; j <= (causal ? i : L - 1); ++j) {
            double a = 0;
            for (int64_t r = 0; r < m; ++r) a += fq[i * m + r] * fk[j * m + r] / double(m);
            total += a;
            for (int64_t c = 0; c < dv; ++c) out[i * dv + c] += a * v.data()[j * dv + c];
        }
        for (int64_t c = 0; c < dv; ++c) out[i * dv + c] /= total;
    }
    return out;
}

double largest_difference(const Tensor& a, const std::vector<double>& b) {
    double largest = 0;
    for (int64_t i = 0; i < a.numel(); ++i)
        largest = std::max(largest, std::abs(double(a.data()[i]) - b[i]));
    return largest;
}
}  // namespace

TEST_CASE("favor: sharp queries get exactly the estimate of their own features; a query "
          "constant of 1e-4 (the old eps) moves their rows", "[attention]") {
    // Keys of norm 12 along e_0..e_7 and queries of norm 12 along e_8..e_15 (d = 16): the
    // queries' largest features sit where every key's are small (here e^-6 to e^-12 of
    // the largest key feature), as when trained queries and keys sharpen. The stabilisers
    // cancel, so the rows must equal the estimate computed without them.
    const int64_t L = 8, d = 16, m = 64;
    Generator gen(73);
    Tensor W = gaussian_orthogonal_matrix(m, d, gen);
    Tensor q = Tensor::zeros({1, 1, L, d}), k = Tensor::zeros({1, 1, L, d});
    for (int64_t i = 0; i < L; ++i) {
        k.mutable_data()[i * d + i] = 12.0f;
        q.mutable_data()[i * d + L + i] = 12.0f;
    }
    Tensor v = random_tensor({1, 1, L, 4}, gen);
    Tensor phi_q = favor_features(q, W, true);
    CausalKeyFeatures causal_keys = favor_causal_key_features(k, W);
    for (bool causal : {false, true}) {
        INFO("causal " << causal);
        const std::vector<double> expected = favor_estimate(q, k, v, W, causal);
        auto attend_with = [&](const Tensor& query_features) {
            return causal ? linear_attention(query_features, causal_keys.phi, v, true, 64,
                                             causal_keys.log_scale)
                          : linear_attention(query_features, favor_features(k, W, false), v, false);
        };
        REQUIRE(largest_difference(attend_with(phi_q), expected) < 1e-4);
        // The constant the features used to carry, 1e-4 after the stabiliser (m^-1/2 1e-4
        // as stored), takes over much of these rows: it is the error, not the features.
        Tensor with_constant = add_scalar(phi_q, 1e-4f / std::sqrt(float(m)));
        REQUIRE(largest_difference(attend_with(with_constant), expected) > 0.05);
    }
}

TEST_CASE("linear attention: a query whose features meet only zeros outputs 0, gradients finite",
          "[attention]") {
    // Causal, and the first two keys have all-zero features (underflowed): queries 0 and
    // 1 divide 0 by 0. They must output exactly 0, and no NaN may reach any gradient.
    Generator gen(72);
    Tensor phi_q = Tensor::rand({1, 1, 5, 4}, gen, 0.1f, 1.0f).requires_grad_();
    std::vector<float> keys = Tensor::rand({1, 1, 5, 4}, gen, 0.1f, 1.0f).to_vector();
    std::fill(keys.begin(), keys.begin() + 8, 0.0f);
    Tensor phi_k = Tensor::from_data({1, 1, 5, 4}, keys).requires_grad_();
    Tensor v = random_tensor({1, 1, 5, 3}, gen).requires_grad_();
    for (bool causal : {true, false}) {
        Tensor out = linear_attention(phi_q, phi_k, v, causal);
        std::vector<float> values = out.to_vector();
        for (int i = 0; i < 15; ++i) {
            INFO("causal " << causal << " element " << i);
            if (causal && i < 6) REQUIRE(values[i] == 0.0f);
            else REQUIRE(values[i] != 0.0f);
        }
        phi_q.zero_grad(), phi_k.zero_grad(), v.zero_grad();
        sum(out).backward();
        for (const Tensor* t : {&phi_q, &phi_k, &v})
            for (float g : t->grad().to_vector()) REQUIRE(std::isfinite(g));
    }
}
