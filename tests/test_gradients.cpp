// test_gradients.cpp — a finite-difference gradient check for every engine op, on
// random shapes with size-1 axes and broadcasting (see gradcheck.h for the method).
#include "gradcheck.h"

using namespace pf;
using namespace pf::testing;

namespace {
// Shapes that broadcast against each other in every way the numpy rule allows.
const std::vector<std::pair<Shape, Shape>> kBroadcastPairs = {
    {{3, 4}, {3, 4}},       {{3, 4}, {4}},       {{3, 1}, {1, 4}},     {{2, 3, 4}, {3, 1}},
    {{1}, {2, 3}},          {{2, 1, 4}, {2, 3, 1}}, {{}, {3, 2}},      {{1, 1}, {1, 1}},
};

void check_binary(Tensor (*op)(const Tensor&, const Tensor&), bool positive_b) {
    Generator gen(11);
    for (auto [shape_a, shape_b] : kBroadcastPairs) {
        INFO("shapes " << shape_str(shape_a) << " and " << shape_str(shape_b));
        Tensor a = random_tensor(shape_a, gen);
        Tensor b = positive_b ? positive_tensor(shape_b, gen) : random_tensor(shape_b, gen);
        REQUIRE_GRADIENTS([op](const std::vector<Tensor>& x) { return op(x[0], x[1]); }, {a, b});
        // and the other way round
        Tensor c = positive_b ? positive_tensor(shape_a, gen) : random_tensor(shape_a, gen);
        Tensor d = random_tensor(shape_b, gen);
        REQUIRE_GRADIENTS([op](const std::vector<Tensor>& x) { return op(x[0], x[1]); }, {d, c});
    }
}

void check_unary(Tensor (*op)(const Tensor&), Tensor (*make)(const Shape&, Generator&)) {
    Generator gen(12);
    for (int dims = 0; dims <= 3; ++dims) {
        Shape shape = random_shape(gen, dims);
        INFO("shape " << shape_str(shape));
        REQUIRE_GRADIENTS([op](const std::vector<Tensor>& x) { return op(x[0]); },
                          {make(shape, gen)});
    }
}

Tensor normal(const Shape& s, Generator& g) { return random_tensor(s, g); }
Tensor positive(const Shape& s, Generator& g) { return positive_tensor(s, g); }
Tensor nonzero(const Shape& s, Generator& g) { return away_from_zero(s, g); }
}  // namespace

TEST_CASE("gradient: add", "[gradient]") { check_binary(add, false); }
TEST_CASE("gradient: sub", "[gradient]") { check_binary(sub, false); }
TEST_CASE("gradient: mul", "[gradient]") { check_binary(mul, false); }
TEST_CASE("gradient: div", "[gradient]") { check_binary(div, true); }

TEST_CASE("gradient: where", "[gradient]") {
    Generator gen(13);
    Tensor condition = Tensor::from_data({3, 1}, {1, 0, 1});  // broadcasts over columns
    Tensor a = random_tensor({3, 4}, gen), b = random_tensor({4}, gen);
    REQUIRE_GRADIENTS([&](const std::vector<Tensor>& x) { return where(condition, x[0], x[1]); },
                      {a, b});
}

TEST_CASE("gradient: masked_fill", "[gradient]") {
    Generator gen(14);
    Tensor mask = Tensor::from_data({1, 3}, {0, 1, 0});
    REQUIRE_GRADIENTS([&](const std::vector<Tensor>& x) { return masked_fill(x[0], mask, -5.0f); },
                      {random_tensor({2, 3}, gen)});
}

TEST_CASE("gradient: neg", "[gradient]") { check_unary(neg, normal); }
TEST_CASE("gradient: exp", "[gradient]") { check_unary(exp, normal); }
TEST_CASE("gradient: log", "[gradient]") { check_unary(log, positive); }
TEST_CASE("gradient: sqrt", "[gradient]") { check_unary(sqrt, positive); }
TEST_CASE("gradient: abs", "[gradient]") { check_unary(abs, nonzero); }
TEST_CASE("gradient: relu", "[gradient]") { check_unary(relu, nonzero); }
TEST_CASE("gradient: gelu", "[gradient]") { check_unary(gelu, normal); }
TEST_CASE("gradient: tanh", "[gradient]") { check_unary(tanh, normal); }
TEST_CASE("gradient: sigmoid", "[gradient]") { check_unary(sigmoid, normal); }
TEST_CASE("gradient: sin", "[gradient]") { check_unary(sin, normal); }
TEST_CASE("gradient: cos", "[gradient]") { check_unary(cos, normal); }
TEST_CASE("gradient: clone", "[gradient]") { check_unary(clone, normal); }

TEST_CASE("gradient: add_scalar and mul_scalar", "[gradient]") {
    Generator gen(15);
    REQUIRE_GRADIENTS([](const std::vector<Tensor>& x) { return add_scalar(x[0], 2.5f); },
                      {random_tensor({2, 3}, gen)});
    REQUIRE_GRADIENTS([](const std::vector<Tensor>& x) { return mul_scalar(x[0], -1.5f); },
                      {random_tensor({2, 3}, gen)});
}

TEST_CASE("gradient: pow", "[gradient]") {
    Generator gen(16);
    for (float p : {2.0f, 3.0f, 0.5f, -1.0f, 1.7f})
        REQUIRE_GRADIENTS([p](const std::vector<Tensor>& x) { return pow(x[0], p); },
                          {positive_tensor({2, 3}, gen)});
}

TEST_CASE("gradient: sum over all and over an axis", "[gradient]") {
    Generator gen(17);
    Tensor x = random_tensor({2, 3, 4}, gen);
    REQUIRE_GRADIENTS([](const std::vector<Tensor>& t) { return sum(t[0]); }, {x});
    for (int64_t axis : {0, 1, 2, -1})
        for (bool keepdim : {false, true})
            REQUIRE_GRADIENTS([=](const std::vector<Tensor>& t) { return sum(t[0], axis, keepdim); },
                              {x});
    REQUIRE_GRADIENTS([](const std::vector<Tensor>& t) { return sum(t[0], 1); },
                      {random_tensor({3, 1, 2}, gen)});
}

TEST_CASE("gradient: mean over all and over an axis", "[gradient]") {
    Generator gen(18);
    Tensor x = random_tensor({3, 4}, gen);
    REQUIRE_GRADIENTS([](const std::vector<Tensor>& t) { return mean(t[0]); }, {x});
    REQUIRE_GRADIENTS([](const std::vector<Tensor>& t) { return mean(t[0], 0, true); }, {x});
    REQUIRE_GRADIENTS([](const std::vector<Tensor>& t) { return mean(t[0], -1); }, {x});
}

TEST_CASE("gradient: max over all and over an axis", "[gradient]") {
    // Distinct values spaced far more than the finite-difference step apart, so the
    // argmax does not change under the perturbation.
    Tensor x = Tensor::from_data({3, 4}, {0.3f, -1.2f, 2.0f, 0.9f, -0.4f, 1.5f, 0.1f, -2.2f,
                                          1.1f, 0.6f, -0.8f, 2.4f});
    REQUIRE_GRADIENTS([](const std::vector<Tensor>& t) { return max(t[0]); }, {x});
    for (int64_t axis : {0, 1})
        for (bool keepdim : {false, true})
            REQUIRE_GRADIENTS([=](const std::vector<Tensor>& t) { return max(t[0], axis, keepdim); },
                              {x});
}

TEST_CASE("gradient: reshape", "[gradient]") {
    Generator gen(19);
    REQUIRE_GRADIENTS([](const std::vector<Tensor>& t) { return reshape(t[0], {3, -1}); },
                      {random_tensor({2, 3, 2}, gen)});
}

TEST_CASE("gradient: permute and transpose", "[gradient]") {
    Generator gen(20);
    Tensor x = random_tensor({2, 3, 4}, gen);
    for (std::vector<int64_t> order : {std::vector<int64_t>{2, 0, 1}, {0, 2, 1}, {1, 0, 2}})
        REQUIRE_GRADIENTS([=](const std::vector<Tensor>& t) { return permute(t[0], order); }, {x});
    REQUIRE_GRADIENTS([](const std::vector<Tensor>& t) { return transpose(t[0], 0, -1); }, {x});
}

TEST_CASE("gradient: slice", "[gradient]") {
    Generator gen(21);
    Tensor x = random_tensor({3, 5, 2}, gen);
    REQUIRE_GRADIENTS([](const std::vector<Tensor>& t) { return slice(t[0], 1, 1, 4); }, {x});
    REQUIRE_GRADIENTS([](const std::vector<Tensor>& t) { return slice(t[0], 0, 2, 3); }, {x});
    REQUIRE_GRADIENTS([](const std::vector<Tensor>& t) { return slice(t[0], -1, 0, 1); }, {x});
}

TEST_CASE("gradient: concat", "[gradient]") {
    Generator gen(22);
    Tensor a = random_tensor({2, 3}, gen), b = random_tensor({2, 1}, gen),
           c = random_tensor({2, 2}, gen);
    REQUIRE_GRADIENTS([](const std::vector<Tensor>& t) { return concat(t, 1); }, {a, b, c});
    REQUIRE_GRADIENTS([](const std::vector<Tensor>& t) { return concat(t, 0); },
                      {random_tensor({1, 3}, gen), random_tensor({2, 3}, gen)});
}

TEST_CASE("gradient: expand and sum_to", "[gradient]") {
    Generator gen(23);
    REQUIRE_GRADIENTS([](const std::vector<Tensor>& t) { return expand(t[0], {2, 3, 4}); },
                      {random_tensor({3, 1}, gen)});
    REQUIRE_GRADIENTS([](const std::vector<Tensor>& t) { return expand(t[0], {2, 3}); },
                      {random_tensor({}, gen)});
    REQUIRE_GRADIENTS([](const std::vector<Tensor>& t) { return sum_to(t[0], {3, 1}); },
                      {random_tensor({2, 3, 4}, gen)});
}

TEST_CASE("gradient: matmul, every transpose combination, 2-D and batched", "[gradient]") {
    Generator gen(24);
    const int64_t M = 3, K = 4, N = 2;
    for (bool ta : {false, true}) {
        for (bool tb : {false, true}) {
            INFO("trans_a " << ta << " trans_b " << tb);
            Shape sa = ta ? Shape{K, M} : Shape{M, K}, sb = tb ? Shape{N, K} : Shape{K, N};
            auto f = [=](const std::vector<Tensor>& t) { return matmul(t[0], t[1], ta, tb); };
            REQUIRE_GRADIENTS(f, {random_tensor(sa, gen), random_tensor(sb, gen)});
            Shape ba = sa, bb = sb;  // batched: (2, ...)
            ba.insert(ba.begin(), 2);
            bb.insert(bb.begin(), 2);
            REQUIRE_GRADIENTS(f, {random_tensor(ba, gen), random_tensor(bb, gen)});
            if (!ta) {
                ba.insert(ba.begin(), 1);  // (1, 2, M, K) @ 2-D b shared by the batch
                REQUIRE_GRADIENTS(f, {random_tensor(ba, gen), random_tensor(sb, gen)});
            }
        }
    }
}

TEST_CASE("gradient: softmax", "[gradient]") {
    Generator gen(25);
    REQUIRE_GRADIENTS([](const std::vector<Tensor>& t) { return softmax(t[0]); },
                      {random_tensor({2, 3, 5}, gen)});
    REQUIRE_GRADIENTS([](const std::vector<Tensor>& t) { return softmax(t[0]); },
                      {random_tensor({4, 1}, gen)});
}

TEST_CASE("gradient: log_softmax", "[gradient]") {
    Generator gen(26);
    REQUIRE_GRADIENTS([](const std::vector<Tensor>& t) { return log_softmax(t[0]); },
                      {random_tensor({3, 6}, gen)});
}

TEST_CASE("gradient: layer_norm with and without affine parameters", "[gradient]") {
    Generator gen(27);
    Tensor x = random_tensor({2, 3, 5}, gen);
    REQUIRE_GRADIENTS([](const std::vector<Tensor>& t) { return layer_norm(t[0], t[1], t[2]); },
                      {x, random_tensor({5}, gen), random_tensor({5}, gen)});
    REQUIRE_GRADIENTS([](const std::vector<Tensor>& t) { return layer_norm(t[0], {}, {}); }, {x});
}

TEST_CASE("gradient: cross_entropy with an ignored row", "[gradient]") {
    Generator gen(28);
    std::vector<int32_t> targets{2, -100, 0, 4};
    REQUIRE_GRADIENTS([&](const std::vector<Tensor>& t) { return cross_entropy(t[0], targets); },
                      {random_tensor({4, 5}, gen)});
}

TEST_CASE("gradient: embedding with repeated ids", "[gradient]") {
    Generator gen(29);
    std::vector<int32_t> ids{1, 3, 1, 0, 1};
    REQUIRE_GRADIENTS([&](const std::vector<Tensor>& t) { return embedding(t[0], ids); },
                      {random_tensor({4, 3}, gen)});
}

TEST_CASE("gradient: dropout (same mask on every evaluation)", "[gradient]") {
    Generator data_gen(30);
    Tensor x = random_tensor({4, 6}, data_gen);
    auto f = [](const std::vector<Tensor>& t) {
        Generator gen(99);  // a fresh generator per call: the same mask each time
        return dropout(t[0], 0.3f, gen);
    };
    REQUIRE_GRADIENTS(f, {x});
}

TEST_CASE("gradient: cumsum", "[gradient]") {
    Generator gen(31);
    Tensor x = random_tensor({2, 4, 3}, gen);
    for (int64_t axis : {0, 1, 2})
        REQUIRE_GRADIENTS([=](const std::vector<Tensor>& t) { return cumsum(t[0], axis); }, {x});
}

TEST_CASE("gradcheck itself catches a wrong backward", "[gradient]") {
    // exp with a backward that forgets the factor y: must be reported.
    auto wrong_exp = [](const std::vector<Tensor>& t) {
        Tensor y;
        {
            NoGradGuard g;
            y = exp(t[0]);
        }
        return record("wrong_exp", y, {t[0]}, [](const Tensor& g) { return Grads{g}; });
    };
    Generator gen(32);
    auto result = gradcheck(wrong_exp, {random_tensor({3, 3}, gen)});
    REQUIRE_FALSE(result.ok);
    REQUIRE(result.worst > 10);
}

TEST_CASE("gradient: softmax with a scale and a causal mask", "[gradient]") {
    Generator gen(33);
    REQUIRE_GRADIENTS([](const std::vector<Tensor>& t) { return softmax(t[0], 0.7f, true); },
                      {random_tensor({2, 4, 4}, gen)});
}

TEST_CASE("gradient: linear, with and without bias", "[gradient]") {
    Generator gen(34);
    REQUIRE_GRADIENTS([](const std::vector<Tensor>& t) { return linear(t[0], t[1], t[2]); },
                      {random_tensor({2, 3, 4}, gen), random_tensor({4, 5}, gen), random_tensor({5}, gen)});
    REQUIRE_GRADIENTS([](const std::vector<Tensor>& t) { return linear(t[0], t[1]); },
                      {random_tensor({4}, gen), random_tensor({4, 2}, gen)});
}

TEST_CASE("gradient: gather with repeated and missing positions, on every axis", "[gradient]") {
    Generator gen(35);
    Tensor x = random_tensor({2, 4, 3}, gen);
    Tensor along_0 = Tensor::from_data({3}, {1, 1, 0});
    Tensor along_1 = Tensor::from_data({2, 5}, {3, 3, 0, 1, 3, 2, 2, 0, 1, 0});
    Tensor along_2 = Tensor::from_data({2, 4, 2}, {2, 2, 0, 1, 1, 1, 0, 0, 2, 0, 1, 2, 0, 0, 2, 2});
    REQUIRE_GRADIENTS([&](const std::vector<Tensor>& t) { return gather(t[0], 0, along_0); }, {x});
    REQUIRE_GRADIENTS([&](const std::vector<Tensor>& t) { return gather(t[0], 1, along_1); }, {x});
    REQUIRE_GRADIENTS([&](const std::vector<Tensor>& t) { return gather(t[0], -1, along_2); }, {x});
}

TEST_CASE("gradient: sorting by argsort then gather (argsort itself has none)", "[gradient]") {
    // Distinct values 0.1 apart, far more than the finite-difference step: the order
    // holds under every perturbation, so d sort(x) / dx is the permutation.
    std::vector<float> values(12);
    for (int i = 0; i < 12; ++i) values[i] = float((i * 5) % 12) * 0.1f;
    Tensor x = Tensor::from_data({3, 4}, values);
    auto sorted = [](const std::vector<Tensor>& t) { return gather(t[0], 1, argsort(t[0], 1)); };
    REQUIRE_GRADIENTS(sorted, {x});
}

TEST_CASE("gradient: shifted_exp, with and without eps", "[gradient]") {
    Generator gen(40);
    for (float eps : {0.0f, 0.25f}) {
        auto f = [eps](const std::vector<Tensor>& x) { return shifted_exp(x[0], x[1], eps); };
        REQUIRE_GRADIENTS(f, {random_tensor({2, 3, 5}, gen), random_tensor({2, 3, 1}, gen)});
        REQUIRE_GRADIENTS(f, {random_tensor({4}, gen), random_tensor({1}, gen)});
    }
}
