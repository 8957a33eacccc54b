// layers.cpp — Linear, LayerNorm, Embedding, MLP and Dropout as compositions of
// engine ops (see layers.h for the math, shapes and initialisation).
#include "nn/layers.h"

#include <cmath>
#include <memory>

namespace pf::nn {

// ---- Linear ---------------------------------------------------------------------------

Linear::Linear(int64_t in_features, int64_t out_features, Generator& gen, bool bias)
    : in_features_(in_features), out_features_(out_features) {
    PF_CHECK(in_features > 0 && out_features > 0, "Linear: sizes must be positive, got in {} "
             "and out {}", in_features, out_features);
    float bound = 1.0f / std::sqrt(float(in_features));
    weight_ = register_parameter(
        "weight", Tensor::rand({in_features, out_features}, gen, -bound, bound));
    if (bias) bias_ = register_parameter("bias", Tensor::zeros({out_features}));
}

// y = x W (+ b):  x (..., in) @ W (in, out) -> (..., out); b (out) broadcasts over rows.
// matmul needs two axes, so a single vector x (in) goes through as one row (1, in).
Tensor Linear::forward(const Tensor& x) const {
    PF_CHECK(x.dim() >= 1 && x.size(-1) == in_features_,
             "Linear({}, {}): input of shape {} (want (..., {}))", in_features_, out_features_,
             shape_str(x.shape()), in_features_);
    return linear(x, weight_, bias_);  // one fused op: x W + b
}

// ---- LayerNorm ------------------------------------------------------------------------

LayerNorm::LayerNorm(int64_t d, float eps) : d_(d), eps_(eps) {
    PF_CHECK(d > 0, "LayerNorm: size must be positive, got {}", d);
    PF_CHECK(eps > 0, "LayerNorm: eps must be positive, got {}", eps);
    weight_ = register_parameter("weight", Tensor::ones({d}));
    bias_ = register_parameter("bias", Tensor::zeros({d}));
}

// x (..., d) -> (..., d); the engine's fused layer_norm normalises each row.
Tensor LayerNorm::forward(const Tensor& x) const {
    PF_CHECK(x.dim() >= 1 && x.size(-1) == d_, "LayerNorm({}): input of shape {} (want (..., {}))",
             d_, shape_str(x.shape()), d_);
    return layer_norm(x, weight_, bias_, eps_);
}

// ---- Embedding ------------------------------------------------------------------------

Embedding::Embedding(int64_t vocab, int64_t d, Generator& gen, float init_std)
    : vocab_(vocab), d_(d) {
    PF_CHECK(vocab > 0 && d > 0, "Embedding: sizes must be positive, got vocab {} and d {}",
             vocab, d);
    weight_ = register_parameter("weight", Tensor::randn({vocab, d}, gen, 0.0f, init_std));
}

// ids (numel(shape) values) -> rows of W (N, d) -> (shape..., d). The engine's
// embedding checks every id against the vocabulary.
Tensor Embedding::forward(const std::vector<int32_t>& ids, const Shape& shape) const {
    PF_CHECK(numel(shape) == int64_t(ids.size()), "Embedding: {} ids for shape {} ({} expected)",
             ids.size(), shape_str(shape), numel(shape));
    Shape out_shape = shape;
    out_shape.push_back(d_);
    return reshape(embedding(weight_, ids), out_shape);
}

// ---- MLP ----------------------------------------------------------------------------------

MLP::MLP(int64_t d, int64_t hidden, Generator& gen)
    : up_(register_module("up", std::make_unique<Linear>(d, hidden, gen))),
      down_(register_module("down", std::make_unique<Linear>(hidden, d, gen))) {}

// x (..., d) -> up (..., hidden) -> gelu -> down (..., d)
Tensor MLP::forward(const Tensor& x) const { return down_.forward(gelu(up_.forward(x))); }

// ---- Dropout ------------------------------------------------------------------------------

Dropout::Dropout(float p, Generator& gen) : p_(p), gen_(gen) {
    PF_CHECK(p >= 0 && p < 1, "Dropout: probability {} not in [0, 1)", p);
}

// Rows of n / rows numbers: the whole batch's mask starts at `whole`, row `first` of it
// n / rows x first counters later.
Tensor Dropout::forward(const Tensor& x) const {
    if (!training() || p_ == 0) return x;
    const uint64_t n = uint64_t(x.numel()), rows = uint64_t(rows_.rows);
    PF_CHECK(n % rows == 0, "Dropout: an input of {} numbers is not {} rows", n, rows);
    const uint64_t per_row = n / rows;
    const uint64_t whole = gen_.advance(per_row * uint64_t(rows_.total));
    return dropout(x, p_, gen_, whole + per_row * uint64_t(rows_.first));
}

void Dropout::set_rows(const BatchRows& rows) {
    PF_CHECK(rows.first >= 0 && rows.rows >= 1 && rows.first + rows.rows <= rows.total,
             "Dropout: rows [{}, {}) are not rows of a batch of {}", rows.first,
             rows.first + rows.rows, rows.total);
    rows_ = rows;
}

void set_dropout_rows(Module& module, const BatchRows& rows) {
    for (Module* m : module.modules())
        if (auto* dropout = dynamic_cast<Dropout*>(m)) dropout->set_rows(rows);
}

}  // namespace pf::nn
