// transformer.h — the pre-LayerNorm Transformer block around any attention mechanism.
//
//   x = x + dropout(attention(layer_norm_1(x)))
//   x = x + dropout(mlp(layer_norm_2(x)))          mlp: Linear(D, F) → GELU → Linear(F, D)
//
// Normalising before each sub-layer (GPT-2's arrangement) keeps the residual path an
// identity, which trains stably without careful warm-up. decode_step() runs the same
// block on one position, with the attention's recurrent state (see attention.h).
#pragma once

#include "nn/attention.h"
#include "nn/layers.h"

namespace pf::nn {

struct BlockConfig {
    AttentionConfig attention;
    int64_t ff = 1024;      // hidden width of the MLP
    float dropout = 0.0f;   // on both residual branches, in training mode
};

class TransformerBlock : public Module {
public:
    // `init` draws the initial weights and features; `dropout` (which must outlive the
    // block) draws the dropout masks during training.
    TransformerBlock(const BlockConfig& config, Generator& init, Generator& dropout);

    // x: (B, L, D) → (B, L, D); key_mask (B, L) optional (1 real, 0 padding).
    Tensor forward(const Tensor& x, const Tensor& key_mask = {});
    // x_t: (B, D) → (B, D) for the next position of a causal block. No gradients.
    Tensor decode_step(const Tensor& x_t, DecodeState& state) const;

    MultiHeadAttention& attention() { return attention_; }
    const MultiHeadAttention& attention() const { return attention_; }

private:
    LayerNorm& norm_1_;
    MultiHeadAttention& attention_;
    LayerNorm& norm_2_;
    MLP& mlp_;
    Dropout& dropout_;
};

}  // namespace pf::nn
