// layers.h — the basic layers every model is built from: Linear, LayerNorm,
// Embedding, MLP (the Transformer's feed-forward) and Dropout.
//
//   Generator gen(1);
//   Linear proj(64, 256, gen);              // weight (64, 256), bias (256)
//   Tensor y = proj.forward(x);             // x (B, L, 64) -> y (B, L, 256)
//   Embedding tokens(256, 64, gen);
//   Tensor h = tokens.forward(ids, {B, L}); // ids: B*L values -> h (B, L, 64)
//
// Each layer is a Module (nn/module.h): its tensors are registered parameters, so
// named_parameters() names them ("weight", "bias", "up.weight", ...) for the
// optimizer and for checkpoints. Each forward is a few engine ops; autograd does
// the rest.
//
// Initialisation (see Linear for why):
//   Linear     weight ~ U(-1/sqrt(in), 1/sqrt(in)), bias = 0
//   Embedding  weight ~ N(0, 0.02^2)
//   LayerNorm  weight = 1, bias = 0
#pragma once

#include "engine/ops.h"
#include "engine/random.h"
#include "nn/module.h"

#include <cstdint>
#include <vector>

namespace pf::nn {

// y = x W + b, with W stored as (in, out) so that forward is one matmul(x, W).
//
// Init: W ~ U(-1/sqrt(in), 1/sqrt(in)) (PyTorch's nn.Linear default), bias 0. Each
// output is a sum of `in` terms, so its variance is in * Var(W) * Var(x) = Var(x) / 3
// whatever the width: the same rule suits the 4-wide layers of the tests and the
// 512-wide layers of a model. (GPT-2's fixed std 0.02 is this rule tuned for width
// 768, where 1/sqrt(3 * 768) = 0.021; at width 64 it would shrink activations 3.6x
// per layer.) A zero bias leaves the output centred like the input.
class Linear : public Module {
public:
    Linear(int64_t in_features, int64_t out_features, Generator& gen, bool bias = true);

    // x: (..., in) -> (..., out)
    Tensor forward(const Tensor& x) const;

    const Tensor& weight() const { return weight_; }  // (in, out)
    const Tensor& bias() const { return bias_; }      // (out), undefined without bias
    int64_t in_features() const { return in_features_; }
    int64_t out_features() const { return out_features_; }

private:
    int64_t in_features_, out_features_;
    Tensor weight_, bias_;
};

// Normalise over the last axis, then scale and shift per feature:
//   y = (x - mean) / sqrt(var + eps) * weight + bias,   weight = 1 and bias = 0 at init.
class LayerNorm : public Module {
public:
    explicit LayerNorm(int64_t d, float eps = 1e-5f);

    // x: (..., d) -> (..., d)
    Tensor forward(const Tensor& x) const;

    const Tensor& weight() const { return weight_; }  // (d)
    const Tensor& bias() const { return bias_; }      // (d)

private:
    int64_t d_;
    float eps_;
    Tensor weight_, bias_;
};

// A table of `vocab` learned vectors of size d; forward looks rows up by id.
// Init N(0, init_std^2) with init_std = 0.02 as in GPT-2: small vectors keep the
// initial logits of a model that reuses this table as its output layer near zero
// (a uniform first prediction), and leave room for position embeddings to add up.
class Embedding : public Module {
public:
    Embedding(int64_t vocab, int64_t d, Generator& gen, float init_std = 0.02f);

    // ids: numel(shape) values in [0, vocab), row-major in `shape` -> (shape..., d).
    // E.g. ids of a (B, L) batch -> (B, L, d).
    Tensor forward(const std::vector<int32_t>& ids, const Shape& shape) const;

    const Tensor& weight() const { return weight_; }  // (vocab, d)
    int64_t vocab() const { return vocab_; }
    int64_t dim() const { return d_; }

private:
    int64_t vocab_, d_;
    Tensor weight_;
};

// The Transformer's feed-forward block: y = down(gelu(up(x))).
//   up: (d -> hidden), down: (hidden -> d); hidden is usually 4 d.
class MLP : public Module {
public:
    MLP(int64_t d, int64_t hidden, Generator& gen);

    // x: (..., d) -> (..., d)
    Tensor forward(const Tensor& x) const;

    Linear& up() { return up_; }
    Linear& down() { return down_; }

private:
    Linear& up_;
    Linear& down_;
};

// Rows [first, first + rows) of a batch of `total` rows; the default is a whole batch.
struct BatchRows {
    int64_t first = 0, rows = 1, total = 1;
};

// In training mode, zero each element with probability p and scale the rest by
// 1 / (1 - p), so that the expected output equals the input; in evaluation mode
// (or with p = 0) return the input itself. Draws its masks from `gen`, which must
// outlive the layer (a model usually owns one generator for all its dropouts, so
// that a checkpoint can store its state).
//
// Part of a batch (a micro-batch, or one process's rows): after set_rows({first, rows,
// total}), an input of n numbers is taken as rows [first, first + rows) of a batch of
// `total` rows of n / rows numbers each. The layer reserves the whole batch's counters
// and draws at those of its rows, so it draws exactly what the whole batch draws there
// (masks do not depend on how a batch is split), and every part leaves the generator
// where the whole batch does.
class Dropout : public Module {
public:
    Dropout(float p, Generator& gen);

    // x: any shape (in `rows` rows) -> the same shape
    Tensor forward(const Tensor& x) const;

    // The rows of a batch the inputs are, until set again.
    void set_rows(const BatchRows& rows);

    float p() const { return p_; }

private:
    float p_;
    Generator& gen_;
    BatchRows rows_;
};

// Sets the rows (Dropout::set_rows) of every Dropout in `module`, itself included.
void set_dropout_rows(Module& module, const BatchRows& rows);

}  // namespace pf::nn
