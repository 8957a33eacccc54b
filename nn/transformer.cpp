// transformer.cpp — the pre-LayerNorm block.
#include "nn/transformer.h"

#include "engine/ops.h"

namespace pf::nn {

TransformerBlock::TransformerBlock(const BlockConfig& config, Generator& gen, Generator& dropout)
    : norm_1_(register_module("norm_1", std::make_unique<LayerNorm>(config.attention.dim))),
      attention_(register_module("attention",
                                 std::make_unique<MultiHeadAttention>(config.attention, gen))),
      norm_2_(register_module("norm_2", std::make_unique<LayerNorm>(config.attention.dim))),
      mlp_(register_module("mlp", std::make_unique<MLP>(config.attention.dim, config.ff, gen))),
      dropout_(register_module("dropout", std::make_unique<Dropout>(config.dropout, dropout))) {}

Tensor TransformerBlock::forward(const Tensor& x, const Tensor& key_mask) {
    Tensor h = add(x, dropout_.forward(attention_.forward(norm_1_.forward(x), key_mask)));
    return add(h, dropout_.forward(mlp_.forward(norm_2_.forward(h))));
}

Tensor TransformerBlock::decode_step(const Tensor& x_t, DecodeState& state) const {
    NoGradGuard no_grad;
    // The layers take (..., D): one position is (B, D).
    Tensor h = add(x_t, attention_.decode_step(norm_1_.forward(x_t), state));
    return add(h, mlp_.forward(norm_2_.forward(h)));
}

}  // namespace pf::nn
