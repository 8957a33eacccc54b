// sequence_model.cpp — embeddings, blocks, head; decoding; sampling.
#include "models/sequence_model.h"

#include "engine/ops.h"

#include <algorithm>
#include <cmath>

namespace pf::models {

// ---- configuration -----------------------------------------------------------------

void ModelConfig::validate() const {
    nn::check_config(attention);
    PF_CHECK((image_height > 0) == (image_width > 0) && (image_width > 0) == (image_channels > 0),
             "image sizes {}x{}x{}: set all three or none", image_height, image_width,
             image_channels);
}

// ---- the model ---------------------------------------------------------------------

SequenceModel::SequenceModel(const ModelConfig& config, Generator& init, Generator& dropout)
    : config_(config),
      token_embedding_(register_module("token_embedding",
                                       std::make_unique<nn::Embedding>(config.vocab, config.attention.dim, init))) {
    config_.validate();
    const int64_t D = config.attention.dim;
    if (config.image_positions()) {
        row_table_ = &register_module("row_embedding", std::make_unique<nn::Embedding>(config.image_height, D, init));
        column_table_ = &register_module("column_embedding", std::make_unique<nn::Embedding>(config.image_width, D, init));
        channel_table_ = &register_module("channel_embedding", std::make_unique<nn::Embedding>(config.image_channels, D, init));
    } else {
        position_table_ = &register_module("position_embedding",
                                           std::make_unique<nn::Embedding>(config.attention.max_length, D, init));
    }
    nn::BlockConfig block;
    block.attention = config.attention;
    block.ff = config.ff;
    block.dropout = config.dropout;
    for (int64_t i = 0; i < config.layers; ++i)
        blocks_.push_back(&register_module("blocks." + std::to_string(i),
                                           std::make_unique<nn::TransformerBlock>(block, init, dropout)));
    final_norm_ = &register_module("final_norm", std::make_unique<nn::LayerNorm>(D));
    head_ = &register_module("head", std::make_unique<nn::Linear>(D, config.vocab, init));
}

// Position p of an image sequence is (row, column, channel) = (p / (W C), (p / C) % W, p % C).
Tensor SequenceModel::position_embedding(int64_t first, int64_t length) const {
    std::vector<int32_t> ids(length);
    if (!config_.image_positions()) {
        PF_CHECK(first + length <= config_.attention.max_length,
                 "sequence of {} positions is longer than the model's maximum {}", first + length,
                 config_.attention.max_length);
        for (int64_t i = 0; i < length; ++i) ids[i] = int32_t(first + i);
        return position_table_->forward(ids, {length});
    }
    const int64_t W = config_.image_width, C = config_.image_channels;
    PF_CHECK(first + length <= config_.image_height * W * C,
             "sequence of {} positions is longer than an image ({}x{}x{})", first + length,
             config_.image_height, W, C);
    std::vector<int32_t> rows(length), columns(length), channels(length);
    for (int64_t i = 0; i < length; ++i) {
        int64_t p = first + i;
        rows[i] = int32_t(p / (W * C));
        columns[i] = int32_t((p / C) % W);
        channels[i] = int32_t(p % C);
    }
    return add(add(row_table_->forward(rows, {length}), column_table_->forward(columns, {length})),
               channel_table_->forward(channels, {length}));
}

Tensor SequenceModel::forward(const std::vector<int32_t>& tokens, int64_t batch, int64_t length,
                              const Tensor& key_mask) {
    PF_CHECK(int64_t(tokens.size()) == batch * length, "model: {} tokens for a ({}, {}) batch",
             tokens.size(), batch, length);
    Tensor x = add(token_embedding_.forward(tokens, {batch, length}),
                   position_embedding(0, length));  // (B, L, D) + (L, D)
    for (nn::TransformerBlock* block : blocks_) x = block->forward(x, key_mask);
    return head_->forward(final_norm_->forward(x));
}

void SequenceModel::redraw_features(Generator& gen) {
    for (nn::TransformerBlock* block : blocks_) block->attention().redraw_features(gen);
}

std::vector<nn::MultiHeadAttention*> SequenceModel::attention_layers() {
    std::vector<nn::MultiHeadAttention*> layers;
    for (nn::TransformerBlock* block : blocks_) layers.push_back(&block->attention());
    return layers;
}

Decoder SequenceModel::start_decoding(int64_t batch) const {
    PF_CHECK(config_.causal(), "model: only a causal model decodes token by token");
    Decoder decoder;
    decoder.batch = batch;
    for (const nn::TransformerBlock* block : blocks_)
        decoder.layers.push_back(block->attention().start_decoding());
    return decoder;
}

Tensor SequenceModel::decode_step(const std::vector<int32_t>& tokens, Decoder& decoder) const {
    NoGradGuard no_grad;
    PF_CHECK(int64_t(tokens.size()) == decoder.batch, "model: {} tokens for a batch of {}",
             tokens.size(), decoder.batch);
    const int64_t B = decoder.batch, D = config_.attention.dim;
    Tensor x = add(token_embedding_.forward(tokens, {B}),
                   reshape(position_embedding(decoder.position, 1), {D}));  // (B, D)
    for (size_t i = 0; i < blocks_.size(); ++i) x = blocks_[i]->decode_step(x, decoder.layers[i]);
    decoder.position++;
    return head_->forward(final_norm_->forward(x));  // (B, vocab)
}

int32_t sample_token(const float* logits, int64_t vocab, float temperature, Generator& gen) {
    if (temperature <= 0) return int32_t(std::max_element(logits, logits + vocab) - logits);
    float top = *std::max_element(logits, logits + vocab);
    std::vector<double> weights(vocab);
    double total = 0;
    for (int64_t i = 0; i < vocab; ++i) total += weights[i] = std::exp((logits[i] - top) / temperature);
    double u = gen.uniform() * total;
    for (int64_t i = 0; i < vocab; ++i) {
        if ((u -= weights[i]) < 0) return int32_t(i);
    }
    return int32_t(vocab - 1);
}

}  // namespace pf::models
