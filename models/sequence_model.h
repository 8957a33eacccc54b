// sequence_model.h — a Transformer over token sequences: the model of every task.
//
//   tokens (B, L) → token embedding + position embedding → N blocks → LayerNorm
//                 → Linear head → logits (B, L, vocab)
//
// One class serves the paper's experiments:
//   - text: a causal language model over bytes (vocab 256), learned positions;
//   - proteins: the same over amino acids, causal, or bidirectional for masked
//     language modelling (objective "masked": attention is not causal);
//   - images: a causal model over pixel intensities read in raster order, with
//     factorised positions: row + column + channel embeddings (image_* sizes set).
// Any attention mechanism of nn/attention.h can be chosen by name.
//
// A causal model also decodes recurrently (decode_step): each new position costs the
// same, O(m d) per layer and head for the linear mechanisms, whatever came before.
#pragma once

#include "nn/layers.h"
#include "nn/transformer.h"

#include <string>
#include <vector>

namespace pf::models {

struct ModelConfig {
    // The attention of every block; its width D, heads and longest sequence (the
    // learned positions') are the model's, and its causal flag the objective's
    // (causal: next token; not: masked, bidirectional).
    nn::AttentionConfig attention;
    int64_t vocab = 256;
    int64_t layers = 4, ff = 1024;      // blocks; hidden width of their MLPs
    float dropout = 0.0f;
    // Factorised image positions (all three > 0) instead of learned ones.
    int64_t image_height = 0, image_width = 0, image_channels = 0;

    bool causal() const { return attention.causal; }
    bool image_positions() const { return image_height > 0; }
    // Throws pf::Error unless the settings fit together (D divisible by H, image sizes all
    // set or none, ...: nn::check_config). Each setting's own range is its table's
    // (model_settings in models/run.h).
    void validate() const;
};

// Per-layer recurrent state of a decoding causal model.
struct Decoder {
    std::vector<nn::DecodeState> layers;
    int64_t position = 0;
    int64_t batch = 0;
};

class SequenceModel : public nn::Module {
public:
    // `init` draws the initial weights and features; `dropout` (which must outlive the
    // model) its dropout masks.
    SequenceModel(const ModelConfig& config, Generator& init, Generator& dropout);

    // tokens: B * L ids, row-major (B, L) → logits (B, L, vocab).
    // key_mask (B, L): 1 for real positions, 0 for padding (optional).
    Tensor forward(const std::vector<int32_t>& tokens, int64_t batch, int64_t length,
                   const Tensor& key_mask = {});

    // New random features for every attention layer (favor, trig, relu), or new random
    // rotations (reformer).
    void redraw_features(Generator& gen);
    // Every block's attention layer, first to last.
    std::vector<nn::MultiHeadAttention*> attention_layers();

    // Recurrent decoding: one token per sequence in, the next position's logits (B, vocab) out.
    Decoder start_decoding(int64_t batch) const;
    Tensor decode_step(const std::vector<int32_t>& tokens, Decoder& decoder) const;

    const ModelConfig& config() const { return config_; }

    // The position part of the input for positions [first, first + length): (length, D).
    Tensor position_embedding(int64_t first, int64_t length) const;

private:
    ModelConfig config_;
    nn::Embedding& token_embedding_;
    // Learned positions use position_embedding_; images use rows, columns and channels.
    nn::Embedding* position_table_ = nullptr;
    nn::Embedding* row_table_ = nullptr;
    nn::Embedding* column_table_ = nullptr;
    nn::Embedding* channel_table_ = nullptr;
    std::vector<nn::TransformerBlock*> blocks_;
    nn::LayerNorm* final_norm_ = nullptr;
    nn::Linear* head_ = nullptr;
};

// A token drawn from softmax(logits / temperature); temperature 0 takes the argmax.
int32_t sample_token(const float* logits, int64_t vocab, float temperature, Generator& gen);

}  // namespace pf::models
