// test_tasks.cpp — the image and protein tasks end to end on small files the tests
// write: bits per dimension, factorised positions, sampling a PNG grid, padding, and
// tiny models that learn.
#include "gradcheck.h"
#include "programs.h"

#include "models/sequence_model.h"
#include "models/vocabulary.h"
#include "tools/training/tasks.h"
#include "tools/training/trainer.h"
#include "tools/util/csv.h"
#include "engine/files.h"

#include <stb/stb_image.h>
#include <sys/wait.h>

#include <cmath>

using namespace pf;
using namespace pf::testing;

namespace {

Tensor parameter(const nn::Module& module, const std::string& name) {
    for (auto& [n, t] : module.named_parameters())
        if (n == name) return t;
    FAIL("no parameter " << name);
    return {};
}

training::TrainOptions tiny(const std::string& task, const std::string& data, const std::string& out) {
    training::TrainOptions o;
    o.task.kind = task_kind(task);
    o.task.data = data;
    o.model.attention.dim = 32;
    o.model.attention.heads = 2;
    o.model.layers = 2;
    o.model.ff = 64;
    o.model.attention.features = 16;
    o.task.seq_len = 48;
    o.batch = 8;
    o.steps = 40;
    o.lr = 3e-3f;
    o.eval_batches = 1;
    o.out = out;
    o.quiet = true;
    return o;
}

// First and last training losses of a run, from its log.
std::pair<double, double> first_and_last_loss(const std::string& run) {
    CsvTable log = read_csv(run + "/log.csv");
    std::vector<double> losses;
    for (const auto& row : log.rows)
        if (row[log.column("split")] == "train") losses.push_back(std::stod(row[log.column("loss")]));
    REQUIRE(losses.size() >= 10);
    double first = 0, last = 0;
    for (size_t i = 0; i < 5; ++i) first += losses[i] / 5, last += losses[losses.size() - 1 - i] / 5;
    return {first, last};
}


}  // namespace

TEST_CASE("image task: a uniform model scores exactly 8 bits per dimension", "[tasks]") {
    TempDir dir;
    std::string spec = write_image_folder(dir, 6, 4, 4);
    models::TaskConfig options;
    options.kind = models::TaskKind::Image;
    options.data = spec;
    auto task = training::make_task(options);
    models::ModelConfig config;
    config.attention.dim = 8, config.attention.heads = 2, config.layers = 1, config.ff = 8;
    models::configure_model(config, options, task->image_shape());
    REQUIRE(config.vocab == 257);
    REQUIRE(task->sequence_length(1000) == 16);
    Generator init(1), dropout(2);
    models::SequenceModel model(config, init, dropout);
    // Zero output weights: equal logits for the 256 intensities; the start token, which
    // is never a target, gets none of the probability.
    Tensor w = parameter(model, "head.weight"), b = parameter(model, "head.bias");
    std::fill_n(w.mutable_data(), w.numel(), 0.0f);
    std::fill_n(b.mutable_data(), b.numel(), 0.0f);
    b.mutable_data()[256] = -1e9f;
    models::Evaluation e = models::evaluate(model, models::TaskKind::Image, task->held_out("test", 16), 4, 10);
    REQUIRE(e.tokens == 6 * 16);
    REQUIRE(e.metrics[0].name == "bits_per_dim");
    REQUIRE(e.metrics[0].value == Approx(8.0).epsilon(1e-5));
}

TEST_CASE("image positions are factorised: row + column + channel embeddings", "[tasks]") {
    models::ModelConfig config;
    config.attention.dim = 4, config.attention.heads = 1, config.layers = 1, config.ff = 4, config.vocab = 257;
    config.image_height = 2, config.image_width = 3, config.image_channels = 2;
    config.attention.max_length = 12;
    Generator init(3), dropout(4);
    models::SequenceModel model(config, init, dropout);
    Tensor rows = parameter(model, "row_embedding.weight"), columns = parameter(model, "column_embedding.weight"),
           channels = parameter(model, "channel_embedding.weight");
    NoGradGuard no_grad;
    Tensor positions = model.position_embedding(0, 12);
    for (int64_t p = 0; p < 12; ++p) {
        int64_t r = p / 6, c = (p / 2) % 3, ch = p % 2;  // raster order: row, column, channel
        for (int64_t j = 0; j < 4; ++j)
            REQUIRE(positions.at({p, j}) ==
                    Approx(rows.at({r, j}) + columns.at({c, j}) + channels.at({ch, j})));
    }
    REQUIRE_THROWS_WITH(model.position_embedding(10, 3), Catch::Contains("longer than an image"));
}

TEST_CASE("a tiny image model learns in seconds; sample writes a PNG grid of the asked size",
          "[tasks][programs]") {
    TempDir dir;
    std::string spec = write_image_folder(dir, 40, 6, 6);
    std::string run = dir.file("run");
    training::TrainOptions o = tiny("image", spec, run);
    REQUIRE(training::train(o) == 0);
    auto [first, last] = first_and_last_loss(run);
    INFO("loss " << first << " -> " << last);
    REQUIRE(last < 0.6 * first);

    std::string png = dir.file("grid.png");
    std::FILE* pipe = popen(("build/sample --ckpt " + run + "/model.ckpt --n 7 --out " + png + " 2>&1").c_str(), "r");
    char buffer[4096];
    while (std::fread(buffer, 1, sizeof buffer, pipe)) {
    }
    int status = pclose(pipe);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    int width = 0, height = 0, channels = 0;
    uint8_t* pixels = stbi_load(png.c_str(), &width, &height, &channels, 0);
    REQUIRE(pixels != nullptr);
    stbi_image_free(pixels);
    // 7 images in 3 columns and 3 rows of 6x6 pixels, scaled 3x, 2-pixel gaps.
    REQUIRE(width == 2 + 3 * (6 * 3 + 2));
    REQUIRE(height == 2 + 3 * (6 * 3 + 2));
}

TEST_CASE("tiny protein models learn: causal and masked", "[tasks]") {
    TempDir dir;
    std::string fasta = write_fasta(dir);
    for (std::string objective : {"causal", "masked"}) {
        INFO(objective);
        std::string run = dir.file(objective);
        training::TrainOptions o = tiny("protein", fasta, run);
        o.task.objective = objective == "causal" ? models::Objective::Causal : models::Objective::Masked;
        o.steps = 60;
        REQUIRE(training::train(o) == 0);
        auto [first, last] = first_and_last_loss(run);
        INFO("loss " << first << " -> " << last);
        REQUIRE(last < 0.7 * first);
    }
}

TEST_CASE("protein padding is invisible to a bidirectional model, every mechanism", "[tasks]") {
    for (std::string attention : {"softmax", "favor", "relu", "trig", "identity", "linformer",
                                  "reformer"}) {
        INFO(attention);
        models::ModelConfig config;
        config.attention.causal = false;
        config.attention.linformer_k = 8, config.attention.buckets = 4, config.attention.chunk = 4;
        config.vocab = models::protein::vocab_size();
        config.attention.dim = 16, config.attention.heads = 2, config.layers = 2, config.ff = 32, config.attention.features = 16;
        config.attention.mechanism = nn::parse_mechanism(attention);
        config.attention.max_length = 12;
        Generator init(7), dropout(8);
        models::SequenceModel model(config, init, dropout);
        std::vector<int32_t> real{2, 7, 9, 11, 5, 3};  // [BOS] residues [EOS]
        std::vector<int32_t> padded = real;
        padded.insert(padded.end(), {0, 0, 0, 0});
        Tensor mask = Tensor::from_data({1, 10}, {1, 1, 1, 1, 1, 1, 0, 0, 0, 0});
        NoGradGuard no_grad;
        Tensor alone = model.forward(real, 1, 6);
        Tensor with_padding = slice(model.forward(padded, 1, 10, mask), 1, 0, 6);
        double scale = 0;
        for (float v : alone.to_vector()) scale = std::max(scale, double(std::fabs(v)));
        REQUIRE(max_abs_diff(alone, with_padding) <= 1e-5 * scale);
    }
}
