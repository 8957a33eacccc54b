// sequence_model.cpp — embeddings, blocks, head; the settings; decoding; sampling.
#include "models/sequence_model.h"

#include "engine/ops.h"

#include <algorithm>
#include <cmath>

namespace pf::models {

// ---- configuration -----------------------------------------------------------------

const Settings<ModelConfig>& model_settings() {
    static const Settings<ModelConfig> settings = [] {
        Settings<ModelConfig> s;
        s.choice("model.attention", "--attention", "attention mechanism",
                 [](auto& c) -> auto& { return c.attention.mechanism; }, nn::mechanism_names());
        s.integer("model.features", "--features", "random features m (favor, trig, relu)",
                  [](auto& c) -> auto& { return c.attention.features; }, 1);
        s.choice("model.feature_kind", "--feature-kind",
                 "favor's random features: iid or orthogonal rows, or orthogonal rows with "
                 "FAVOR++'s map",
                 [](auto& c) -> auto& { return c.attention.feature_kind; },
                 nn::feature_kind_names());
        s.integer("model.chunk", "--chunk",
                  "chunk length: causal linear attention's blocks, reformer's chunks",
                  [](auto& c) -> auto& { return c.attention.chunk; }, 1);
        s.integer("model.linformer_k", "--linformer-k",
                  "linformer: rows k of the projections along the sequence",
                  [](auto& c) -> auto& { return c.attention.linformer_k; }, 1);
        s.integer("model.hashes", "--hashes", "reformer: rounds of hashing",
                  [](auto& c) -> auto& { return c.attention.hashes; }, 1);
        s.integer("model.buckets", "--buckets", "reformer: hash buckets of each round (even)",
                  [](auto& c) -> auto& { return c.attention.buckets; }, 2);
        s.integer("model.layers", "--layers", "Transformer blocks",
                  [](auto& c) -> auto& { return c.layers; }, 1);
        s.integer("model.dim", "--dim", "model width D",
                  [](auto& c) -> auto& { return c.attention.dim; }, 1);
        s.integer("model.heads", "--heads", "attention heads",
                  [](auto& c) -> auto& { return c.attention.heads; }, 1);
        s.integer("model.ff", "--ff", "feed-forward width (default 4 D)",
                  [](auto& c) -> auto& { return c.ff; }, 1);
        s.number("model.dropout", "--dropout", "dropout probability",
                 [](auto& c) -> auto& { return c.dropout; }, 0.0, 0.99);
        // Set by the task (models/task.h), not by flags.
        s.choice("model.objective", "", "causal (next token) or masked (bidirectional)",
                 [](auto& c) -> auto& { return c.attention.causal; }, {"masked", "causal"});
        s.integer("model.vocab", "", "tokens", [](auto& c) -> auto& { return c.vocab; }, 2);
        s.integer("model.max_length", "", "longest sequence",
                  [](auto& c) -> auto& { return c.attention.max_length; }, 1);
        s.integer("model.image_height", "", "image rows (0: not an image model)",
                  [](auto& c) -> auto& { return c.image_height; }, 0);
        s.integer("model.image_width", "", "image columns",
                  [](auto& c) -> auto& { return c.image_width; }, 0);
        s.integer("model.image_channels", "", "image channels",
                  [](auto& c) -> auto& { return c.image_channels; }, 0);
        return s;
    }();
    return settings;
}

void upgrade_model_settings(SettingsMap& map) {
    // Settings of the baselines (linformer, reformer), newer than any checkpoint of the
    // other mechanisms: absent, they take their defaults, which those ignore.
    SettingsMap defaults;
    model_settings().write(ModelConfig{}, defaults);
    for (const char* key : {"model.linformer_k", "model.hashes", "model.buckets"})
        if (!map.count(key)) map[key] = defaults.at(key);
    auto old = map.find("model.orthogonal");
    if (old == map.end() || map.count("model.feature_kind")) return;
    PF_CHECK(old->second == "0" || old->second == "1",
             "'model.orthogonal' is '{}', neither 1 nor 0", old->second);
    map["model.feature_kind"] = old->second == "1" ? "orthogonal" : "iid";
    map.erase(old);
}

void ModelConfig::validate() const {
    model_settings().check(*this);
    nn::check_config(attention);
    PF_CHECK((image_height > 0) == (image_width > 0) && (image_width > 0) == (image_channels > 0),
             "image sizes {}x{}x{}: set all three or none", image_height, image_width,
             image_channels);
}

void ModelConfig::check_shapes(const nn::NamedTensors& weights, const std::string& where) const {
    const int64_t dim = attention.dim, heads = attention.heads, features = attention.features;
    auto expect = [&](const std::string& name, const Shape& expected, const char* keys) {
        auto found = std::find_if(weights.begin(), weights.end(),
                                  [&](const auto& named) { return named.first == name; });
        PF_CHECK(found != weights.end(), "{}: tensor model.{} is missing (the configuration's "
                 "{} call for shape {})", where, name, keys, shape_str(expected));
        PF_CHECK(found->second.shape() == expected, "{}: the configuration's {} call for tensor "
                 "model.{} of shape {}, the file holds {}", where, keys, name, shape_str(expected),
                 shape_str(found->second.shape()));
    };
    expect("token_embedding.weight", {vocab, dim}, "vocab and dim");
    if (image_positions()) {
        expect("row_embedding.weight", {image_height, dim}, "image_height and dim");
        expect("column_embedding.weight", {image_width, dim}, "image_width and dim");
        expect("channel_embedding.weight", {image_channels, dim}, "image_channels and dim");
    } else {
        expect("position_embedding.weight", {attention.max_length, dim}, "max_length and dim");
    }
    // Count the blocks in the file before walking `layers` of them.
    int64_t blocks_in_file = std::count_if(weights.begin(), weights.end(), [](const auto& named) {
        const std::string& name = named.first;
        const std::string suffix = ".mlp.up.weight";
        return name.rfind("blocks.", 0) == 0 && name.size() > suffix.size() &&
               name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    });
    PF_CHECK(blocks_in_file == layers, "{}: 'model.layers' is {}, but the file holds {} blocks",
             where, layers, blocks_in_file);
    const bool has_features = nn::uses_random_features(attention.mechanism);
    const bool has_rotations = attention.mechanism == nn::Mechanism::Reformer;
    const bool has_projections = attention.mechanism == nn::Mechanism::Linformer;
    for (int64_t i = 0; i < layers; ++i) {
        std::string block = "blocks." + std::to_string(i) + ".";
        expect(block + "mlp.up.weight", {dim, ff}, "dim and ff");
        if (has_features)
            expect(block + "attention.features", {features, dim / heads}, "features, dim and heads");
        if (has_rotations)
            expect(block + "attention.rotations",
                   {attention.hashes, dim / heads, attention.buckets / 2},
                   "hashes, dim, heads and buckets");
        if (has_projections)
            for (const char* matrix : {"E", "F"})
                expect(block + "attention.sequence_projection." + matrix,
                       {attention.linformer_k, attention.max_length}, "linformer_k and max_length");
    }
    expect("head.weight", {dim, vocab}, "dim and vocab");
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
