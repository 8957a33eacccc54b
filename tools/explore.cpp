// explore.cpp — one HTML page that shows what FAVOR+ does to a trained model's attention.
//
//   build/explore --ckpt runs/demo-text/model.ckpt --text "It is a truth universally
//                 acknowledged" --out results/attention.html
//   build/explore --ckpt runs/demo-image/model.ckpt --image 3 --out results/image.html
//
// The text (at most the model's length; an image model reads test image N, its first
// --length positions) goes once through the model; each attention layer hands its
// per-head queries and keys to an observer, as for build/eval --attention-shift. From
// them nn/feature_error.h computes, for every layer and head, the L x L attention matrix
//   exact     softmax(q k^T / sqrt(d)), the model's own queries and keys;
//   model     FAVOR+ with the model's random features W (what the model computes);
//   fresh     FAVOR+ with a new draw of W (--seed) at m = 16, 64, 256 and 1024,
// each row's total variation from the exact row, and Lemma 2's sizes |x_i|^2, |y_i|^2
// and the mean |x_i + y_j|^2 of the pairs row i attends (docs/approximation.md). Causal
// models attend j <= i: zeros above the diagonal.
//
// The page (tools/util/attention_page.h) embeds these numbers as JSON, rounded to 5
// decimals, and only draws them: no attention is computed in JavaScript. It needs no
// server and no network. A softmax-trained model has no features of its own: its page
// shows the exact and the fresh panels (what FAVOR+ would make of its queries and keys).
// Refused, with exit code 2: other mechanisms (trig, relu, linformer, reformer,
// identity), FAVOR++'s map (its features are not FAVOR+'s), protein models (padding and
// masks are not a text to read), a text longer than the model's length, an empty text,
// and an --out that cannot be written.
#include "engine/files.h"
#include "models/run.h"
#include "models/vocabulary.h"
#include "nn/attention.h"
#include "nn/feature_error.h"
#include "tools/data/images.h"
#include "tools/util/attention_page.h"
#include "tools/util/cli.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>

using namespace pf;
using json = nlohmann::json;

namespace {

// The fresh draws' sizes, the control on the page.
const std::vector<int64_t> kFreshFeatures = {16, 64, 256, 1024};

// A number as the page holds it: 5 decimals (the shortest form of the rounded double).
double rounded(float v) { return std::round(double(v) * 1e5) / 1e5; }

// Rows of one head: a (H, L, L) tensor's head h → L arrays of L numbers.
json matrix_json(const Tensor& a, int64_t h) {
    const int64_t L = a.shape().back();
    const float* p = a.data() + h * L * L;
    json rows = json::array();
    for (int64_t i = 0; i < L; ++i) {
        json row = json::array();
        for (int64_t j = 0; j < L; ++j) row.push_back(rounded(p[i * L + j]));
        rows.push_back(std::move(row));
    }
    return rows;
}

// One head's values of a (H, L) tensor.
json vector_json(const Tensor& v, int64_t h) {
    const int64_t L = v.shape().back();
    json out = json::array();
    for (int64_t i = 0; i < L; ++i) out.push_back(rounded(v.data()[h * L + i]));
    return out;
}

// A token as the page prints it: printable ASCII as is, a newline as ⏎, other bytes as
// \xNN (the model reads bytes, and a lone byte of UTF-8 is no character); images: the
// start token as "start", intensities as numbers.
std::string token_label(int32_t token, models::TaskKind kind) {
    if (kind == models::TaskKind::Image)
        return token == models::kImageStartToken ? "start" : std::to_string(token);
    if (token == '\n') return "\u23ce";
    if (token >= 32 && token < 127) return std::string(1, char(token));
    return fmt::format("\\x{:02x}", token);
}

// The tokens the model reads: the text's bytes, or the start token and test image
// `image`'s first length - 1 intensities.
std::vector<int32_t> read_tokens(const models::TrainedModel& trained, const std::string& text,
                                 int64_t image, int64_t length) {
    const models::ModelConfig& config = trained.model->config();
    const int64_t L = trained.task.seq_len;
    if (trained.task.kind == models::TaskKind::Text) {
        PF_CHECK(image < 0, "--image: the model reads text; give --text");
        PF_CHECK(length == 0, "--length: for image models; a text model reads the whole --text");
        PF_CHECK(!text.empty(), "--text: give the text to read (at most {} bytes)", L);
        PF_CHECK(int64_t(text.size()) <= L, "--text: {} bytes, longer than the model's length "
                 "of {}", text.size(), L);
        std::vector<int32_t> tokens;
        for (char c : text) tokens.push_back(int32_t(uint8_t(c)));
        return tokens;
    }
    PF_CHECK(text.empty(), "--text: the model reads images; give --image N (a test image)");
    PF_CHECK(image >= 0, "--image: give the index of a test image to read");
    if (length == 0) length = std::min<int64_t>(L, 128);
    PF_CHECK(length <= L, "--length {}: longer than the model's length of {}", length, L);
    data::ImageSet test = data::load_image_dataset(trained.task.data, "test", image + 1);
    PF_CHECK(image < test.count, "--image {}: the test set holds {} images", image, test.count);
    PF_CHECK(test.height == config.image_height && test.width == config.image_width &&
                 test.channels == config.image_channels,
             "the test images are {}x{}x{}, but the model was trained on {}x{}x{} images",
             test.height, test.width, test.channels, config.image_height, config.image_width,
             config.image_channels);
    std::vector<int32_t> tokens = {models::kImageStartToken};
    std::vector<int32_t> pixels = data::image_to_tokens(test, image);
    tokens.insert(tokens.end(), pixels.begin(), pixels.begin() + (length - 1));
    return tokens;
}

// W (m, d) drawn as the model draws its own: orthogonal or iid rows.
Tensor draw_features(int64_t m, int64_t d, nn::FeatureKind kind, Generator& gen) {
    return kind == nn::FeatureKind::Iid ? nn::gaussian_iid_matrix(m, d, gen)
                                        : nn::gaussian_orthogonal_matrix(m, d, gen);
}

// Every layer and head: the matrices, the rows' total variation and Lemma 2's sizes.
json layers_json(models::SequenceModel& model, const std::vector<int32_t>& tokens, uint64_t seed) {
    const nn::AttentionConfig& config = model.config().attention;
    const bool has_features = config.mechanism == nn::Mechanism::Favor;
    const int64_t L = int64_t(tokens.size());
    std::vector<nn::MultiHeadAttention*> layers = model.attention_layers();
    std::vector<std::pair<Tensor, Tensor>> seen(layers.size());  // q, k: (1, H, L, d) each
    for (size_t l = 0; l < layers.size(); ++l)
        layers[l]->set_observer([&seen, l](const Tensor& q, const Tensor& k) { seen[l] = {q, k}; });
    {
        NoGradGuard no_grad;
        model.eval();
        model.forward(tokens, 1, L);
    }
    for (nn::MultiHeadAttention* layer : layers) layer->set_observer({});
    Generator gen(seed);
    json out = json::array();
    for (size_t l = 0; l < layers.size(); ++l) {
        const auto& [q, k] = seen[l];
        const int64_t H = q.shape()[1], d = q.shape()[3];
        const Shape heads = {H, L, L};
        Tensor exact = reshape(nn::softmax_attention_matrix(q, k, config.causal), heads);
        Tensor trained;
        if (has_features)
            trained = reshape(nn::favor_attention_matrix(q, k, layers[l]->features(), config.causal), heads);
        std::vector<Tensor> fresh;
        for (int64_t m : kFreshFeatures)
            fresh.push_back(reshape(nn::favor_attention_matrix(
                q, k, draw_features(m, d, config.feature_kind, gen), config.causal), heads));
        nn::RowNorms norms = nn::row_norms(q, k, config.causal);
        json layer = json::array();
        for (int64_t h = 0; h < H; ++h) {
            json head;
            head["softmax"] = matrix_json(exact, h);
            head["model"] = has_features ? matrix_json(trained, h) : json(nullptr);
            head["model_tv"] = has_features
                                   ? vector_json(nn::row_total_variation(trained, exact), h)
                                   : json(nullptr);
            head["fresh"] = json::array(), head["fresh_tv"] = json::array();
            for (const Tensor& f : fresh) {
                head["fresh"].push_back(matrix_json(f, h));
                head["fresh_tv"].push_back(vector_json(nn::row_total_variation(f, exact), h));
            }
            head["query_norm2"] = vector_json(reshape(norms.query_norm2, {H, L}), h);
            head["key_norm2"] = vector_json(reshape(norms.key_norm2, {H, L}), h);
            head["sum_norm2"] = vector_json(reshape(norms.sum_norm2, {H, L}), h);
            layer.push_back(std::move(head));
        }
        out.push_back(std::move(layer));
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Write an HTML page of a model's attention: exact softmax, FAVOR+ with its "
                 "features and with fresh ones",
                 "explore"};
    std::string checkpoint, text, out = "results/attention.html";
    int64_t image = -1;  // none
    int64_t length = 0;  // images: 0 is the model's length, at most 128
    uint64_t seed = 0;
    app.add_option("--ckpt", checkpoint, "model checkpoint (model.ckpt of a run)")->required();
    app.add_option("--text", text, "text models: the text to read (at most the model's length)");
    app.add_option("--image", image, "image models: the index of the test image to read")
        ->check(in_range(0, 1e9));
    app.add_option("--length", length, "image models: positions to show, start token first "
                   "(default: the model's length, at most 128)")
        ->check(in_range(1, 1e6));
    app.add_option("--out", out, "the HTML page to write")->check(output_file());
    add_seed_option(app, seed, "seed of the fresh draws of random features");
    add_threads_option(app);
    return run_program(app, argc, argv, [&] {
        check_output_path(out, "--out");
        check_replaceable(out);
        Generator dropout(0);
        models::TrainedModel trained = models::load_model(checkpoint, dropout);
        models::SequenceModel& model = *trained.model;
        const nn::AttentionConfig& config = model.config().attention;
        PF_CHECK(trained.task.kind != models::TaskKind::Protein, "{}: a protein model; the "
                 "explorer reads text and image models (protein batches hold padding and masks)",
                 checkpoint);
        PF_CHECK(config.mechanism == nn::Mechanism::Favor || config.mechanism == nn::Mechanism::Softmax,
                 "{}: the model's attention is {}; the explorer compares FAVOR+ and softmax "
                 "attention (train with --attention favor or softmax)",
                 checkpoint, nn::mechanism_name(config.mechanism));
        PF_CHECK(config.feature_kind != nn::FeatureKind::Optimal, "{}: the model uses FAVOR++'s "
                 "feature map, which the explorer does not draw; it shows FAVOR+", checkpoint);
        std::vector<int32_t> tokens = read_tokens(trained, text, image, length);

        json page;
        page["checkpoint"] = checkpoint;
        page["task"] = models::task_names()[size_t(trained.task.kind)];
        page["mechanism"] = nn::mechanism_name(config.mechanism);
        page["features"] = config.features;
        page["causal"] = config.causal;
        page["step"] = trained.step;
        page["seed"] = seed;
        // The legend's link: docs/favor.md of this checkout, seen from the page's folder.
        page["favor_doc"] = std::filesystem::absolute("docs/favor.md")
                                .lexically_relative(std::filesystem::absolute(out).parent_path())
                                .string();
        page["fresh_features"] = kFreshFeatures;
        page["tokens"] = json::array();
        for (int32_t t : tokens) page["tokens"].push_back(token_label(t, trained.task.kind));
        page["layers"] = layers_json(model, tokens, seed);
        write_file(out, attention_page(page.dump()));
        fmt::print("wrote {}: {} layers x {} heads, {} positions ({} attention{})\n", out,
                   model.config().layers, config.heads, tokens.size(),
                   nn::mechanism_name(config.mechanism),
                   config.causal ? ", causal" : "");
        return 0;
    });
}
