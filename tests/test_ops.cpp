// test_ops.cpp — forward values of the ops against plain loops, and bad input.
#include "gradcheck.h"

#include "engine/kernels.h"

#include <cmath>

using namespace pf;
using namespace pf::testing;

TEST_CASE("broadcasting arithmetic matches explicit loops", "[ops]") {
    Generator gen(40);
    Tensor a = random_tensor({2, 1, 4}, gen), b = random_tensor({3, 1}, gen);
    Tensor y = a * b + a - b / (abs(b) + 1.0f);
    REQUIRE(y.shape() == Shape{2, 3, 4});
    for (int64_t i = 0; i < 2; ++i)
        for (int64_t j = 0; j < 3; ++j)
            for (int64_t k = 0; k < 4; ++k) {
                float av = a.at({i, 0, k}), bv = b.at({j, 0});
                REQUIRE(y.at({i, j, k}) == Approx(av * bv + av - bv / (std::fabs(bv) + 1)));
            }
}

TEST_CASE("unary functions match the C library", "[ops]") {
    Tensor x = Tensor::from_data({5}, {-2.0f, -0.5f, 0.0f, 0.7f, 3.0f});
    for (int64_t i = 0; i < 5; ++i) {
        float v = x.at({i});
        REQUIRE(exp(x).at({i}) == Approx(std::exp(v)));
        REQUIRE(tanh(x).at({i}) == Approx(std::tanh(v)));
        REQUIRE(sigmoid(x).at({i}) == Approx(1 / (1 + std::exp(-v))));
        REQUIRE(relu(x).at({i}) == (v > 0 ? v : 0));
        REQUIRE(sin(x).at({i}) == Approx(std::sin(v)));
        REQUIRE(cos(x).at({i}) == Approx(std::cos(v)));
        REQUIRE(abs(x).at({i}) == std::fabs(v));
        REQUIRE((-x).at({i}) == -v);
        // GELU's tanh form is within 1e-3 of the exact x Phi(x).
        REQUIRE(gelu(x).at({i}) == Approx(0.5 * v * (1 + std::erf(v / std::sqrt(2.0)))).margin(1e-3));
    }
    Tensor p = Tensor::from_data({3}, {0.25f, 1.0f, 4.0f});
    REQUIRE(sqrt(p).to_vector() == std::vector<float>{0.5f, 1.0f, 2.0f});
    REQUIRE(log(p).at({2}) == Approx(std::log(4.0f)));
    REQUIRE(pow(p, 1.5f).at({2}) == Approx(8.0f));
}

TEST_CASE("fast_exp agrees with std::exp within 2 ulp", "[ops]") {
    double worst = 0;
    for (float x = -87.0f; x < 88.0f; x += 0.00137f) {
        double reference = std::exp(double(x));
        worst = std::max(worst, std::fabs(kernels::fast_exp(x) - reference) / reference);
    }
    REQUIRE(worst < 2 * 5.97e-8);  // 2 ulp of a float
    REQUIRE(kernels::fast_exp(0.0f) == 1.0f);
    REQUIRE(kernels::fast_exp(-100.0f) == 0.0f);
    REQUIRE(kernels::fast_exp(-1e9f) == 0.0f);
    REQUIRE(std::isinf(kernels::fast_exp(100.0f)));
    REQUIRE(std::isnan(kernels::fast_exp(std::nanf(""))));
    // and through the op, which uses it
    REQUIRE(exp(Tensor::scalar(1.0f)).item() == Approx(std::exp(1.0)).epsilon(2e-7));
}

TEST_CASE("reductions match loops", "[ops]") {
    Generator gen(41);
    Tensor x = random_tensor({3, 4, 5}, gen);
    Tensor s1 = sum(x, 1), m2 = max(x, 2, true), mean0 = mean(x, 0);
    REQUIRE(s1.shape() == Shape{3, 5});
    REQUIRE(m2.shape() == Shape{3, 4, 1});
    double total = 0;
    float overall = -1e30f;
    for (int64_t i = 0; i < 3; ++i)
        for (int64_t k = 0; k < 5; ++k) {
            double s = 0;
            for (int64_t j = 0; j < 4; ++j) s += x.at({i, j, k});
            REQUIRE(s1.at({i, k}) == Approx(s));
        }
    for (int64_t i = 0; i < 3; ++i)
        for (int64_t j = 0; j < 4; ++j) {
            float m = -1e30f;
            for (int64_t k = 0; k < 5; ++k) m = std::max(m, x.at({i, j, k}));
            REQUIRE(m2.at({i, j, 0}) == m);
        }
    for (float v : x.to_vector()) total += v, overall = std::max(overall, v);
    REQUIRE(sum(x).item() == Approx(total));
    REQUIRE(mean(x).item() == Approx(total / 60));
    REQUIRE(max(x).item() == overall);
    REQUIRE(mean0.at({1, 2}) == Approx((x.at({0, 1, 2}) + x.at({1, 1, 2}) + x.at({2, 1, 2})) / 3));
}

TEST_CASE("sum of many elements is accurate (double accumulation)", "[ops]") {
    Tensor x = Tensor::full({3000000}, 0.1f);
    REQUIRE(sum(x).item() == Approx(3000000 * double(0.1f)).epsilon(1e-6));
}

TEST_CASE("sum over a long axis, in blocks of it, equals the plain double sum", "[ops]") {
    // (8192, 300): one row of outputs, so the axis is cut into blocks whose partial sums
    // are added in order; (3, 5001, 7): three rows, a ragged last block.
    Generator gen(56);
    for (Shape shape : {Shape{8192, 300}, Shape{3, 5001, 7}}) {
        Tensor x = Tensor::randn(shape, gen);
        Tensor y = sum(x, shape.size() == 2 ? 0 : 1);
        const int64_t outer = shape.size() == 2 ? 1 : shape[0], n = shape[shape.size() - 2],
                      inner = shape.back();
        const float* in = x.data();
        for (int64_t o = 0; o < outer; ++o)
            for (int64_t i = 0; i < inner; ++i) {
                double s = 0;
                for (int64_t k = 0; k < n; ++k) s += in[(o * n + k) * inner + i];
                REQUIRE(y.data()[o * inner + i] == Approx(s).margin(1e-4));
            }
    }
}

TEST_CASE("shape ops move elements where they belong", "[ops]") {
    Tensor x = Tensor::arange(24);
    Tensor r = reshape(x, {2, 3, -1});
    REQUIRE(r.shape() == Shape{2, 3, 4});
    REQUIRE(r.at({1, 2, 3}) == 23.0f);
    Tensor p = permute(r, {2, 0, 1});  // p[k, i, j] = r[i, j, k]
    REQUIRE(p.shape() == Shape{4, 2, 3});
    for (int64_t i = 0; i < 2; ++i)
        for (int64_t j = 0; j < 3; ++j)
            for (int64_t k = 0; k < 4; ++k) REQUIRE(p.at({k, i, j}) == r.at({i, j, k}));
    Tensor t = transpose(r, 0, 1);
    REQUIRE(t.at({2, 1, 0}) == r.at({1, 2, 0}));
    Tensor s = slice(r, 2, 1, 3);
    REQUIRE(s.shape() == Shape{2, 3, 2});
    REQUIRE(s.at({1, 0, 0}) == r.at({1, 0, 1}));
    Tensor c = concat({s, slice(r, 2, 0, 1)}, 2);
    REQUIRE(c.shape() == Shape{2, 3, 3});
    REQUIRE(c.at({0, 1, 2}) == r.at({0, 1, 0}));
    Tensor e = expand(Tensor::from_data({2, 1}, {5, 6}), {3, 2, 4});
    REQUIRE(e.at({2, 1, 3}) == 6.0f);
    REQUIRE(sum_to(e, {2, 1}).to_vector() == std::vector<float>{60.0f, 72.0f});
}

TEST_CASE("softmax, log_softmax and cross_entropy agree with their definitions", "[ops]") {
    Generator gen(42);
    Tensor x = random_tensor({4, 7}, gen, 3.0f);
    Tensor s = softmax(x), ls = log_softmax(x);
    for (int64_t i = 0; i < 4; ++i) {
        double total = 0;
        for (int64_t j = 0; j < 7; ++j) total += std::exp(double(x.at({i, j})));
        for (int64_t j = 0; j < 7; ++j) {
            REQUIRE(s.at({i, j}) == Approx(std::exp(x.at({i, j})) / total));
            REQUIRE(ls.at({i, j}) == Approx(x.at({i, j}) - std::log(total)));
        }
    }
    std::vector<int32_t> targets{3, -1, 0, 6};
    double expected = -(ls.at({0, 3}) + ls.at({2, 0}) + ls.at({3, 6})) / 3;
    REQUIRE(cross_entropy(x, targets, -1).item() == Approx(expected));
    // Scaled and causal: row i of each matrix is softmax(scale * x[i, :i+1]), then zeros.
    Tensor sc = softmax(reshape(x, {1, 4, 7}), 0.5f, true);
    for (int64_t i = 0; i < 4; ++i) {
        double total = 0;
        for (int64_t j = 0; j <= i; ++j) total += std::exp(0.5 * x.at({i, j}));
        for (int64_t j = 0; j < 7; ++j)
            REQUIRE(sc.at({0, i, j}) == Approx(j <= i ? std::exp(0.5 * x.at({i, j})) / total : 0.0));
    }
    // Large logits do not overflow.
    Tensor big = Tensor::from_data({1, 2}, {1000.0f, 0.0f});
    REQUIRE(softmax(big).at({0, 0}) == 1.0f);
    REQUIRE(cross_entropy(big, {1}).item() == Approx(1000.0f));
    REQUIRE(cross_entropy(big, {-100}).item() == 0.0f);  // every row ignored
}

TEST_CASE("layer_norm normalises each row", "[ops]") {
    Generator gen(43);
    Tensor x = random_tensor({3, 16}, gen, 5.0f) + 2.0f;
    Tensor w = Tensor::full({16}, 2.0f), b = Tensor::full({16}, 1.0f);
    Tensor y = layer_norm(x, w, b);
    for (int64_t i = 0; i < 3; ++i) {
        double m = 0, v = 0;
        for (int64_t j = 0; j < 16; ++j) m += (y.at({i, j}) - 1.0) / 2.0;
        for (int64_t j = 0; j < 16; ++j) v += std::pow((y.at({i, j}) - 1.0) / 2.0 - m / 16, 2);
        REQUIRE(m / 16 == Approx(0.0).margin(1e-5));
        REQUIRE(v / 16 == Approx(1.0).epsilon(1e-3));
    }
}

TEST_CASE("embedding, dropout, cumsum, where, masked_fill", "[ops]") {
    Tensor W = Tensor::from_data({3, 2}, {0, 1, 10, 11, 20, 21});
    REQUIRE(embedding(W, {2, 0, 2}).to_vector() == std::vector<float>{20, 21, 0, 1, 20, 21});

    Generator gen(44);
    Tensor ones = Tensor::ones({100000});
    Tensor d = dropout(ones, 0.25f, gen);
    int64_t zeros = 0;
    for (float v : d.to_vector()) {
        REQUIRE((v == 0.0f || v == Approx(1.0f / 0.75f)));
        zeros += v == 0.0f;
    }
    REQUIRE(std::fabs(zeros / 100000.0 - 0.25) < 0.01);
    REQUIRE(mean(d).item() == Approx(1.0).epsilon(0.02));  // unbiased in expectation

    Tensor c = cumsum(Tensor::from_data({2, 3}, {1, 2, 3, 4, 5, 6}), 1);
    REQUIRE(c.to_vector() == std::vector<float>{1, 3, 6, 4, 9, 15});
    Tensor c0 = cumsum(Tensor::from_data({2, 3}, {1, 2, 3, 4, 5, 6}), 0);
    REQUIRE(c0.to_vector() == std::vector<float>{1, 2, 3, 5, 7, 9});

    Tensor cond = Tensor::from_data({3}, {1, 0, 1});
    REQUIRE(where(cond, Tensor::full({3}, 7), Tensor::zeros({2, 3})).to_vector() ==
            std::vector<float>{7, 0, 7, 7, 0, 7});
    Tensor causal = Tensor::from_data({2, 2}, {0, 1, 0, 0});  // 1 above the diagonal
    REQUIRE(masked_fill(Tensor::ones({2, 2}), causal, -1e9f).at({0, 1}) == -1e9f);
}

TEST_CASE("fused linear equals matmul plus a broadcast bias, values and gradients", "[ops]") {
    Generator gen(45);
    Tensor x = random_tensor({3, 70, 40}, gen).requires_grad_();  // big enough to be split
    Tensor W = random_tensor({40, 90}, gen).requires_grad_(), b = random_tensor({90}, gen).requires_grad_();
    Tensor weights = random_tensor({3, 70, 90}, gen);
    Tensor fused = linear(x, W, b);
    sum(mul(fused, weights)).backward();
    std::vector<Tensor> fused_grads{x.grad(), W.grad(), b.grad()};
    x.zero_grad(), W.zero_grad(), b.zero_grad();
    Tensor composed = add(matmul(x, W), b);
    sum(mul(composed, weights)).backward();
    REQUIRE(max_abs_diff(fused, composed) < 1e-4);
    REQUIRE(max_abs_diff(fused_grads[0], x.grad()) < 1e-4);
    REQUIRE(max_abs_diff(fused_grads[1], W.grad()) < 1e-3);
    REQUIRE(max_abs_diff(fused_grads[2], b.grad()) < 1e-3);
    REQUIRE_THROWS_WITH(linear(x, Tensor::zeros({41, 2})), Catch::Contains("linear") && Catch::Contains("(41, 2)"));
    REQUIRE_THROWS_WITH(linear(x, W, Tensor::zeros({3})), Catch::Contains("bias"));
}

TEST_CASE("bad input throws an error naming the op and the shapes", "[ops][errors]") {
    Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4, 3});
    REQUIRE_THROWS_WITH(add(a, b), Catch::Contains("add") && Catch::Contains("(2, 3)") &&
                                       Catch::Contains("(4, 3)"));
    REQUIRE_THROWS_WITH(matmul(a, b), Catch::Contains("matmul") && Catch::Contains("(2, 3)"));
    REQUIRE_THROWS_WITH(matmul(Tensor::zeros({2, 2, 3}), Tensor::zeros({3, 3, 1})),
                        Catch::Contains("batch"));
    REQUIRE_THROWS_WITH(matmul(Tensor::zeros({3}), a), Catch::Contains("at least 2 axes"));
    REQUIRE_THROWS_WITH(sum(a, 2), Catch::Contains("sum") && Catch::Contains("axis 2"));
    REQUIRE_THROWS_WITH(max(a, -3), Catch::Contains("max"));
    REQUIRE_THROWS_WITH(softmax(Tensor::scalar(1)), Catch::Contains("softmax"));
    REQUIRE_THROWS_WITH(reshape(a, {4, 2}), Catch::Contains("reshape") && Catch::Contains("(4, 2)"));
    REQUIRE_THROWS_WITH(permute(a, {0, 0}), Catch::Contains("repeated"));
    REQUIRE_THROWS_WITH(slice(a, 1, 2, 5), Catch::Contains("slice") && Catch::Contains("(2, 3)"));
    REQUIRE_THROWS_WITH(concat({a, Tensor::zeros({2, 3, 1})}, 0), Catch::Contains("concat"));
    REQUIRE_THROWS_WITH(expand(a, {2, 4}), Catch::Contains("expand"));
    REQUIRE_THROWS_WITH(embedding(a, {0, 2}), Catch::Contains("embedding") &&
                                                  Catch::Contains("id 2"));
    REQUIRE_THROWS_WITH(cross_entropy(a, {0, 3}), Catch::Contains("target 3"));
    REQUIRE_THROWS_WITH(cross_entropy(a, {0}), Catch::Contains("1 targets"));
    REQUIRE_THROWS_WITH(layer_norm(a, Tensor::ones({2}), {}), Catch::Contains("layer_norm"));
    Generator gen(1);
    REQUIRE_THROWS_WITH(dropout(a, 1.0f, gen), Catch::Contains("dropout"));
    REQUIRE_THROWS_WITH(cumsum(a, 5), Catch::Contains("cumsum"));
    REQUIRE_THROWS_WITH(where(Tensor::zeros({5}), a, a), Catch::Contains("where"));
}

TEST_CASE("argsort: a stable ascending order along any axis, NaN last, as std::stable_sort",
          "[ops]") {
    // Many ties (values from 5 levels), so that stability is tested, on every axis.
    Generator gen(41);
    Shape shape{3, 7, 4};
    std::vector<float> values(3 * 7 * 4);
    for (float& v : values) v = float(gen.below(5)) - 2;
    values[5] = std::nanf("");
    Tensor x = Tensor::from_data(shape, values);
    for (int64_t axis : {0, 1, 2}) {
        INFO("axis " << axis);
        Tensor order = argsort(x, axis);
        REQUIRE(order.shape() == shape);
        REQUIRE_FALSE(order.requires_grad());
        kernels::AxisView v = kernels::around_axis(shape, axis);
        for (int64_t o = 0; o < v.outer; ++o)
            for (int64_t i = 0; i < v.inner; ++i) {
                auto at = [&](int64_t k) { return (o * v.n + k) * v.inner + i; };
                std::vector<std::pair<float, int64_t>> line;  // (value, position); NaN as +inf
                for (int64_t k = 0; k < v.n; ++k)
                    line.push_back({std::isnan(values[at(k)]) ? INFINITY : values[at(k)], k});
                std::stable_sort(line.begin(), line.end(),
                                 [](auto a, auto b) { return a.first < b.first; });
                for (int64_t k = 0; k < v.n; ++k) REQUIRE(order.data()[at(k)] == float(line[k].second));
            }
    }
    REQUIRE(argsort(Tensor::from_data({4}, {2, 1, 2, 1})).to_vector() == std::vector<float>{1, 3, 0, 2});
    REQUIRE_THROWS_WITH(argsort(x, 3), Catch::Contains("argsort"));
}

TEST_CASE("gather picks whole slices along an axis; its backward adds them back", "[ops]") {
    Generator gen(42);
    Tensor x = random_tensor({2, 5, 3}, gen).requires_grad_();
    // Row 0 repeats position 4 and skips 1 and 3; row 1 is a permutation.
    Tensor index = Tensor::from_data({2, 4}, {4, 0, 4, 2, 3, 1, 0, 2});
    Tensor y = gather(x, 1, index);
    REQUIRE(y.shape() == Shape{2, 4, 3});
    for (int64_t a = 0; a < 2; ++a)
        for (int64_t k = 0; k < 4; ++k)
            for (int64_t i = 0; i < 3; ++i)
                REQUIRE(y.at({a, k, i}) == x.at({a, int64_t(index.at({a, k})), i}));
    Tensor g = random_tensor({2, 4, 3}, gen);
    y.backward(g);
    for (int64_t a = 0; a < 2; ++a)
        for (int64_t j = 0; j < 5; ++j)
            for (int64_t i = 0; i < 3; ++i) {
                double expected = 0;
                for (int64_t k = 0; k < 4; ++k)
                    if (index.at({a, k}) == float(j)) expected += g.at({a, k, i});
                REQUIRE(x.grad().at({a, j, i}) == Approx(expected).margin(1e-6));
            }
    // Along the first axis (no leading axes: a 1-D index) and the last (elementwise).
    Tensor rows = gather(x.detach(), 0, Tensor::from_data({3}, {1, 1, 0}));
    REQUIRE(rows.shape() == Shape{3, 5, 3});
    REQUIRE(max_abs_diff(slice(rows, 0, 2, 3), slice(x.detach(), 0, 0, 1)) == 0);
    Tensor last = gather(x.detach(), 2, Tensor::from_data({2, 5, 1}, {2, 1, 0, 2, 2, 0, 0, 1, 1, 2}));
    REQUIRE(last.shape() == Shape{2, 5, 1});
    REQUIRE(last.at({1, 4, 0}) == x.at({1, 4, 2}));
    // Sorting: gather along argsort.
    Tensor line = Tensor::from_data({5}, {0.5f, -1, 3, 0.5f, -2});
    REQUIRE(gather(line, 0, argsort(line)).to_vector() == std::vector<float>{-2, -1, 0.5f, 0.5f, 3});

    REQUIRE_THROWS_WITH(gather(x, 1, Tensor::from_data({2, 1}, {0, 5})), Catch::Contains("[0, 5)"));
    REQUIRE_THROWS_WITH(gather(x, 1, Tensor::from_data({2, 1}, {0, 1.5f})), Catch::Contains("1.5"));
    REQUIRE_THROWS_WITH(gather(x, 1, Tensor::from_data({2, 1}, {-1, 0})), Catch::Contains("gather"));
    REQUIRE_THROWS_WITH(gather(x, 1, Tensor::zeros({3, 2})), Catch::Contains("does not fit"));
    REQUIRE_THROWS_WITH(gather(x, 1, Tensor::zeros({2})), Catch::Contains("does not fit"));
}
