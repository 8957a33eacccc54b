// test_explore.cpp — build/explore's attention page, twice over: its embedded numbers
// (shapes, rows that sum to 1, nothing above the diagonal of a causal model, the exact
// panel against a softmax of the model's queries and keys computed here, the model's
// FAVOR+ panel against the plain positive features), and the page itself in a real
// browser: headless Chromium loads it from a file, runs its script, and the test reads
// the DOM it leaves (--dump-dom): the panels painted, another layer and head (picked by
// the URL's hash) painted differently, the hovered row's tokens shaded, and no error.
//
// The browser test needs Debian's chromium (make deps installs it); without it the test
// fails, saying so.
#include "programs.h"

#include "models/run.h"
#include "nn/attention.h"
#include "tools/training/trainer.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <regex>
#include <string>

using namespace pf;
using namespace pf::testing;
using json = nlohmann::json;

namespace {

constexpr int64_t kLength = 24;                  // the tiny models' length
const std::string kText = "a truth universally ack";  // 23 bytes

// A tiny model of `task` with `mechanism`, trained for 2 steps into dir/name.
std::string train_tiny(const TempDir& dir, const std::string& name, const std::string& task,
                       const std::string& data, nn::Mechanism mechanism) {
    training::TrainOptions o;
    o.task.kind = task_kind(task);
    o.task.data = data;
    if (task == "protein") o.task.objective = models::Objective::Masked;
    o.model.attention.mechanism = mechanism;
    o.model.attention.dim = 16, o.model.attention.heads = 2, o.model.attention.features = 8;
    o.model.layers = 2, o.model.ff = 32;
    o.task.seq_len = kLength, o.batch = 2, o.steps = 2, o.eval_batches = 1;
    o.out = dir.file(name), o.quiet = true;
    REQUIRE(training::train(o) == 0);
    return dir.file(name + "/model.ckpt");
}

std::string explore(const std::string& ckpt, const std::string& text, const std::string& out) {
    return "build/explore --ckpt " + ckpt + " --text '" + text + "' --out " + out;
}

// The JSON the page embeds.
json page_data(const std::string& page_path) {
    const std::string page = read_file(page_path);
    const std::string open = "<script type=\"application/json\" id=\"attention-data\">";
    size_t start = page.find(open);
    REQUIRE(start != std::string::npos);
    start += open.size();
    size_t end = page.find("</script>", start);
    REQUIRE(end != std::string::npos);
    return json::parse(page.substr(start, end - start));
}

// Each of the model's layers' queries and keys, (1, H, L, d), for `text`.
std::vector<std::pair<Tensor, Tensor>> queries_and_keys(models::SequenceModel& model,
                                                        const std::string& text) {
    std::vector<nn::MultiHeadAttention*> layers = model.attention_layers();
    std::vector<std::pair<Tensor, Tensor>> seen(layers.size());
    for (size_t l = 0; l < layers.size(); ++l)
        layers[l]->set_observer([&seen, l](const Tensor& q, const Tensor& k) { seen[l] = {q, k}; });
    std::vector<int32_t> tokens;
    for (char c : text) tokens.push_back(int32_t(uint8_t(c)));
    NoGradGuard no_grad;
    model.eval();
    model.forward(tokens, 1, int64_t(tokens.size()));
    return seen;
}

// Row i of head h (of (1, H, L, n) tensors) as doubles.
std::vector<double> row_of(const Tensor& t, int64_t h, int64_t i) {
    const int64_t L = t.shape()[2], n = t.shape()[3];
    const float* p = t.data() + (h * L + i) * n;
    return std::vector<double>(p, p + n);
}

// Causal attention row i from scores s_ij (j <= i), done here: s / sum s.
std::vector<double> normalised(std::vector<double> scores, int64_t i) {
    double total = 0;
    for (int64_t j = 0; j <= i; ++j) total += scores[j];
    for (size_t j = 0; j < scores.size(); ++j) scores[j] = int64_t(j) <= i ? scores[j] / total : 0;
    return scores;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (size_t r = 0; r < a.size(); ++r) s += a[r] * b[r];
    return s;
}

// The value of attribute `name` of the element whose id is `id` in an HTML dump ("" if none).
std::string attribute(const std::string& dom, const std::string& id, const std::string& name) {
    size_t at = dom.find("id=\"" + id + "\"");
    if (at == std::string::npos) return "";
    size_t open = dom.rfind('<', at), close = dom.find('>', at);
    std::string tag = dom.substr(open, close - open);
    std::smatch match;
    if (!std::regex_search(tag, match, std::regex(" " + name + "=\"([^\"]*)\""))) return "";
    return match[1];
}

// The DOM of `page` (a file) with `hash`, after its scripts ran, from headless Chromium;
// Chromium's own log (console messages included) into `log`.
std::string browse(const TempDir& dir, const std::string& page, const std::string& hash,
                   const std::string& log) {
    Command c = run("{ timeout 60 chromium --headless --no-sandbox --disable-gpu "
                    "--no-first-run --user-data-dir=" + dir.file("profile") +
                    " --enable-logging=stderr --v=0 --virtual-time-budget=5000 --dump-dom "
                    "'file://" + page + hash + "' 2>" + log + "; }");
    INFO(c.output << read_file(log));
    REQUIRE(c.exit_code == 0);
    return c.output;
}

}  // namespace

TEST_CASE("explore: the page's numbers are the model's attention: rows of 1, causal, the "
          "exact panel a softmax of its queries and keys",
          "[explore][programs]") {
    TempDir dir;
    std::string corpus = write_corpus(dir);
    std::string ckpt = train_tiny(dir, "favor", "text", corpus, nn::Mechanism::Favor);
    Command c = run_bounded(explore(ckpt, kText, dir.file("out/page.html")));
    INFO(c.output);
    REQUIRE(c.exit_code == 0);
    json data = page_data(dir.file("out/page.html"));
    const int64_t L = int64_t(kText.size());
    REQUIRE(data["tokens"].size() == size_t(L));
    REQUIRE(data["tokens"][2] == "t");
    REQUIRE(data["causal"] == true);
    REQUIRE(data["fresh_features"] == json({16, 64, 256, 1024}));
    REQUIRE(data["layers"].size() == 2);

    Generator dropout(0);
    models::TrainedModel trained = models::load_model(ckpt, dropout);
    auto seen = queries_and_keys(*trained.model, kText);
    std::vector<nn::MultiHeadAttention*> layers = trained.model->attention_layers();
    const double entry = 1e-5;  // 5 decimals, and float32 arithmetic
    for (size_t l = 0; l < 2; ++l) {
        REQUIRE(data["layers"][l].size() == 2);
        const auto& [q, k] = seen[l];
        const int64_t d = q.shape()[3];
        // The plain positive features of the model's W, no stabiliser: (1, H, L, m).
        Tensor phi_q = nn::positive_random_features(q, layers[l]->features());
        Tensor phi_k = nn::positive_random_features(k, layers[l]->features());
        for (int64_t h = 0; h < 2; ++h) {
            INFO("layer " << l << " head " << h);
            const json& head = data["layers"][l][h];
            std::vector<json> panels = {head["softmax"], head["model"]};
            for (const json& f : head["fresh"]) panels.push_back(f);
            REQUIRE(panels.size() == 6);
            for (const json& a : panels) {
                REQUIRE(a.size() == size_t(L));
                for (int64_t i = 0; i < L; ++i) {
                    REQUIRE(a[i].size() == size_t(L));
                    double total = 0;
                    for (int64_t j = 0; j < L; ++j) {
                        total += a[i][j].get<double>();
                        if (j > i) REQUIRE(a[i][j].get<double>() == 0.0);  // causal
                    }
                    REQUIRE(total == Approx(1.0).margin(L * 5e-6 + 1e-5));
                }
            }
            for (const char* key : {"model_tv", "query_norm2", "key_norm2", "sum_norm2"})
                REQUIRE(head[key].size() == size_t(L));
            REQUIRE(head["fresh_tv"].size() == 4);
            for (int64_t i = 0; i < L; ++i) {
                // Exact: softmax(q_i . k_j / sqrt(d)) over j <= i, in double here.
                std::vector<double> qi = row_of(q, h, i), scores(L), favor(L);
                double largest = -1e300;
                for (int64_t j = 0; j <= i; ++j)
                    largest = std::max(largest, dot(qi, row_of(k, h, j)) / std::sqrt(double(d)));
                for (int64_t j = 0; j < L; ++j) {
                    scores[j] = j <= i ? std::exp(dot(qi, row_of(k, h, j)) / std::sqrt(double(d)) - largest) : 0;
                    favor[j] = dot(row_of(phi_q, h, i), row_of(phi_k, h, j));
                }
                std::vector<double> exact = normalised(scores, i), model = normalised(favor, i);
                double tv = 0;
                for (int64_t j = 0; j < L; ++j) {
                    REQUIRE(head["softmax"][i][j].get<double>() == Approx(exact[j]).margin(entry));
                    REQUIRE(head["model"][i][j].get<double>() == Approx(model[j]).margin(1e-4));
                    tv += 0.5 * std::fabs(model[j] - exact[j]);
                }
                REQUIRE(head["model_tv"][i].get<double>() == Approx(tv).margin(1e-3));
                // |x_i|^2 = |q_i|^2 / sqrt(d)
                REQUIRE(head["query_norm2"][i].get<double>() ==
                        Approx(dot(qi, qi) / std::sqrt(double(d))).epsilon(1e-3).margin(1e-4));
            }
        }
        // More fresh features, nearer the exact rows on the whole.
        double few = 0, many = 0;
        for (int64_t h = 0; h < 2; ++h)
            for (int64_t i = 0; i < L; ++i)
                few += data["layers"][l][h]["fresh_tv"][0][i].get<double>(),
                    many += data["layers"][l][h]["fresh_tv"][3][i].get<double>();
        REQUIRE(many < few);
    }
}

TEST_CASE("explore: a softmax model shows the exact and fresh panels; other mechanisms, "
          "protein models, long texts and bad --out are refused",
          "[explore][programs]") {
    TempDir dir;
    std::string corpus = write_corpus(dir);
    std::string favor = train_tiny(dir, "favor", "text", corpus, nn::Mechanism::Favor);
    std::string softmax = train_tiny(dir, "softmax", "text", corpus, nn::Mechanism::Softmax);
    Command c = run_bounded(explore(softmax, kText, dir.file("softmax.html")));
    INFO(c.output);
    REQUIRE(c.exit_code == 0);
    json data = page_data(dir.file("softmax.html"));
    REQUIRE(data["layers"][0][0]["model"].is_null());
    REQUIRE(data["layers"][0][0]["fresh"].size() == 4);

    auto refused = [](const std::string& command, const std::string& named) {
        Command r = run_bounded(command);
        INFO(command << "\n" << r.output);
        REQUIRE(r.exit_code == 2);
        REQUIRE_THAT(r.output, Catch::Contains("error") && Catch::Contains(named));
    };
    std::string relu = train_tiny(dir, "relu", "text", corpus, nn::Mechanism::Relu);
    refused(explore(relu, kText, dir.file("relu.html")), "relu");
    std::string protein = train_tiny(dir, "protein", "protein", write_fasta(dir), nn::Mechanism::Favor);
    refused(explore(protein, kText, dir.file("protein.html")), "protein");
    refused(explore(favor, std::string(kLength + 1, 'a'), dir.file("long.html")), "--text");
    refused(explore(favor, "", dir.file("empty.html")), "--text");
    refused("build/explore --ckpt " + favor + " --image 0 --out " + dir.file("i.html"), "--image");
    refused(explore(favor, kText, "''"), "--out");
    refused(explore(favor, kText, dir.path().string() + "/"), "--out");
    refused(explore(favor, kText, corpus + "/page.html"), "page.html");  // a file as a folder
    // An image model reads a test image: the start token, then its first intensities.
    TempDir images;
    std::string image = train_tiny(dir, "image", "image", write_image_folder(images, 12, 6, 6),
                                   nn::Mechanism::Favor);
    Command shown = run_bounded("build/explore --ckpt " + image + " --image 3 --length 10 --out " +
                                dir.file("image.html"));
    INFO(shown.output);
    REQUIRE(shown.exit_code == 0);
    json pixels = page_data(dir.file("image.html"));
    REQUIRE(pixels["tokens"].size() == 10);
    REQUIRE(pixels["tokens"][0] == "start");
    REQUIRE(pixels["layers"][1][1]["softmax"].size() == 10);
    refused("build/explore --ckpt " + image + " --image 12 --out " + dir.file("i.html"), "--image");
    refused("build/explore --ckpt " + image + " --image 1 --length 37 --out " + dir.file("i.html"),
            "--length");
    refused(explore(image, kText, dir.file("i.html")), "--text");
    for (const char* name : {"relu.html", "protein.html", "long.html", "empty.html", "i.html"})
        REQUIRE_FALSE(std::filesystem::exists(dir.file(name)));
}

TEST_CASE("explore: the page in headless Chromium draws every panel, follows the layer and "
          "head picked, shades the hovered row and logs no error",
          "[explore][browser]") {
    Command which = run("command -v chromium");
    if (which.exit_code != 0)
        FAIL("chromium not found: the browser test of build/explore's page needs it; install "
             "it with `apt-get install chromium` (or `make deps` as root)");
    TempDir dir;
    std::string ckpt = train_tiny(dir, "favor", "text", write_corpus(dir), nn::Mechanism::Favor);
    const std::string page = dir.file("page.html");
    Command c = run_bounded(explore(ckpt, kText, page));
    INFO(c.output);
    REQUIRE(c.exit_code == 0);

    std::string first = browse(dir, page, "#layer=0&head=0&m=16&row=5", dir.file("first.log"));
    std::string second = browse(dir, page, "#layer=1&head=1&m=256&row=20", dir.file("second.log"));
    for (const std::string& dom : {first, second}) {
        INFO(dom.substr(0, 4000));
        REQUIRE(attribute(dom, "status", "data-state") == "ready");
        REQUIRE(attribute(dom, "status", "data-errors") == "0");
        for (const char* panel : {"data-ink-softmax", "data-ink-model", "data-ink-fresh"}) {
            INFO(panel);
            REQUIRE(std::stod(attribute(dom, "status", panel)) > 0);  // painted
        }
    }
    for (const std::string& log : {dir.file("first.log"), dir.file("second.log")}) {
        std::string text = read_file(log);
        INFO(text);
        REQUIRE(text.find("Uncaught") == std::string::npos);
    }
    // What the hash picked is what was drawn, and it differs.
    REQUIRE(attribute(first, "status", "data-layer") == "0");
    REQUIRE(attribute(first, "status", "data-head") == "0");
    REQUIRE(attribute(first, "status", "data-m") == "16");
    REQUIRE(attribute(second, "status", "data-layer") == "1");
    REQUIRE(attribute(second, "status", "data-head") == "1");
    REQUIRE(attribute(second, "status", "data-m") == "256");
    for (const char* panel : {"data-ink-softmax", "data-ink-model", "data-ink-fresh"})
        REQUIRE(attribute(first, "status", panel) != attribute(second, "status", panel));
    // The hovered row (5, then 20) shades the keys it attends in each strip: j <= i.
    REQUIRE(attribute(first, "status", "data-row") == "5");
    REQUIRE(attribute(first, "status", "data-shaded") == "6,6,6");
    REQUIRE(attribute(second, "status", "data-shaded") == "21,21,21");

    // The error catcher catches: a page whose script throws says so.
    std::string broken = read_file(page);
    const std::string call = "  render();\n  window.addEventListener";
    REQUIRE(broken.find(call) != std::string::npos);
    broken.replace(broken.find(call), call.size(),
                   "  render();\n  console.error('planted');\n  window.addEventListener");
    write_file(dir.file("broken.html"), broken);
    std::string dom = browse(dir, dir.file("broken.html"), "", dir.file("broken.log"));
    REQUIRE(attribute(dom, "status", "data-state") == "error");
    REQUIRE(attribute(dom, "status", "data-errors") == "1");
    REQUIRE_THAT(dom, Catch::Contains("planted"));
}
