// test_autograd.cpp — graph semantics: accumulation, long graphs, no_grad, memory
// release, in-place protection; and tensor creation and access.
#include "gradcheck.h"

using namespace pf;
using namespace pf::testing;

TEST_CASE("tensor creation and element access", "[tensor]") {
    Tensor z = Tensor::zeros({2, 3});
    REQUIRE(z.shape() == Shape{2, 3});
    REQUIRE(z.numel() == 6);
    REQUIRE(z.at({1, 2}) == 0.0f);
    REQUIRE(Tensor::ones({4}).at({3}) == 1.0f);
    REQUIRE(Tensor::full({2, 2}, 7.5f).at({1, 0}) == 7.5f);
    Tensor r = Tensor::arange(5);
    REQUIRE(r.to_vector() == std::vector<float>{0, 1, 2, 3, 4});
    Tensor d = Tensor::from_data({2, 2}, {1, 2, 3, 4});
    REQUIRE(d.at({1, 0}) == 3.0f);
    d.set({1, 0}, -1.0f);
    REQUIRE(d.at({1, 0}) == -1.0f);
    REQUIRE(Tensor::scalar(2.0f).item() == 2.0f);
    REQUIRE(d.size(-1) == 2);
    REQUIRE_THROWS_WITH(d.at({2, 0}), Catch::Contains("out of range"));
    REQUIRE_THROWS_WITH(d.at({0}), Catch::Contains("1 indices"));
    REQUIRE_THROWS_WITH(d.item(), Catch::Contains("4 elements"));
    REQUIRE_THROWS_WITH(Tensor::from_data({3}, {1, 2}), Catch::Contains("(3)"));
    REQUIRE_THROWS_WITH(Tensor().shape(), Catch::Contains("undefined"));
}

TEST_CASE("randn and rand follow their distributions and the seed", "[tensor][random]") {
    Generator gen(1);
    Tensor n = Tensor::randn({100000}, gen);
    double mean = 0, var = 0;
    for (float v : n.to_vector()) mean += v;
    mean /= n.numel();
    for (float v : n.to_vector()) var += (v - mean) * (v - mean);
    var /= n.numel();
    REQUIRE(std::fabs(mean) < 0.02);  // standard error 0.003
    REQUIRE(std::fabs(var - 1.0) < 0.03);
    Tensor u = Tensor::rand({100000}, gen, 2.0f, 3.0f);
    float lo = 10, hi = -10;
    double umean = 0;
    for (float v : u.to_vector()) lo = std::min(lo, v), hi = std::max(hi, v), umean += v;
    REQUIRE(lo >= 2.0f);
    REQUIRE(hi < 3.0f);
    REQUIRE(std::fabs(umean / u.numel() - 2.5) < 0.01);

    Generator a(5), b(5), c(6);
    REQUIRE(Tensor::randn({50}, a).to_vector() == Tensor::randn({50}, b).to_vector());
    REQUIRE(Tensor::randn({50}, a).to_vector() != Tensor::randn({50}, c).to_vector());
}

TEST_CASE("a tensor used twice gets the sum of both gradients (diamond)", "[autograd]") {
    Tensor x = Tensor::from_data({2}, {1.0f, 2.0f}).requires_grad_();
    Tensor a = x * 3.0f, b = x * x;  // x feeds two branches that meet again
    Tensor y = sum(a + b);           // dy/dx = 3 + 2x
    y.backward();
    REQUIRE(x.grad().to_vector() == std::vector<float>{5.0f, 7.0f});

    Tensor w = Tensor::from_data({1}, {3.0f}).requires_grad_();
    Tensor z = sum(w * w * w);  // the same node used as both operands of a mul
    z.backward();
    REQUIRE(w.grad().item() == Approx(27.0f));
}

TEST_CASE("gradients accumulate across backward calls until zero_grad", "[autograd]") {
    Tensor x = Tensor::from_data({1}, {2.0f}).requires_grad_();
    sum(x * 4.0f).backward();
    sum(x * 4.0f).backward();
    REQUIRE(x.grad().item() == 8.0f);
    x.zero_grad();
    REQUIRE_FALSE(x.grad().defined());
    sum(x * 4.0f).backward();
    REQUIRE(x.grad().item() == 4.0f);
}

TEST_CASE("two leaves fed the same gradient do not share its storage", "[autograd]") {
    Tensor a = Tensor::ones({3}).requires_grad_(), b = Tensor::ones({3}).requires_grad_();
    sum(a + b).backward();
    a.grad().mutable_data()[0] = 100.0f;  // e.g. gradient clipping in place
    REQUIRE(b.grad().at({0}) == 1.0f);
}

TEST_CASE("a 100k-op chain backpropagates and is destroyed without recursion", "[autograd]") {
    int64_t nodes_before = Tensor::live_nodes();
    {
        Tensor x = Tensor::from_data({1}, {1.0f}).requires_grad_();
        Tensor y = x;
        for (int i = 0; i < 100000; ++i) y = add_scalar(y, 1e-5f);
        sum(y).backward();
        REQUIRE(x.grad().item() == 1.0f);
    }
    {
        // The same chain, dropped without backward: the destructor must not recurse.
        Tensor x = Tensor::from_data({1}, {1.0f}).requires_grad_();
        Tensor y = x;
        for (int i = 0; i < 100000; ++i) y = mul_scalar(y, 1.0f);
        REQUIRE(Tensor::live_nodes() - nodes_before >= 100000);
    }
    REQUIRE(Tensor::live_nodes() == nodes_before);
}

TEST_CASE("no_grad records nothing", "[autograd]") {
    Tensor x = Tensor::ones({2}).requires_grad_();
    {
        NoGradGuard guard;
        Tensor y = exp(x) * 2.0f;
        REQUIRE_FALSE(y.requires_grad());
        REQUIRE(y.is_leaf());
        REQUIRE_THROWS_WITH(sum(y).backward(), Catch::Contains("does not require grad"));
    }
    REQUIRE(grad_enabled());
    REQUIRE(exp(x).requires_grad());
    Tensor d = exp(x).detach();
    REQUIRE_FALSE(d.requires_grad());
    REQUIRE(d.is_leaf());
}

TEST_CASE("backward releases the graph's nodes and saved buffers", "[autograd]") {
    Generator gen(3);
    Tensor w = Tensor::randn({64, 64}, gen).requires_grad_();
    Tensor x = Tensor::randn({32, 64}, gen);
    int64_t nodes_before = Tensor::live_nodes(), bytes_before = Storage::live_bytes();
    Tensor loss;
    {
        Tensor h = x;
        for (int i = 0; i < 10; ++i) h = tanh(matmul(h, w));
        loss = mean(h * h);
    }
    // The graph is alive: 23 nodes, and the 10 (32, 64) activations that matmul and
    // tanh saved (tanh's output is the next matmul's saved input: one buffer).
    REQUIRE(Tensor::live_nodes() - nodes_before >= 20);
    REQUIRE(Storage::live_bytes() - bytes_before >= 10 * 32 * 64 * 4);
    loss.backward();
    // Only the loss (and its leaf-like handle) and w's new gradient remain.
    REQUIRE(Tensor::live_nodes() - nodes_before <= 2);
    REQUIRE(Storage::live_bytes() - bytes_before <= 64 * 64 * 4 + 64);
    REQUIRE_THROWS_WITH(loss.backward(), Catch::Contains("second time"));
}

TEST_CASE("results that no op saved are freed while the graph lives", "[autograd]") {
    Tensor x = Tensor::ones({1000}).requires_grad_();
    int64_t bytes_before = Storage::live_bytes();
    Tensor y = sum(add_scalar(mul_scalar(add_scalar(x, 1.0f), 2.0f), 3.0f));
    REQUIRE(y.requires_grad());
    // add_scalar and mul_scalar save nothing: their (1000) outputs are already gone.
    REQUIRE(Storage::live_bytes() - bytes_before < 1000 * 4);
    y.backward();
    REQUIRE(x.grad().at({7}) == 2.0f);
}

TEST_CASE("writing in place to a tensor saved for backward is refused", "[autograd]") {
    Tensor w = Tensor::from_data({2}, {1.0f, 2.0f}).requires_grad_();
    Tensor y = sum(exp(w) * w);  // mul saved w
    w.mutable_data()[0] = 5.0f;  // e.g. an optimizer step before backward
    REQUIRE_THROWS_WITH(y.backward(), Catch::Contains("modified in place"));

    // Through a reshape, which shares the storage, too.
    Tensor v = Tensor::from_data({2, 2}, {1, 2, 3, 4}).requires_grad_();
    Tensor r = reshape(v, {4});
    Tensor z = sum(log(r));  // log saved r's storage
    v.set({0, 0}, 9.0f);
    REQUIRE_THROWS_WITH(z.backward(), Catch::Contains("modified in place"));
}

TEST_CASE("requires_grad_ only on leaves; backward only on scalars", "[autograd]") {
    Tensor x = Tensor::ones({2}).requires_grad_();
    Tensor y = x * 2.0f;
    REQUIRE_THROWS_WITH(y.requires_grad_(false), Catch::Contains("only leaves"));
    REQUIRE_THROWS_WITH(y.backward(), Catch::Contains("one-element"));
    y.backward(Tensor::from_data({2}, {1.0f, -1.0f}));
    REQUIRE(x.grad().to_vector() == std::vector<float>{2.0f, -2.0f});
}

namespace {
// tanh(a W) * b + a: three inputs, one used twice (the fourth is undefined).
Tensor layer_of(const std::vector<Tensor>& in) {
    Tensor h = tanh(matmul(in[0], in[1]));
    return add(mul(h, in[2]), in[0]);
}
}  // namespace

TEST_CASE("recompute: the same values and gradients, with only the inputs kept", "[autograd]") {
    Generator gen(31);
    Tensor a = Tensor::randn({64, 32}, gen), w = Tensor::randn({32, 32}, gen);
    Tensor b = Tensor::randn({64, 32}, gen), weights = Tensor::randn({64, 32}, gen);
    auto run = [&](bool recomputed) {
        Tensor ra = a.detach(), rw = w.detach();  // the same data, fresh leaves
        std::vector<Tensor> in{clone(ra.requires_grad_()), rw.requires_grad_(), b, Tensor()};
        int64_t before = Storage::live_bytes();
        Tensor y = recomputed ? recompute(layer_of, in) : layer_of(in);
        int64_t kept = Storage::live_bytes() - before;
        y.backward(weights);
        return std::tuple{y.to_vector(), ra.grad().to_vector(), rw.grad().to_vector(), kept};
    };
    auto [y1, ga1, gw1, kept1] = run(false);
    auto [y2, ga2, gw2, kept2] = run(true);
    REQUIRE(y1 == y2);  // bit for bit: the same ops on the same numbers
    REQUIRE(ga1 == ga2);
    REQUIRE(gw1 == gw2);
    // Kept until backward: plain, the output and tanh's (64, 32) output, which mul saved
    // too; recomputed, the output alone (the inputs are held by the caller anyway).
    const int64_t activation = 64 * 32 * 4;
    REQUIRE(kept1 >= 2 * activation);
    REQUIRE(kept2 <= activation + 1024);
}

TEST_CASE("recompute: an input returned as it is, nested recomputes, no input needing a "
          "gradient", "[autograd]") {
    Generator gen(32);
    Tensor x = Tensor::randn({3, 4}, gen).requires_grad_();
    Tensor y = recompute([](const std::vector<Tensor>& in) { return in[0]; }, {x});
    sum(mul_scalar(y, 2.0f)).backward();
    REQUIRE(x.grad().to_vector() == std::vector<float>(12, 2.0f));

    // A recompute inside a recompute: the inner one runs again in the outer's backward.
    x.zero_grad();
    auto inner = [](const std::vector<Tensor>& in) { return exp(in[0]); };
    auto outer = [&](const std::vector<Tensor>& in) { return mul(recompute(inner, in), in[0]); };
    Tensor z = sum(recompute(outer, {x}));
    z.backward();
    for (int64_t i = 0; i < x.numel(); ++i) {  // d/dx x e^x = (1 + x) e^x
        const float v = x.data()[i];
        REQUIRE(x.grad().data()[i] == Approx((1 + v) * std::exp(v)).epsilon(1e-5));
    }

    Tensor constant = Tensor::randn({3}, gen);
    REQUIRE_FALSE(recompute(inner, {constant}).requires_grad());
}
