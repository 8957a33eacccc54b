// test_baselines.cpp — Linformer and Reformer (nn/baselines.h) against naive references
// in values and gradients: Linformer against loops over the projections, LSH attention
// against dense L x L attention with its mask written out; the hashing; finite-difference
// gradients; recurrent decoding of LSH attention.
#include "gradcheck.h"

#include "nn/baselines.h"

#include <cmath>

using namespace pf;
using namespace pf::nn;
using namespace pf::testing;

namespace {

// Per (b, h): E k and F v by loops in double over the first L columns, softmax of
// q (E k)^T / sqrt(d) in double, times F v. key_mask: padded keys and values count as 0.
std::vector<double> linformer_by_loops(const Tensor& q, const Tensor& k, const Tensor& v,
                                       const Tensor& E, const Tensor& F, const Tensor& key_mask) {
    const int64_t B = q.shape()[0], H = q.shape()[1], L = q.shape()[2], d = q.shape()[3];
    const int64_t rows = E.shape()[0];
    std::vector<double> out(B * H * L * d, 0.0);
    for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < H; ++h) {
            std::vector<double> Ek(rows * d, 0.0), Fv(rows * d, 0.0);
            for (int64_t r = 0; r < rows; ++r)
                for (int64_t j = 0; j < L; ++j) {
                    if (key_mask.defined() && key_mask.at({b, j}) == 0) continue;
                    for (int64_t i = 0; i < d; ++i) {
                        Ek[r * d + i] += double(E.at({r, j})) * k.at({b, h, j, i});
                        Fv[r * d + i] += double(F.at({r, j})) * v.at({b, h, j, i});
                    }
                }
            for (int64_t l = 0; l < L; ++l) {
                std::vector<double> score(rows);
                for (int64_t r = 0; r < rows; ++r) {
                    for (int64_t i = 0; i < d; ++i) score[r] += q.at({b, h, l, i}) * Ek[r * d + i];
                    score[r] /= std::sqrt(double(d));
                }
                double top = *std::max_element(score.begin(), score.end()), total = 0;
                for (double& s : score) total += s = std::exp(s - top);
                for (int64_t r = 0; r < rows; ++r)
                    for (int64_t i = 0; i < d; ++i)
                        out[((b * H + h) * L + l) * d + i] += score[r] / total * Fv[r * d + i];
            }
        }
    return out;
}

// The smallest gap, over every position and round, between the largest and the second
// largest of [x R, -x R]: how far q is from changing a bucket.
double smallest_bucket_margin(const Tensor& q, const Tensor& rotations) {
    const int64_t hashes = rotations.shape()[0], d = rotations.shape()[1], half = rotations.shape()[2];
    const int64_t rows = q.numel() / d;
    double smallest = INFINITY;
    for (int64_t row = 0; row < rows; ++row)
        for (int64_t r = 0; r < hashes; ++r) {
            std::vector<double> signed_projections;
            for (int64_t j = 0; j < half; ++j) {
                double u = 0;
                for (int64_t i = 0; i < d; ++i) u += double(q.data()[row * d + i]) * rotations.at({r, i, j});
                signed_projections.push_back(u);
                signed_projections.push_back(-u);
            }
            std::sort(signed_projections.rbegin(), signed_projections.rend());
            smallest = std::min(smallest, signed_projections[0] - signed_projections[1]);
        }
    return smallest;
}

// The most positions any bucket of any round holds.
int64_t largest_bucket(const Tensor& buckets, int64_t count) {
    const int64_t L = buckets.shape().back();
    int64_t largest = 0;
    for (int64_t line = 0; line < buckets.numel() / L; ++line)
        for (int64_t b = 0; b < count; ++b)
            largest = std::max<int64_t>(largest, std::count(buckets.data() + line * L,
                                                            buckets.data() + (line + 1) * L, float(b)));
    return largest;
}

}  // namespace

TEST_CASE("linformer equals its projections by loops; padding counts as zero", "[baselines]") {
    Generator gen(120);
    const int64_t B = 2, H = 2, L = 7, d = 4, k = 3;
    Tensor q = random_tensor({B, H, L, d}, gen), keys = random_tensor({B, H, L, d}, gen),
           v = random_tensor({B, H, L, d}, gen);
    // Projections longer than the sequence: the first L columns serve.
    Tensor E = random_tensor({k, 10}, gen, 0.5f), F = random_tensor({k, 10}, gen, 0.5f);
    Tensor mask = Tensor::from_data({B, L}, {1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1});
    for (bool padded : {false, true}) {
        INFO("padded " << padded);
        Tensor key_mask = padded ? mask : Tensor();
        Tensor out = linformer_attention(q, keys, v, E, F, key_mask);
        std::vector<double> expected = linformer_by_loops(q, keys, v, E, F, key_mask);
        REQUIRE(out.shape() == q.shape());
        for (int64_t i = 0; i < out.numel(); ++i)
            REQUIRE(out.data()[i] == Approx(expected[i]).margin(1e-5));
    }
    REQUIRE_THROWS_WITH(linformer_attention(q, keys, v, slice(E, 1, 0, 5), slice(F, 1, 0, 5)),
                        Catch::Contains("do not cover a sequence of 7"));
}

TEST_CASE("gradient: linformer attention, with padding", "[baselines][gradient]") {
    Generator gen(121);
    Tensor mask = Tensor::from_data({1, 5}, {1, 1, 1, 0, 1});
    auto f = [&](const std::vector<Tensor>& t) {
        return linformer_attention(t[0], t[1], t[2], t[3], t[4], mask);
    };
    REQUIRE_GRADIENTS(f, {random_tensor({1, 2, 5, 3}, gen), random_tensor({1, 2, 5, 3}, gen),
                          random_tensor({1, 2, 5, 3}, gen), random_tensor({2, 6}, gen, 0.5f),
                          random_tensor({2, 6}, gen, 0.5f)});
}

TEST_CASE("lsh_buckets: the argmax of [x R, -x R] for every round; padding after the real "
          "buckets", "[baselines]") {
    Generator gen(122);
    const int64_t B = 2, H = 3, L = 9, d = 5, hashes = 3, buckets = 6;
    Tensor q = random_tensor({B, H, L, d}, gen), R = random_rotations(hashes, d, buckets, gen);
    REQUIRE(R.shape() == Shape{hashes, d, buckets / 2});
    Tensor mask = Tensor::ones({B, L});
    mask.set({1, 8}, 0), mask.set({1, 2}, 0);
    Tensor got = lsh_buckets(q, R, mask);
    REQUIRE(got.shape() == Shape{hashes, B, H, L});
    for (int64_t r = 0; r < hashes; ++r)
        for (int64_t b = 0; b < B; ++b)
            for (int64_t h = 0; h < H; ++h)
                for (int64_t l = 0; l < L; ++l) {
                    int64_t best = 0;
                    double top = -INFINITY;
                    for (int64_t j = 0; j < buckets; ++j) {
                        double u = 0;
                        for (int64_t i = 0; i < d; ++i)
                            u += double(q.at({b, h, l, i})) * R.at({r, i, j % (buckets / 2)});
                        if (j >= buckets / 2) u = -u;
                        if (u > top) top = u, best = j;
                    }
                    if (mask.at({b, l}) == 0) best = buckets;
                    REQUIRE(got.at({r, b, h, l}) == float(best));
                }
    // The bucket of a vector does not depend on its length (keys are normalised queries).
    REQUIRE(same_bits(lsh_buckets(mul_scalar(q, 3.0f), R), lsh_buckets(q, R)));
}

TEST_CASE("LSH attention equals dense masked attention over the L x L matrix, values and "
          "gradients", "[baselines]") {
    struct Case { int64_t B, H, L, d, hashes, buckets, chunk; bool causal, padded; };
    for (Case c : {Case{2, 2, 23, 8, 1, 2, 4, false, false},   // several chunks a bucket
                   Case{2, 2, 23, 8, 1, 2, 4, true, false},
                   Case{1, 3, 40, 6, 3, 4, 5, false, false},  // several rounds
                   Case{1, 3, 40, 6, 3, 4, 5, true, false},
                   Case{2, 1, 17, 4, 2, 8, 3, true, false},   // many small buckets
                   Case{1, 2, 9, 4, 2, 2, 1, true, false},    // chunks of 1
                   Case{1, 2, 9, 4, 2, 2, 1, false, false},
                   Case{2, 2, 19, 8, 2, 2, 4, false, true},   // padding
                   Case{2, 2, 19, 8, 2, 2, 4, true, true}}) {
        INFO("B " << c.B << " H " << c.H << " L " << c.L << " d " << c.d << " hashes " << c.hashes
                  << " buckets " << c.buckets << " chunk " << c.chunk << " causal " << c.causal
                  << " padded " << c.padded);
        Generator gen(123 + c.L);
        Tensor q = random_tensor({c.B, c.H, c.L, c.d}, gen, 1.5f).requires_grad_();
        Tensor v = random_tensor({c.B, c.H, c.L, c.d}, gen).requires_grad_();
        Tensor R = random_rotations(c.hashes, c.d, c.buckets, gen);
        std::vector<float> real(c.B * c.L, 1.0f);
        if (c.padded)
            for (int64_t b = 0; b < c.B; ++b)
                for (int64_t j = c.L - 3 - b; j < c.L; ++j) real[b * c.L + j] = 0;
        Tensor key_mask = c.padded ? Tensor::from_data({c.B, c.L}, real) : Tensor();
        if (c.chunk > 1) REQUIRE(largest_bucket(lsh_buckets(q, R), c.buckets) > 2 * c.chunk);
        // Weights of the outputs: 0 on padding positions, whose outputs differ.
        Tensor weights = mul(random_tensor(q.shape(), gen),
                             reshape(Tensor::from_data({c.B, c.L}, real), {c.B, 1, c.L, 1}));
        Tensor fast = lsh_attention(q, v, R, c.chunk, c.causal, key_mask);
        sum(mul(fast, weights)).backward();
        Tensor fast_dq = q.grad(), fast_dv = v.grad();
        q.zero_grad(), v.zero_grad();
        Tensor slow = lsh_attention_reference(q, v, R, c.chunk, c.causal, key_mask);
        sum(mul(slow, weights)).backward();
        REQUIRE(max_abs_diff(mul(fast, weights), mul(slow, weights)) < 1e-5 * (1 + max_abs(slow)));
        REQUIRE(max_abs_diff(fast_dq, q.grad()) < 1e-5 * (1 + max_abs(fast_dq)));
        REQUIRE(max_abs_diff(fast_dv, v.grad()) < 1e-5 * (1 + max_abs(fast_dv)));
    }
}

TEST_CASE("causal LSH attention: later positions hashed into the first bucket, which would "
          "move the paper's equal chunks, change no earlier output", "[baselines][causality]") {
    const int64_t L = 24, d = 4, m = 4, t = 12;
    Generator gen(128);
    Tensor R = random_rotations(1, d, 4, gen);
    Tensor q = random_tensor({1, 1, L, d}, gen), v = random_tensor({1, 1, L, d}, gen);
    // Positions t.. along R's first column: bucket 0, before every other bucket.
    std::vector<float> later = q.to_vector();
    for (int64_t j = t; j < L; ++j)
        for (int64_t i = 0; i < d; ++i) later[j * d + i] = 5 * R.at({0, i, 0});
    Tensor moved = Tensor::from_data(q.shape(), later);
    NoGradGuard no_grad;
    // The paper's chunks: the sorted order cut every m slots. There, some earlier
    // position's chunk changes, and with it which keys it sees.
    auto equal_chunks = [&](const Tensor& x) {
        Tensor bucket = lsh_buckets(x, R), order = argsort(bucket, -1);
        std::vector<int64_t> chunk(L);
        for (int64_t k = 0; k < L; ++k) chunk[int64_t(order.data()[k])] = k / m;
        return chunk;
    };
    std::vector<int64_t> before = equal_chunks(q), after = equal_chunks(moved);
    REQUIRE(lsh_buckets(moved, R).at({0, 0, 0, L - 1}) == 0.0f);
    REQUIRE_FALSE(std::equal(before.begin(), before.begin() + t, after.begin()));
    // Here, every bucket starts its own chunks: outputs before t keep their bits.
    Tensor base = lsh_attention(q, v, R, m, /*causal=*/true);
    Tensor out = lsh_attention(moved, v, R, m, /*causal=*/true);
    REQUIRE(same_bits(slice(out, 2, 0, t), slice(base, 2, 0, t)));
}

TEST_CASE("causal LSH attention: a position first in its bucket in every round outputs its "
          "own value", "[baselines]") {
    // Its only key is its own (at kSelfScore, the one score left in its row).
    Generator gen(124);
    const int64_t H = 2, L = 12;
    Tensor q = random_tensor({1, H, L, 4}, gen), v = random_tensor({1, H, L, 4}, gen);
    Tensor R = random_rotations(2, 4, 8, gen);
    NoGradGuard no_grad;
    Tensor out = lsh_attention(q, v, R, 2, /*causal=*/true);
    Tensor buckets = lsh_buckets(q, R);  // (2, 1, H, L)
    int64_t firsts = 0;
    for (int64_t h = 0; h < H; ++h)
        for (int64_t l = 0; l < L; ++l) {
            bool first = true;
            for (int64_t r = 0; r < 2; ++r)
                for (int64_t j = 0; j < l; ++j)
                    first = first && buckets.at({r, 0, h, j}) != buckets.at({r, 0, h, l});
            if (!first) continue;
            ++firsts;
            for (int64_t i = 0; i < 4; ++i) REQUIRE(out.at({0, h, l, i}) == Approx(v.at({0, h, l, i})));
        }
    REQUIRE(firsts > H);  // position 0 of each head, and more
}

TEST_CASE("gradient: LSH attention, finite differences", "[baselines][gradient]") {
    // The buckets are constants: choose inputs whose largest rotated value leads the
    // second by far more than the finite-difference step can move it.
    for (bool causal : {false, true}) {
        INFO("causal " << causal);
        Tensor q, R;
        for (uint64_t seed = 0;; ++seed) {
            Generator gen(1250 + seed);
            q = random_tensor({1, 2, 7, 4}, gen);
            R = random_rotations(2, 4, 4, gen);
            if (smallest_bucket_margin(q, R) > 0.15) break;
        }
        Generator gen(126);
        auto f = [&](const std::vector<Tensor>& t) { return lsh_attention(t[0], t[1], R, 2, causal); };
        REQUIRE_GRADIENTS(f, {q, random_tensor({1, 2, 7, 4}, gen)});
    }
}

TEST_CASE("decode_lsh, position by position, equals causal LSH attention of the sequence",
          "[baselines]") {
    Generator gen(127);
    const int64_t B = 2, H = 2, L = 21, d = 4, chunk = 3;
    Tensor q = random_tensor({B, H, L, d}, gen, 2.0f), v = random_tensor({B, H, L, d}, gen);
    Tensor R = random_rotations(3, d, 2, gen);  // buckets of ~10: 3 or 4 chunks each
    NoGradGuard no_grad;
    Tensor full = lsh_attention(q, v, R, chunk, /*causal=*/true);
    DecodeState state;
    for (int64_t t = 0; t < L; ++t) {
        INFO("position " << t);
        auto at = [t](const Tensor& x) { return slice(x, 2, t, t + 1); };
        Tensor out = decode_lsh(at(q), at(v), R, chunk, state);
        REQUIRE(max_abs_diff(out, at(full)) <= 1e-5 * (1 + max_abs(at(full))));
    }
}
