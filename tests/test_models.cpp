// test_models.cpp — the sequence model: causality, recurrent decoding against the full
// forward, configuration round trip, sampling, and a tiny model that learns.
#include "gradcheck.h"

#include "models/evaluate.h"
#include "models/generate.h"
#include "models/run.h"
#include "models/sequence_model.h"
#include "nn/optim.h"

#include <cmath>

using namespace pf;
using namespace pf::models;
using namespace pf::testing;

namespace {
ModelConfig tiny_config(const std::string& attention) {
    ModelConfig c;
    c.vocab = 11;
    c.attention.dim = 16;
    c.layers = 2;
    c.attention.heads = 2;
    c.ff = 32;
    c.attention.max_length = 32;
    c.attention.mechanism = nn::parse_mechanism(attention);
    c.attention.features = 16;
    c.attention.chunk = 4;
    c.attention.linformer_k = 8;
    c.attention.hashes = 2, c.attention.buckets = 4;
    return c;
}

std::vector<int32_t> random_tokens(int64_t n, int64_t vocab, Generator& gen) {
    std::vector<int32_t> t(n);
    for (auto& v : t) v = int32_t(gen.below(uint64_t(vocab)));
    return t;
}
}  // namespace

TEST_CASE("causal model: later tokens never change earlier logits", "[models]") {
    for (std::string attention : {"softmax", "favor", "relu", "trig", "identity", "reformer"}) {
        INFO(attention);
        Generator init(1), dropout(2), gen(3);
        SequenceModel model(tiny_config(attention), init, dropout);
        std::vector<int32_t> a = random_tokens(2 * 20, 11, gen), b = a;
        for (int64_t t = 12; t < 20; ++t) b[t] = (b[t] + 5) % 11, b[20 + t] = (b[20 + t] + 3) % 11;
        NoGradGuard no_grad;
        Tensor la = slice(model.forward(a, 2, 20), 1, 0, 12), lb = slice(model.forward(b, 2, 20), 1, 0, 12);
        double scale = 0;
        for (float v : la.to_vector()) scale = std::max(scale, double(std::fabs(v)));
        REQUIRE(max_abs_diff(la, lb) <= 1e-5 * scale);
    }
}

TEST_CASE("recurrent decoding gives the full forward's logits, text and image positions",
          "[models]") {
    for (std::string attention : {"softmax", "favor", "relu", "identity", "reformer"}) {
        for (bool image : {false, true}) {
            INFO(attention << " image " << image);
            ModelConfig config = tiny_config(attention);
            if (image) config.image_height = 2, config.image_width = 3, config.image_channels = 3;
            Generator init(4), dropout(5), gen(6);
            SequenceModel model(config, init, dropout);
            const int64_t B = 2, L = 18;
            std::vector<int32_t> tokens = random_tokens(B * L, 11, gen);
            NoGradGuard no_grad;
            Tensor full = model.forward(tokens, B, L);  // (B, L, V)
            Decoder decoder = model.start_decoding(B);
            for (int64_t t = 0; t < L; ++t) {
                Tensor logits = model.decode_step({tokens[t], tokens[L + t]}, decoder);
                Tensor expected = reshape(slice(full, 1, t, t + 1), {B, 11});
                INFO("position " << t);
                REQUIRE(max_abs_diff(logits, expected) < 1e-4);
            }
        }
    }
}

TEST_CASE("model settings survive a round trip through a checkpoint's map; bad ones are "
          "named", "[models][settings]") {
    ModelConfig c = tiny_config("relu");
    c.dropout = 0.125f;
    c.attention.feature_kind = nn::FeatureKind::Iid;
    c.image_height = 4, c.image_width = 4, c.image_channels = 1;
    SettingsMap map;
    model_settings().write(c, map);
    REQUIRE(map.at("model.attention") == "relu");
    REQUIRE(map.at("model.feature_kind") == "iid");
    REQUIRE(map.at("model.dropout") == "0.125");
    ModelConfig back;
    model_settings().read(map, "test", back);
    SettingsMap again;
    model_settings().write(back, again);
    REQUIRE(again == map);
    REQUIRE(back.attention.mechanism == nn::Mechanism::Relu);
    REQUIRE(back.attention.feature_kind == nn::FeatureKind::Iid);

    auto refused = [&](const std::string& key, const std::string& value) {
        SettingsMap bad = map;
        if (value.empty()) bad.erase(key);
        else bad[key] = value;
        ModelConfig out;
        model_settings().read(bad, "run/model.ckpt", out);
    };
    REQUIRE_THROWS_WITH(refused("model.heads", ""),
                        Catch::Contains("run/model.ckpt") && Catch::Contains("'model.heads'"));
    REQUIRE_THROWS_WITH(refused("model.layers", "four"), Catch::Contains("'model.layers'") &&
                                                           Catch::Contains("not a whole decimal"));
    REQUIRE_THROWS_WITH(refused("model.layers", "2.5"), Catch::Contains("not a whole decimal"));
    REQUIRE_THROWS_WITH(refused("model.layers", "0"), Catch::Contains("0 is outside 1 .. "));
    REQUIRE_THROWS_WITH(refused("model.attention", "performer"),
                        Catch::Contains("'performer' is not one of softmax, favor"));
    REQUIRE_THROWS_WITH(refused("model.dropout", "nan"), Catch::Contains("not a finite number"));
    REQUIRE_THROWS_WITH(refused("model.dropout", "1"), Catch::Contains("outside 0 .. 0.99"));
    c.attention.heads = 3;
    REQUIRE_THROWS_WITH(c.validate(), Catch::Contains("divisible"));
    c.attention.heads = 0;
    REQUIRE_THROWS_WITH(model_settings().check(c), Catch::Contains("model.heads"));
    REQUIRE_THROWS_WITH(c.validate(), Catch::Contains("0 heads"));
}

TEST_CASE("checkpoints from before the settings table: model.orthogonal reads as the feature "
          "kind", "[models][settings]") {
    for (auto [old_value, kind] : std::vector<std::pair<std::string, std::string>>{
             {"1", "orthogonal"}, {"0", "iid"}}) {
        SettingsMap map;
        model_settings().write(tiny_config("favor"), map);
        map.erase("model.feature_kind");
        map["model.orthogonal"] = old_value;
        upgrade_model_settings(map);
        REQUIRE(map.count("model.orthogonal") == 0);
        REQUIRE(map.at("model.feature_kind") == kind);
        ModelConfig read;
        model_settings().read(map, "old.ckpt", read);
        REQUIRE((read.attention.feature_kind == nn::FeatureKind::Orthogonal) == (kind == "orthogonal"));
    }
    SettingsMap map{{"model.orthogonal", "2"}};
    REQUIRE_THROWS_WITH(upgrade_model_settings(map), Catch::Contains("model.orthogonal"));
}

TEST_CASE("checkpoints from before the baselines: the settings they lack read as their "
          "defaults", "[models][settings]") {
    const ModelConfig defaults;
    SettingsMap map;
    model_settings().write(tiny_config("favor"), map);
    const SettingsMap written = map;
    for (const char* key : {"model.linformer_k", "model.hashes", "model.buckets"}) map.erase(key);
    ModelConfig refused;
    REQUIRE_THROWS_WITH(model_settings().read(map, "old.ckpt", refused),
                        Catch::Contains("old.ckpt") && Catch::Contains("model.linformer_k"));
    upgrade_model_settings(map);
    ModelConfig read;
    model_settings().read(map, "old.ckpt", read);
    REQUIRE(read.attention.linformer_k == defaults.attention.linformer_k);
    REQUIRE(read.attention.hashes == defaults.attention.hashes);
    REQUIRE(read.attention.buckets == defaults.attention.buckets);
    REQUIRE(read.attention.mechanism == nn::Mechanism::Favor);
    REQUIRE(read.attention.features == 16);
    read.validate();
    // Present keys are kept as they are.
    SettingsMap current = written;
    upgrade_model_settings(current);
    REQUIRE(current == written);
}

TEST_CASE("a causal linformer model is refused, saying why; a masked one runs", "[models]") {
    ModelConfig config = tiny_config("linformer");
    REQUIRE_THROWS_WITH(config.validate(), Catch::Contains("linformer cannot be causal"));
    Generator init(14), dropout(15), gen(16);
    REQUIRE_THROWS_WITH(SequenceModel(config, init, dropout), Catch::Contains("cannot be causal"));
    config.attention.causal = false;
    SequenceModel model(config, init, dropout);
    NoGradGuard no_grad;
    Tensor logits = model.forward(random_tokens(2 * 20, 11, gen), 2, 20);
    REQUIRE(logits.shape() == Shape{2, 20, 11});
    for (float v : logits.to_vector()) REQUIRE(std::isfinite(v));
    REQUIRE_THROWS_WITH(model.start_decoding(1), Catch::Contains("causal"));
}

TEST_CASE("sample_token: argmax at temperature 0, the softmax distribution otherwise",
          "[models]") {
    std::vector<float> logits{0.0f, std::log(3.0f), -50.0f, 0.0f};
    Generator gen(7);
    REQUIRE(sample_token(logits.data(), 4, 0.0f, gen) == 1);
    std::vector<int> counts(4);
    const int n = 20000;
    for (int i = 0; i < n; ++i) counts[sample_token(logits.data(), 4, 1.0f, gen)]++;
    // Probabilities 1/5, 3/5, ~0, 1/5; standard errors about 0.003.
    REQUIRE(counts[0] / double(n) == Approx(0.2).margin(0.015));
    REQUIRE(counts[1] / double(n) == Approx(0.6).margin(0.015));
    REQUIRE(counts[2] == 0);
}

TEST_CASE("a tiny favor language model learns a repeating pattern in seconds", "[models]") {
    ModelConfig config = tiny_config("favor");
    config.vocab = 8;
    Generator init(8), dropout(9), gen(10);
    SequenceModel model(config, init, dropout);
    nn::AdamW optimizer(model.named_parameters(), 1e-2f);
    // Sequences counting up mod 8 from a random start: next token = token + 1.
    auto batch = [&](std::vector<int32_t>& inputs, std::vector<int32_t>& targets) {
        inputs.assign(4 * 16, 0);
        targets.assign(4 * 16, 0);
        for (int64_t b = 0; b < 4; ++b) {
            int32_t start = int32_t(gen.below(8));
            for (int64_t t = 0; t < 16; ++t) {
                inputs[b * 16 + t] = (start + t) % 8;
                targets[b * 16 + t] = (start + t + 1) % 8;
            }
        }
    };
    std::vector<int32_t> inputs, targets;
    float first = 0, last = 0;
    for (int step = 0; step < 60; ++step) {
        batch(inputs, targets);
        Tensor loss = batch_loss(model.forward(inputs, 4, 16), targets);
        if (step == 0) first = loss.item();
        last = loss.item();
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
    }
    INFO("loss " << first << " -> " << last);
    REQUIRE(first > 1.8f);   // about ln 8 = 2.08 at the start
    REQUIRE(last < 0.2f);
}

TEST_CASE("recurrent generation samples the same tokens as full recomputation", "[models]") {
    for (std::string attention : {"favor", "softmax", "reformer"}) {
        INFO(attention);
        Generator init(11), dropout(12);
        SequenceModel model(tiny_config(attention), init, dropout);
        model.eval();
        Generator a(13), b(13);
        std::vector<int32_t> prompt{3, 1, 4};
        std::vector<int32_t> recurrent = generate(model, {prompt}, 20, 1.0f, a)[0];
        std::vector<int32_t> full = generate_by_full_forward(model, prompt, 20, 1.0f, b);
        REQUIRE(recurrent.size() == 23);
        REQUIRE(recurrent == full);
    }
}
