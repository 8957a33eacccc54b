// test_nn.cpp — the nn/ layer: finite-difference gradients of every layer w.r.t. its
// inputs and parameters, parameter naming, dropout, AdamW against hand-computed
// steps, the learning-rate schedule, gradient clipping, checkpoints (round trip,
// atomic writes, every kind of corrupt file), module restore errors, and a tiny
// MLP regression trained end to end.
#include "gradcheck.h"

#include "engine/files.h"
#include "nn/checkpoint.h"
#include "nn/layers.h"
#include "nn/optim.h"

#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>

#include <cfloat>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

using namespace pf;
using namespace pf::nn;
using namespace pf::testing;
namespace fs = std::filesystem;

namespace {

// A small nested model: names "norm.*", "mlp.up.*", "mlp.down.*", "head.weight",
// and a buffer "features" (as attention's random features will be).
class TinyBlock : public Module {
public:
    TinyBlock(int64_t d, int64_t hidden, int64_t out, Generator& gen)
        : norm_(register_module("norm", std::make_unique<LayerNorm>(d))),
          mlp_(register_module("mlp", std::make_unique<MLP>(d, hidden, gen))),
          head_(register_module("head", std::make_unique<Linear>(d, out, gen, false))),
          dropout_(register_module("dropout", std::make_unique<Dropout>(0.5f, gen))) {
        features_ = register_buffer("features", Tensor::randn({3, d}, gen));
    }
    // x (..., d) -> (..., out)
    Tensor forward(const Tensor& x) const {
        return head_.forward(add(x, mlp_.forward(norm_.forward(dropout_.forward(x)))));
    }
    const Dropout& dropout() const { return dropout_; }
    const Tensor& features() const { return features_; }

private:
    LayerNorm& norm_;
    MLP& mlp_;
    Linear& head_;
    Dropout& dropout_;
    Tensor features_;
};

// Overwrites a tensor with normal values (e.g. a bias that starts at zero), in place.
void randomize(Tensor t, Generator& gen, float scale = 0.5f) {
    Tensor values = Tensor::randn(t.shape(), gen, 0.0f, scale);
    std::copy_n(values.data(), values.numel(), t.mutable_data());
}

// A fresh directory under the system's temporary directory, removed at scope exit.
class ScratchDir {
public:
    ScratchDir() {
        static int counter = 0;
        path_ = fs::temp_directory_path() /
                fmt::format("pf_test_nn_{}_{}", ::getpid(), counter++);
        fs::remove_all(path_);
        fs::create_directories(path_);
    }
    ~ScratchDir() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;
    std::string file(const std::string& name) const { return (path_ / name).string(); }
    // Names in the directory that look like write_file's temporary files.
    std::vector<std::string> temp_files() const {
        std::vector<std::string> found;
        for (const auto& entry : fs::directory_iterator(path_))
            if (entry.path().filename().string().find(".tmp.") != std::string::npos)
                found.push_back(entry.path().filename().string());
        return found;
    }

private:
    fs::path path_;
};

std::string read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
}

void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), std::streamsize(bytes.size()));
}

template <typename T>
void patch(std::string& bytes, size_t offset, T value) {
    std::memcpy(bytes.data() + offset, &value, sizeof(T));
}

// Recomputes the trailing CRC-32, to build corrupt files that pass the checksum.
std::string with_valid_checksum(std::string bytes) {
    uint32_t crc = uint32_t(
        crc32_z(0L, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size() - 4));
    patch(bytes, bytes.size() - 4, crc);
    return bytes;
}

// The message of the pf::Error that loading `path` throws ("" if it loads).
std::string load_error(const std::string& path) {
    try {
        load_checkpoint(path);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

// ---- layers ---------------------------------------------------------------------------

TEST_CASE("Linear: shapes, initialisation, values and gradients", "[nn]") {
    Generator gen(1);
    Linear linear(4, 3, gen);
    REQUIRE(linear.weight().shape() == Shape{4, 3});
    REQUIRE(linear.bias().to_vector() == std::vector<float>{0, 0, 0});
    for (float w : linear.weight().to_vector()) REQUIRE(std::fabs(w) <= 0.5f);  // 1/sqrt(4)

    randomize(linear.bias(), gen);
    Tensor x = random_tensor({2, 5, 4}, gen);
    Tensor y = linear.forward(x);
    REQUIRE(y.shape() == Shape{2, 5, 3});
    // y[1, 2, j] = sum_i x[1, 2, i] W[i, j] + b[j]
    for (int64_t j = 0; j < 3; ++j) {
        double expected = linear.bias().at({j});
        for (int64_t i = 0; i < 4; ++i) expected += x.at({1, 2, i}) * linear.weight().at({i, j});
        REQUIRE(y.at({1, 2, j}) == Approx(expected).margin(1e-5));
    }
    REQUIRE(linear.forward(random_tensor({4}, gen)).shape() == Shape{3});
    REQUIRE_THROWS_WITH(linear.forward(random_tensor({2, 5}, gen)),
                        Catch::Contains("Linear(4, 3)") && Catch::Contains("(2, 5)"));

    auto f = [&](const std::vector<Tensor>& t) { return linear.forward(t[0]); };
    REQUIRE_GRADIENTS(f, {x, linear.weight(), linear.bias()});
    REQUIRE_GRADIENTS(f, {random_tensor({4}, gen), linear.weight(), linear.bias()});

    Linear no_bias(3, 2, gen, false);
    REQUIRE_FALSE(no_bias.bias().defined());
    REQUIRE(no_bias.named_parameters().size() == 1);
    REQUIRE_GRADIENTS([&](const std::vector<Tensor>& t) { return no_bias.forward(t[0]); },
                      {random_tensor({2, 3}, gen), no_bias.weight()});
}

TEST_CASE("LayerNorm: normalised rows at init, gradients with trained-looking parameters",
          "[nn]") {
    Generator gen(2);
    LayerNorm norm(5);
    REQUIRE(norm.weight().to_vector() == std::vector<float>(5, 1.0f));
    REQUIRE(norm.bias().to_vector() == std::vector<float>(5, 0.0f));
    Tensor x = random_tensor({2, 3, 5}, gen, 3.0f);
    Tensor y = norm.forward(x);
    for (int64_t b = 0; b < 2; ++b) {
        for (int64_t l = 0; l < 3; ++l) {
            double mean = 0, square = 0;
            for (int64_t j = 0; j < 5; ++j) {
                double value = y.at({b, l, j});
                mean += value;
                square += value * value;
            }
            REQUIRE(mean / 5 == Approx(0).margin(1e-5));
            REQUIRE(square / 5 == Approx(1).epsilon(1e-3));
        }
    }
    REQUIRE_THROWS_WITH(norm.forward(random_tensor({2, 4}, gen)), Catch::Contains("LayerNorm(5)"));

    randomize(norm.weight(), gen);
    randomize(norm.bias(), gen);
    REQUIRE_GRADIENTS([&](const std::vector<Tensor>& t) { return norm.forward(t[0]); },
                      {x, norm.weight(), norm.bias()});
}

TEST_CASE("Embedding: rows by id in the ids' shape, gradients with repeated ids", "[nn]") {
    Generator gen(3);
    Embedding table(6, 4, gen);
    REQUIRE(table.weight().shape() == Shape{6, 4});
    std::vector<int32_t> ids{5, 0, 2, 2, 5, 1};  // a (2, 3) batch
    Tensor h = table.forward(ids, {2, 3});
    REQUIRE(h.shape() == Shape{2, 3, 4});
    for (int64_t j = 0; j < 4; ++j) {
        REQUIRE(h.at({0, 0, j}) == table.weight().at({5, j}));
        REQUIRE(h.at({1, 2, j}) == table.weight().at({1, j}));
    }
    REQUIRE_GRADIENTS([&](const std::vector<Tensor>&) { return table.forward(ids, {2, 3}); },
                      {table.weight()});
    REQUIRE_THROWS_WITH(table.forward(ids, {4, 2}), Catch::Contains("6 ids for shape (4, 2)"));
    REQUIRE_THROWS_WITH(table.forward({0, 6}, {2}), Catch::Contains("out of range"));

    // init N(0, 0.02^2): the sample std of 6000 draws is within 5% of 0.02
    Embedding big(1000, 6, gen);
    double square = 0;
    for (float w : big.weight().to_vector()) square += double(w) * w;
    REQUIRE(std::sqrt(square / 6000) == Approx(0.02).epsilon(0.05));
}

TEST_CASE("MLP: gradients w.r.t. input and all four parameters", "[nn]") {
    Generator gen(4);
    MLP mlp(3, 6, gen);
    randomize(mlp.up().bias(), gen);
    randomize(mlp.down().bias(), gen);
    Tensor x = random_tensor({2, 2, 3}, gen);
    REQUIRE(mlp.forward(x).shape() == Shape{2, 2, 3});
    REQUIRE_GRADIENTS([&](const std::vector<Tensor>& t) { return mlp.forward(t[0]); },
                      {x, mlp.up().weight(), mlp.up().bias(), mlp.down().weight(),
                       mlp.down().bias()});
}

TEST_CASE("a nested module names and counts its parameters depth first", "[nn]") {
    Generator gen(5);
    TinyBlock block(4, 8, 2, gen);
    std::vector<std::string> names;
    for (auto& [name, tensor] : block.named_parameters()) names.push_back(name);
    REQUIRE(names == std::vector<std::string>{"norm.weight", "norm.bias", "mlp.up.weight",
                                              "mlp.up.bias", "mlp.down.weight", "mlp.down.bias",
                                              "head.weight"});
    // 4 + 4 (norm) + 4*8 + 8 (up) + 8*4 + 4 (down) + 4*2 (head, no bias)
    REQUIRE(block.parameter_count() == 92);
    REQUIRE(block.named_buffers().size() == 1);
    REQUIRE(block.named_buffers()[0].first == "features");
    for (const Tensor& p : block.parameters()) REQUIRE(p.requires_grad());

    // eval() reaches the nested Dropout; train() turns it back on.
    REQUIRE(block.dropout().training());
    block.eval();
    REQUIRE_FALSE(block.dropout().training());
    Tensor x = random_tensor({3, 4}, gen);
    REQUIRE(same_bits(block.forward(x), block.forward(x)));  // deterministic in eval
    block.train();
    REQUIRE(block.dropout().training());
}

TEST_CASE("Dropout: identity in eval mode and at p = 0, unbiased masks in training", "[nn]") {
    Generator gen(6);
    Tensor x = Tensor::ones({100000});
    Dropout dropout(0.3f, gen);
    dropout.eval();
    REQUIRE(dropout.forward(x).storage() == x.storage());  // the input itself
    dropout.train();
    Dropout no_dropout(0.0f, gen);
    REQUIRE(no_dropout.forward(x).storage() == x.storage());

    Tensor y = dropout.forward(x);
    int64_t zeros = 0;
    double total = 0;
    for (float v : y.to_vector()) {
        if (v == 0) ++zeros;
        else REQUIRE(v == Approx(1 / 0.7f));
        total += v;
    }
    // Binomial(1e5, 0.3): standard error of the fraction 0.0015, of the mean 0.002.
    REQUIRE(double(zeros) / 1e5 == Approx(0.3).margin(0.01));
    REQUIRE(total / 1e5 == Approx(1.0).margin(0.015));
    REQUIRE_FALSE(same_bits(y, dropout.forward(x)));  // a new mask per call

    // The gradient uses the same mask as the forward.
    Tensor w = Tensor::ones({1000}).requires_grad_();
    Tensor out = dropout.forward(w);
    sum(out).backward();
    REQUIRE(same_bits(w.grad(), out.detach()));

    REQUIRE_THROWS_WITH(Dropout(1.0f, gen), Catch::Contains("not in [0, 1)"));
}

// ---- AdamW ----------------------------------------------------------------------------

namespace {
// AdamW written out in double precision, independently of nn/optim.cpp:
//   p = p (1 - lr wd)  [if decay];  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//   p = p - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
std::vector<double> adamw_by_formula(std::vector<double> p,
                                     const std::vector<std::vector<double>>& grads, bool decay) {
    const double lr = 0.1, b1 = 0.9, b2 = 0.95, eps = 1e-8, wd = 0.1;
    std::vector<double> m(p.size(), 0.0), v(p.size(), 0.0);
    for (size_t step = 1; step <= grads.size(); ++step) {
        for (size_t i = 0; i < p.size(); ++i) {
            double g = grads[step - 1][i];
            if (decay) p[i] *= 1 - lr * wd;
            m[i] = b1 * m[i] + (1 - b1) * g;
            v[i] = b2 * v[i] + (1 - b2) * g * g;
            double m_hat = m[i] / (1 - std::pow(b1, double(step)));
            double v_hat = v[i] / (1 - std::pow(b2, double(step)));
            p[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);
        }
    }
    return p;
}
}  // namespace

TEST_CASE("AdamW: two steps match the formula, decay only on matrices", "[nn]") {
    Tensor matrix = Tensor::from_data({1, 2}, {1.0f, -2.0f}).requires_grad_();  // decayed
    Tensor bias = Tensor::from_data({2}, {0.5f, 0.25f}).requires_grad_();       // not decayed
    Tensor unused = Tensor::ones({2, 2}).requires_grad_();                      // no gradient
    AdamW optimizer({{"matrix", matrix}, {"bias", bias}, {"unused", unused}}, 0.1f, 0.9f, 0.95f,
                    1e-8f, 0.1f);

    matrix.set_grad(Tensor::from_data({1, 2}, {0.5f, -0.1f}));
    bias.set_grad(Tensor::from_data({2}, {0.2f, -0.4f}));
    optimizer.step();
    // Step 1 by hand: m^ = g and v^ = g^2, so the update is lr g / |g| = 0.1 sign(g).
    //   matrix: [1 * (1 - 0.1 * 0.1) - 0.1, -2 * 0.99 + 0.1] = [0.89, -1.88]
    //   bias:   [0.5 - 0.1, 0.25 + 0.1] = [0.4, 0.35]  (no decay)
    REQUIRE(matrix.at({0, 0}) == Approx(0.89).epsilon(1e-6));
    REQUIRE(matrix.at({0, 1}) == Approx(-1.88).epsilon(1e-6));
    REQUIRE(bias.at({0}) == Approx(0.4).epsilon(1e-6));
    REQUIRE(bias.at({1}) == Approx(0.35).epsilon(1e-6));

    matrix.set_grad(Tensor::from_data({1, 2}, {-0.3f, 0.2f}));
    bias.set_grad(Tensor::from_data({2}, {0.1f, 0.1f}));
    optimizer.step();
    // Step 2, e.g. matrix[0]: m = 0.9 * 0.05 + 0.1 * (-0.3) = 0.015,
    //   v = 0.95 * 0.0125 + 0.05 * 0.09 = 0.016375, m^ = 0.015 / 0.19, v^ = 0.016375 / 0.0975,
    //   p = 0.89 * 0.99 - 0.1 * m^ / sqrt(v^) = 0.8618359
    std::vector<double> matrix_expected =
        adamw_by_formula({1.0, -2.0}, {{0.5, -0.1}, {-0.3, 0.2}}, true);
    std::vector<double> bias_expected =
        adamw_by_formula({0.5, 0.25}, {{0.2, -0.4}, {0.1, 0.1}}, false);
    REQUIRE(matrix_expected[0] == Approx(0.8618359).epsilon(1e-6));
    for (int64_t i = 0; i < 2; ++i) {
        REQUIRE(matrix.at({0, i}) == Approx(matrix_expected[size_t(i)]).epsilon(1e-6));
        REQUIRE(bias.at({i}) == Approx(bias_expected[size_t(i)]).epsilon(1e-6));
    }
    REQUIRE(unused.to_vector() == std::vector<float>(4, 1.0f));  // skipped: no decay either
    REQUIRE(optimizer.step_count() == 2);

    // The state holds the moments: m = 0.9 * 0.1 g1 + 0.1 g2 for matrix[1]: -0.009 + 0.02
    NamedTensors state = optimizer.state();
    REQUIRE(state.size() == 7);  // m and v of 3 parameters, and step
    REQUIRE(state[0].first == "m.matrix");
    REQUIRE(state[0].second.at({0, 1}) == Approx(0.011).epsilon(1e-5));
    REQUIRE(state.back().first == "step");
    REQUIRE(state.back().second.item() == 2.0f);

    optimizer.zero_grad();
    REQUIRE_FALSE(matrix.grad().defined());
    REQUIRE_THROWS_WITH(optimizer.set_lr(-1.0f), Catch::Contains("learning rate"));
    REQUIRE_THROWS_WITH(AdamW({{"a", matrix}, {"a", bias}}, 0.1f), Catch::Contains("'a'"));
}

TEST_CASE("AdamW: state export and import resumes exactly; bad states are rejected", "[nn]") {
    Generator gen(7);
    Tensor w1 = Tensor::randn({3, 2}, gen).requires_grad_();
    Tensor b1 = Tensor::randn({2}, gen).requires_grad_();
    Tensor w2 = clone(w1).detach().requires_grad_(), b2 = clone(b1).detach().requires_grad_();
    AdamW first({{"w", w1}, {"b", b1}}, 0.01f), second({{"w", w2}, {"b", b2}}, 0.01f);
    std::vector<Tensor> grads_w, grads_b;
    for (int i = 0; i < 4; ++i)
        grads_w.push_back(Tensor::randn({3, 2}, gen)), grads_b.push_back(Tensor::randn({2}, gen));

    for (int i = 0; i < 3; ++i) {
        w1.set_grad(grads_w[size_t(i)]), b1.set_grad(grads_b[size_t(i)]);
        first.step();
    }
    // Resume: the second optimizer gets the first's parameters and state.
    std::copy_n(w1.data(), 6, w2.mutable_data());
    std::copy_n(b1.data(), 2, b2.mutable_data());
    second.load_state(first.state());
    REQUIRE(second.step_count() == 3);
    w1.set_grad(grads_w[3]), b1.set_grad(grads_b[3]);
    w2.set_grad(grads_w[3]), b2.set_grad(grads_b[3]);
    first.step();
    second.step();
    REQUIRE(same_bits(w1, w2));
    REQUIRE(same_bits(b1, b2));

    NamedTensors state = first.state();
    auto without = [&](const std::string& name) {
        NamedTensors out;
        for (auto& entry : state)
            if (entry.first != name) out.push_back(entry);
        return out;
    };
    REQUIRE_THROWS_WITH(second.load_state(without("v.w")), Catch::Contains("missing entry 'v.w'"));
    REQUIRE_THROWS_WITH(second.load_state(without("step")),
                        Catch::Contains("missing entry 'step'"));
    NamedTensors wrong_shape = without("m.b");
    wrong_shape.emplace_back("m.b", Tensor::zeros({3}));
    REQUIRE_THROWS_WITH(second.load_state(wrong_shape),
                        Catch::Contains("'m.b' has shape (3), expected (2)"));
    NamedTensors extra = state;
    extra.emplace_back("m.gone", Tensor::zeros({2}));
    REQUIRE_THROWS_WITH(second.load_state(extra), Catch::Contains("unexpected entry 'm.gone'"));
    REQUIRE(second.step_count() == 4);  // unchanged by the failed loads

    // Through a checkpoint, as the trainer resumes: prefix on the way in, cut on the way out.
    Checkpoint ckpt;
    for (auto& [name, tensor] : first.state()) ckpt.add_tensor("optim." + name, tensor);
    ckpt.add_tensor("model.w", w1);
    AdamW third({{"w", w2}, {"b", b2}}, 0.01f);
    third.load_state(ckpt.with_prefix("optim."));
    REQUIRE(third.step_count() == 4);
    require_same_bits(third.state()[0].second, first.state()[0].second);
}

TEST_CASE("AdamW and clip_grad_norm: a tied tensor listed twice counts once", "[nn]") {
    Tensor shared = Tensor::from_data({1, 2}, {1.0f, 1.0f}).requires_grad_();
    Tensor alone = Tensor::from_data({1, 2}, {1.0f, 1.0f}).requires_grad_();
    AdamW tied({{"embedding.weight", shared}, {"head.weight", shared}}, 0.1f);
    AdamW single({{"weight", alone}}, 0.1f);
    REQUIRE(tied.state().size() == 3);  // m and v under the first name, and step
    shared.set_grad(Tensor::from_data({1, 2}, {3.0f, 4.0f}));
    alone.set_grad(Tensor::from_data({1, 2}, {3.0f, 4.0f}));
    REQUIRE(clip_grad_norm({shared, shared}, 1e6f) == 5.0f);
    tied.step();
    single.step();
    REQUIRE(same_bits(shared, alone));
}

// ---- schedule and clipping ------------------------------------------------------------

TEST_CASE("lr_at: linear warm-up, cosine decay, floor at the end", "[nn]") {
    const float max_lr = 1e-3f;
    auto lr = [&](int64_t step) { return lr_at(step, 1000, max_lr, 100); };
    REQUIRE(lr(0) == 0.0f);
    REQUIRE(lr(50) == Approx(5e-4));   // half-way through the warm-up
    REQUIRE(lr(100) == Approx(1e-3));  // end of warm-up: the maximum
    // Half-way through the decay cos(pi / 2) = 0: the mean of max and min = 1e-4.
    REQUIRE(lr(550) == Approx(5.5e-4));
    REQUIRE(lr(999) == Approx(1e-4).epsilon(1e-3));
    REQUIRE(lr(1000) == Approx(1e-4));  // the end: min_lr_ratio * max_lr
    REQUIRE(lr(5000) == Approx(1e-4));
    for (int64_t step = 100; step < 1000; ++step) REQUIRE(lr(step + 1) <= lr(step));
    REQUIRE(lr_at(0, 10, 1.0f, 0) == 1.0f);             // no warm-up
    REQUIRE(lr_at(10, 10, 1.0f, 0, 0.0f) == 0.0f);      // decay to zero
    REQUIRE_THROWS_WITH(lr_at(-1, 10, 1.0f, 0), Catch::Contains("negative"));
    REQUIRE_THROWS_WITH(lr_at(0, 10, 1.0f, 0, 2.0f), Catch::Contains("min_lr_ratio"));
}

TEST_CASE("clip_grad_norm: global norm, scaled in place above the limit only", "[nn]") {
    Tensor a = Tensor::zeros({2}).requires_grad_(), b = Tensor::zeros({1, 1}).requires_grad_();
    Tensor no_grad = Tensor::zeros({3}).requires_grad_();
    auto set_grads = [&] {
        a.set_grad(Tensor::from_data({2}, {3.0f, 4.0f}));
        b.set_grad(Tensor::from_data({1, 1}, {12.0f}));
    };
    set_grads();  // norm sqrt(9 + 16 + 144) = 13
    REQUIRE(clip_grad_norm({a, b, no_grad}, 20.0f) == 13.0f);
    REQUIRE(a.grad().to_vector() == std::vector<float>{3.0f, 4.0f});  // untouched
    REQUIRE(b.grad().item() == 12.0f);

    REQUIRE(clip_grad_norm({a, b, no_grad}, 6.5f) == 13.0f);  // the norm before clipping
    REQUIRE(a.grad().at({0}) == Approx(1.5f));
    REQUIRE(a.grad().at({1}) == Approx(2.0f));
    REQUIRE(b.grad().item() == Approx(6.0f));
    REQUIRE(clip_grad_norm({a, b}, 100.0f) == Approx(6.5f));  // now at the limit
    REQUIRE_FALSE(no_grad.grad().defined());

    a.set_grad(Tensor::from_data({2}, {std::numeric_limits<float>::infinity(), 1.0f}));
    REQUIRE(std::isinf(clip_grad_norm({a, b}, 1.0f)));
    REQUIRE(a.grad().at({1}) == 1.0f);  // left alone: the caller skips the step
    REQUIRE_THROWS_WITH(clip_grad_norm({a}, 0.0f), Catch::Contains("max_norm"));
}

// ---- checkpoints ----------------------------------------------------------------------

namespace {
Checkpoint sample_checkpoint() {
    Generator gen(8);
    Checkpoint ckpt;
    ckpt.config = {{"task", "text"}, {"layers", "4"}, {"empty", ""}, {"note", "naïve ✓ \n\t"}};
    ckpt.step = 1234567890123;
    ckpt.generators["data"] = {42, 1000};
    ckpt.generators["init"] = {std::numeric_limits<uint64_t>::max(), (uint64_t(1) << 63) + 5};
    ckpt.add_tensor("model.weight", Tensor::randn({3, 4}, gen));
    ckpt.add_tensor("model.scalar", Tensor::scalar(-2.5f));
    ckpt.add_tensor("model.empty", Tensor::zeros({0, 3}));
    float denormal = std::numeric_limits<float>::denorm_min();
    ckpt.add_tensor("optim.special",
                    Tensor::from_data({7}, {std::numeric_limits<float>::quiet_NaN(), -0.0f,
                                            std::numeric_limits<float>::infinity(),
                                            -std::numeric_limits<float>::infinity(), denormal,
                                            FLT_MAX, 1.0f / 3.0f}));
    return ckpt;
}
}  // namespace

TEST_CASE("checkpoint: round trip keeps every bit, the config, step and generators", "[nn]") {
    ScratchDir dir;
    std::string path = dir.file("model.ckpt");
    Checkpoint saved = sample_checkpoint();
    save_checkpoint(path, saved);
    Checkpoint loaded = load_checkpoint(path);

    REQUIRE(loaded.path == path);
    REQUIRE(loaded.config == saved.config);
    REQUIRE(loaded.step == 1234567890123);
    REQUIRE(loaded.generators == saved.generators);
    REQUIRE(loaded.tensors.size() == saved.tensors.size());
    for (size_t i = 0; i < saved.tensors.size(); ++i) {
        INFO("tensor " << saved.tensors[i].first);
        REQUIRE(loaded.tensors[i].first == saved.tensors[i].first);  // in order
        require_same_bits(loaded.tensors[i].second, saved.tensors[i].second);
    }
    REQUIRE_THROWS_WITH(loaded.tensor("model.bias"),
                        Catch::Contains(path) && Catch::Contains("model.bias is missing"));
    REQUIRE(dir.temp_files().empty());

    // Saving again replaces the file.
    saved.step = 7;
    save_checkpoint(path, saved);
    REQUIRE(load_checkpoint(path).step == 7);
    REQUIRE(dir.temp_files().empty());

    // add_tensor copies, and refuses a second tensor of the same name.
    Tensor t = Tensor::ones({2});
    Checkpoint c;
    c.add_tensor("t", t);
    t.mutable_data()[0] = 5.0f;
    REQUIRE(c.tensor("t").at({0}) == 1.0f);
    REQUIRE_THROWS_WITH(c.add_tensor("t", t), Catch::Contains("t added twice"));
}

TEST_CASE("checkpoint: a failed write leaves the old file and no temporary file", "[nn]") {
    ScratchDir dir;

    SECTION("the parent of the path is a regular file") {
        write_bytes(dir.file("plain"), "not a directory");
        std::string path = dir.file("plain") + "/model.ckpt";
        REQUIRE_THROWS_WITH(write_file(path, "data"),
                            Catch::Contains("cannot write " + path));
        REQUIRE(read_bytes(dir.file("plain")) == "not a directory");
        REQUIRE(dir.temp_files().empty());
    }

    SECTION("the path is a directory (rename fails)") {
        std::string path = dir.file("model.ckpt");
        fs::create_directory(path);
        write_bytes(path + "/inside", "kept");
        REQUIRE_THROWS_WITH(write_file(path, "data"),
                            Catch::Contains("cannot write " + path) && Catch::Contains("rename"));
        REQUIRE(fs::is_directory(path));
        REQUIRE(read_bytes(path + "/inside") == "kept");
        REQUIRE(dir.temp_files().empty());
    }

    SECTION("the disk fills up mid-write (a file size limit, which binds root too)") {
        std::string path = dir.file("model.ckpt");
        Checkpoint old_checkpoint = sample_checkpoint();
        save_checkpoint(path, old_checkpoint);
        std::string old_bytes = read_bytes(path);

        Checkpoint big;
        Generator gen(9);
        big.add_tensor("model.big", Tensor::randn({64, 1024}, gen));  // 256 KiB
        std::string message;
        {
            // Writes past 16 KiB fail with EFBIG instead of raising SIGXFSZ. Nothing
            // else may write a file until the limit is lifted, so no REQUIRE in here.
            struct rlimit old_limit {};
            ::getrlimit(RLIMIT_FSIZE, &old_limit);
            struct rlimit limit = old_limit;
            limit.rlim_cur = 16 * 1024;
            auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
            ::setrlimit(RLIMIT_FSIZE, &limit);
            try {
                save_checkpoint(path, big);
            } catch (const Error& e) {
                message = e.what();
            }
            ::setrlimit(RLIMIT_FSIZE, &old_limit);
            std::signal(SIGXFSZ, old_handler);
        }
        REQUIRE_THAT(message, Catch::Contains("cannot write " + path) &&
                                  Catch::Contains("File too large"));
        REQUIRE(read_bytes(path) == old_bytes);
        REQUIRE(load_checkpoint(path).step == old_checkpoint.step);
        REQUIRE(dir.temp_files().empty());
    }
}

TEST_CASE("checkpoint: every kind of bad file is rejected with the file and the problem",
          "[nn]") {
    ScratchDir dir;
    std::string good_path = dir.file("good.ckpt");
    save_checkpoint(good_path, sample_checkpoint());
    const std::string good = read_bytes(good_path);
    std::string path = dir.file("bad.ckpt");
    auto rejected_with = [&](const std::string& bytes, const std::string& problem) {
        write_bytes(path, bytes);
        std::string message = load_error(path);
        INFO("message: " << message);
        REQUIRE_THAT(message, Catch::Contains("checkpoint " + path) && Catch::Contains(problem));
    };

    REQUIRE_THAT(load_error(dir.file("missing.ckpt")),
                 Catch::Contains(dir.file("missing.ckpt")) &&
                     Catch::Contains("no such file"));
    fs::create_directory(dir.file("a_directory"));
    REQUIRE_THAT(load_error(dir.file("a_directory")), Catch::Contains("is a directory"));

    rejected_with("", "empty");
    for (size_t length : {size_t(1), size_t(7), size_t(8), size_t(20), size_t(40),
                          good.size() / 2, good.size() - 5, good.size() - 1}) {
        INFO("truncated to " << length << " of " << good.size() << " bytes");
        rejected_with(good.substr(0, length), "truncated");
    }
    rejected_with(good + "extra", "trailing bytes");

    std::string flipped = good;
    flipped[good.size() / 2] ^= 0x10;
    rejected_with(flipped, "checksum mismatch");
    std::string bad_magic = good;
    bad_magic[0] = 'X';
    rejected_with(bad_magic, "not a performer.cpp checkpoint");
    rejected_with("hello, world: some other file entirely", "not a performer.cpp checkpoint");
    std::string other_version = good;
    patch<uint32_t>(other_version, 8, 2);
    rejected_with(other_version, "format version 2, but this program reads version 1");

    // Inconsistent sizes behind a valid checksum (a crafted or buggy file): the reader
    // must refuse before allocating what the lengths claim.
    Checkpoint one_tensor;
    one_tensor.add_tensor("w", Tensor::ones({2, 3}));
    save_checkpoint(good_path, one_tensor);
    const std::string small = read_bytes(good_path);
    // Layout: header 28 | config count @28 = 0 | generator count @36 = 0 |
    //         tensor count @44 = 1 | name length @52 = 1, "w" @60 | rank @61 = 2 |
    //         sizes @65, @73 | 6 floats @81 | crc @105
    REQUIRE(small.size() == 109);
    std::string huge_key = small;
    patch<uint64_t>(huge_key, 28, 1);                   // one config entry ...
    patch<uint64_t>(huge_key, 36, uint64_t(1) << 62);   // ... whose key is 2^62 bytes long
    rejected_with(with_valid_checksum(huge_key), "corrupt: config key at byte 44 needs");
    std::string huge_count = small;
    patch<uint64_t>(huge_count, 44, uint64_t(1) << 60);
    rejected_with(with_valid_checksum(huge_count), "corrupt");
    std::string huge_rank = small;
    patch<uint32_t>(huge_rank, 61, 1u << 30);
    rejected_with(with_valid_checksum(huge_rank), "corrupt: shape of tensor w");
    std::string huge_shape = small;
    patch<int64_t>(huge_shape, 65, int64_t(1) << 40);
    rejected_with(with_valid_checksum(huge_shape),
                  "corrupt: tensor w of shape (1099511627776, 3) needs more");
    std::string negative_size = small;
    patch<int64_t>(negative_size, 73, -3);
    rejected_with(with_valid_checksum(negative_size), "negative size -3");
    std::string fewer_floats = small;
    patch<int64_t>(fewer_floats, 65, 1);  // (1, 3): 12 bytes left over
    rejected_with(with_valid_checksum(fewer_floats), "corrupt: 12 unexpected bytes");
}

TEST_CASE("store_module and restore_module: values copied in place, mismatches named",
          "[nn]") {
    ScratchDir dir;
    std::string path = dir.file("model.ckpt");
    Generator gen_a(10), gen_b(11);
    TinyBlock source(4, 8, 2, gen_a), target(4, 8, 2, gen_b);
    Checkpoint ckpt;
    store_module(ckpt, "model.", source);
    ckpt.add_tensor("optim.m.head.weight", Tensor::zeros({4, 2}));  // other prefixes: ignored
    REQUIRE(ckpt.tensors.size() == 9);  // 7 parameters, 1 buffer, 1 optimizer entry
    save_checkpoint(path, ckpt);
    Checkpoint loaded = load_checkpoint(path);

    Tensor weight_before = target.named_parameters()[2].second;  // mlp.up.weight
    restore_module(loaded, "model.", target);
    auto source_tensors = source.named_parameters(), target_tensors = target.named_parameters();
    for (size_t i = 0; i < source_tensors.size(); ++i) {
        INFO(source_tensors[i].first);
        require_same_bits(source_tensors[i].second, target_tensors[i].second);
    }
    require_same_bits(source.features(), target.features());
    REQUIRE(target_tensors[2].second.storage() == weight_before.storage());  // in place

    // A model of another width: the first tensor that differs is named, with both shapes.
    Generator gen_c(12);
    TinyBlock wider(8, 8, 2, gen_c);
    Tensor wider_weight = clone(wider.named_parameters()[0].second).detach();
    REQUIRE_THROWS_WITH(restore_module(loaded, "model.", wider),
                        Catch::Contains("checkpoint " + path + ": tensor model.norm.weight has "
                                        "shape (4), the model expects (8)"));
    require_same_bits(wider.named_parameters()[0].second, wider_weight);  // unchanged

    Checkpoint missing;
    missing.path = path;
    for (auto& [name, tensor] : loaded.tensors)
        if (name != "model.head.weight") missing.add_tensor(name, tensor);
    REQUIRE_THROWS_WITH(restore_module(missing, "model.", target),
                        Catch::Contains("checkpoint " + path + ": tensor model.head.weight is "
                                        "missing (the model expects shape (4, 2))"));
    Checkpoint extra = loaded;
    extra.add_tensor("model.blocks.1.weight", Tensor::zeros({2}));
    REQUIRE_THROWS_WITH(restore_module(extra, "model.", target),
                        Catch::Contains("model.blocks.1.weight is not part of the model"));

    // Parameters only: the weights are copied, the target's own buffer is kept, and the
    // checkpoint's extra tensors are ignored; a missing parameter is still an error.
    Generator gen_d(13);
    TinyBlock other(4, 8, 2, gen_d);
    Tensor own_features = clone(other.features()).detach();
    restore_module(extra, "model.", other, Restore::ParametersOnly);
    auto other_tensors = other.named_parameters();
    for (size_t i = 0; i < source_tensors.size(); ++i)
        require_same_bits(source_tensors[i].second, other_tensors[i].second);
    require_same_bits(other.features(), own_features);
    REQUIRE_FALSE(max_abs_diff(other.features(), source.features()) == 0.0f);
    REQUIRE_THROWS_WITH(restore_module(missing, "model.", other, Restore::ParametersOnly),
                        Catch::Contains("tensor model.head.weight is missing"));

    Generator data(123);
    data.advance(77);
    Checkpoint with_generator;
    store_generator(with_generator, "data", data);
    Generator restored;
    restore_generator(with_generator, "data", restored);
    REQUIRE(restored.seed() == 123);
    REQUIRE(restored.offset() == 77);
    REQUIRE_THROWS_WITH(restore_generator(with_generator, "dropout", restored),
                        Catch::Contains("generator 'dropout' is missing"));
}

// ---- a whole model --------------------------------------------------------------------

TEST_CASE("a tiny MLP regression trained with AdamW: the loss falls 100x in 200 steps", "[nn]") {
    // Learn t(x) = (sin(2 x0) cos(x1), x0 x1) on 64 fixed points of [-1.5, 1.5]^2.
    Generator gen(13);
    const int64_t N = 64;
    Tensor x = Tensor::rand({N, 2}, gen, -1.5f, 1.5f);
    std::vector<float> target_values;
    for (int64_t i = 0; i < N; ++i) {
        float x0 = x.at({i, 0}), x1 = x.at({i, 1});
        target_values.push_back(std::sin(2 * x0) * std::cos(x1));
        target_values.push_back(x0 * x1);
    }
    Tensor target = Tensor::from_data({N, 2}, target_values);

    MLP mlp(2, 32, gen);
    AdamW optimizer(mlp.named_parameters(), 0.0f);
    const int64_t steps = 200;
    float first_loss = 0, last_loss = 0;
    for (int64_t step = 0; step < steps; ++step) {
        optimizer.set_lr(lr_at(step, steps, 3e-2f, 10));
        optimizer.zero_grad();
        Tensor difference = mlp.forward(x) - target;
        Tensor loss = mean(difference * difference);
        loss.backward();
        clip_grad_norm(mlp.parameters(), 1.0f);
        optimizer.step();
        if (step == 0) first_loss = loss.item();
        last_loss = loss.item();
    }
    INFO("loss " << first_loss << " -> " << last_loss);
    REQUIRE(last_loss < first_loss / 100);
}
