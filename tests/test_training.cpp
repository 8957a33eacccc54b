// test_training.cpp — the trainer and the programs: exact resume, Ctrl-C, checkpoints
// that programs refuse with a clear message and exit code 2.
//
// The program tests run the binaries under build/ (make test builds them first).
#include "gradcheck.h"
#include "programs.h"

#include "nn/checkpoint.h"
#include "models/run.h"
#include "tools/training/trainer.h"
#include "tools/util/csv.h"
#include "tools/util/plot.h"
#include "engine/files.h"

#include <nlohmann/json.hpp>

#include <filesystem>

using namespace pf;
using namespace pf::testing;
namespace fs = std::filesystem;

namespace {

training::TrainOptions tiny_run(const std::string& corpus, const std::string& out) {
    training::TrainOptions o;
    o.task.kind = models::TaskKind::Text;
    o.task.data = corpus;
    o.model.attention.mechanism = nn::Mechanism::Favor;
    o.model.attention.dim = 16;
    o.model.attention.heads = 2;
    o.model.layers = 2;
    o.model.ff = 32;
    o.model.attention.features = 8;
    o.model.dropout = 0.1f;  // so the dropout generator must be restored too
    o.task.seq_len = 32;
    o.batch = 4;
    o.steps = 20;
    o.redraw = 3;            // and the feature generator
    o.eval_batches = 1;
    o.out = out;
    o.quiet = true;
    return o;
}

}  // namespace

TEST_CASE("resuming is exact: 10 + 10 steps end where 20 straight steps end", "[training]") {
    TempDir dir;
    std::string corpus = write_corpus(dir);
    REQUIRE(training::train(tiny_run(corpus, dir.file("straight"))) == 0);
    nn::Checkpoint a = nn::load_checkpoint(dir.file("straight/model.ckpt"));
    REQUIRE(a.step == 20);

    // Also from a checkpoint as written before the settings table (model.orthogonal 1).
    for (bool old_format : {false, true}) {
        INFO("old format " << old_format);
        const std::string out = dir.file(old_format ? "resumed-old" : "resumed");
        training::TrainOptions first = tiny_run(corpus, out);
        first.stop_after = 10;
        REQUIRE(training::train(first) == 0);
        nn::Checkpoint halfway = nn::load_checkpoint(out + "/model.ckpt");
        REQUIRE(halfway.step == 10);
        if (old_format) {
            REQUIRE(halfway.config.at("model.feature_kind") == "orthogonal");
            halfway.config.erase("model.feature_kind");
            halfway.config["model.orthogonal"] = "1";
            nn::save_checkpoint(out + "/model.ckpt", halfway);
        }
        training::TrainOptions second = tiny_run("ignored: the checkpoint's own settings count", out);
        second.resume = true;
        REQUIRE(training::train(second) == 0);

        nn::Checkpoint b = nn::load_checkpoint(out + "/model.ckpt");
        REQUIRE(b.step == 20);
        REQUIRE(a.tensors.size() == b.tensors.size());
        for (size_t i = 0; i < a.tensors.size(); ++i) {
            INFO(a.tensors[i].first);
            REQUIRE(a.tensors[i].first == b.tensors[i].first);
            REQUIRE(a.tensors[i].second.to_vector() == b.tensors[i].second.to_vector());  // bit-exact
        }
        REQUIRE(a.generators == b.generators);
        auto settings = [](nn::Checkpoint c) {  // the elapsed time differs, of course
            c.config.erase("train.elapsed_s");
            return c.config;
        };
        REQUIRE(settings(b) == settings(a));  // an old checkpoint is saved in the new format
        // The log of the resumed run has each step once.
        CsvTable log = read_csv(out + "/log.csv");
        int train_rows = 0;
        for (const auto& row : log.rows) train_rows += row[log.column("split")] == "train";
        REQUIRE(train_rows == 20);
        REQUIRE(fs::exists(out + "/summary.json"));
    }
}

TEST_CASE("--recompute trains bit-identically (dropout, redraws), and a resume may switch "
          "it", "[training]") {
    TempDir dir;
    std::string corpus = write_corpus(dir);
    REQUIRE(training::train(tiny_run(corpus, dir.file("plain"))) == 0);
    training::TrainOptions first = tiny_run(corpus, dir.file("recomputed"));
    first.recompute = true;
    first.stop_after = 10;
    REQUIRE(training::train(first) == 0);
    training::TrainOptions second = tiny_run(corpus, dir.file("recomputed"));
    second.resume = true;  // the second half without recomputation
    REQUIRE(training::train(second) == 0);
    nn::Checkpoint a = nn::load_checkpoint(dir.file("plain/model.ckpt"));
    nn::Checkpoint b = nn::load_checkpoint(dir.file("recomputed/model.ckpt"));
    REQUIRE(b.step == 20);
    REQUIRE(a.tensors.size() == b.tensors.size());
    for (size_t i = 0; i < a.tensors.size(); ++i) {
        INFO(a.tensors[i].first);
        REQUIRE(a.tensors[i].second.to_vector() == b.tensors[i].second.to_vector());
    }
}

TEST_CASE("--time-limit ends a run, finished, at the first step past its seconds: held-out "
          "figures, checkpoint and summary at that step", "[training]") {
    TempDir dir;
    std::string corpus = write_corpus(dir);
    training::TrainOptions o = tiny_run(corpus, dir.file("timed"));
    o.steps = 5000;      // the schedule's length: more than the limit allows
    o.eval_every = 1000;
    o.time_limit = 0.5;  // seconds of training
    REQUIRE(training::train(o) == 0);
    nn::Checkpoint checkpoint = nn::load_checkpoint(dir.file("timed/model.ckpt"));
    const int64_t steps = checkpoint.step;
    REQUIRE(steps >= 1);
    REQUIRE(steps < o.steps);
    const double elapsed = std::stod(checkpoint.config.at("train.elapsed_s"));
    REQUIRE(elapsed >= o.time_limit);
    nlohmann::json summary = nlohmann::json::parse(read_file(dir.file("timed/summary.json")));
    REQUIRE(summary["steps"].get<int64_t>() == steps);
    REQUIRE(summary["time_limit_s"].get<double>() == o.time_limit);
    REQUIRE(summary.contains("held_out"));
    // One held-out row, at the last step; the step before it was still within the limit.
    CsvTable log = read_csv(dir.file("timed/log.csv"));
    std::vector<std::vector<std::string>> valid, train;
    for (const auto& row : log.rows) (row[log.column("split")] == "valid" ? valid : train).push_back(row);
    REQUIRE(int64_t(train.size()) == steps);
    REQUIRE(valid.size() == 1);
    REQUIRE(valid[0][log.column("step")] == std::to_string(steps));
    if (steps > 1)  // elapsed_s is written to the millisecond
        REQUIRE(std::stod(train[size_t(steps) - 2][log.column("elapsed_s")]) <= o.time_limit + 1e-3);
}

// summary.json as the trainer writes it, and as build/compare and build/scaling read it.
TEST_CASE("summary.json: keys in order, numbers as numbers, a float's digits; compare and "
          "scaling read it", "[training][programs]") {
    TempDir dir;
    training::TrainOptions o = tiny_run(write_corpus(dir), dir.file("run"));
    o.steps = 4;
    o.lr = 3e-3f;
    REQUIRE(training::train(o) == 0);
    const std::string text = read_file(dir.file("run/summary.json"));
    INFO(text);
    const auto summary = nlohmann::ordered_json::parse(text);
    std::vector<std::string> keys;
    for (auto& [key, value] : summary.items()) keys.push_back(key);
    CHECK(keys == std::vector<std::string>{"task", "data", "model", "parameters", "steps", "batch",
                                           "seq_len", "lr", "seed", "processes", "threads",
                                           "elapsed_s", "tokens_per_s", "sum_s_per_step", "sum_share",
                                           "final_train_loss", "held_out", "peak_rss_mib"});
    CHECK(summary["steps"] == 4);
    CHECK(summary["model"]["attention"] == "favor");  // the settings, as strings
    CHECK(summary["model"]["layers"] == "2");
    CHECK(text.find("\"lr\": 0.003,\n") != std::string::npos);  // not 0.003000000026077032
    for (const char* key : {"tokens_per_s", "final_train_loss", "peak_rss_mib"}) {
        INFO(key);
        CHECK(summary[key].is_number());
    }
    CHECK(summary["held_out"]["bits_per_byte"].is_number());

    Command compare = run("build/compare --runs " + dir.file("run") + " --out " + dir.file("table"));
    INFO(compare.output);
    REQUIRE(compare.exit_code == 0);
    CHECK(compare.output.find("| run | favor | 2 | 4 |") != std::string::npos);
    // --seconds: a second panel, against seconds of training; the PNG is two panels wide.
    Command both = run("build/compare --seconds --runs " + dir.file("run") + " --out " + dir.file("both"));
    INFO(both.output);
    REQUIRE(both.exit_code == 0);
    auto png_width = [](const std::string& png) {  // the IHDR chunk: width at bytes 16..19
        REQUIRE(png.size() > 24);
        return (uint32_t(uint8_t(png[16])) << 24) | (uint32_t(uint8_t(png[17])) << 16) |
               (uint32_t(uint8_t(png[18])) << 8) | uint32_t(uint8_t(png[19]));
    };
    if (gnuplot_available())
        CHECK(png_width(read_file(dir.file("both.png"))) == 2 * png_width(read_file(dir.file("table.png"))));
    Command scaling = run("build/scaling --one " + dir.file("run") + " --many " + dir.file("run") +
                          " --out " + dir.file("scaling"));
    INFO(scaling.output);
    REQUIRE(scaling.exit_code == 0);
    CHECK(parse_result_line(scaling.output).at("processes_vs_threads") == "1");
}

TEST_CASE("a run folder is never overwritten, and resuming needs a checkpoint", "[training]") {
    TempDir dir;
    std::string corpus = write_corpus(dir);
    training::TrainOptions o = tiny_run(corpus, dir.file("run"));
    o.steps = 2;
    REQUIRE(training::train(o) == 0);
    REQUIRE_THROWS_WITH(training::train(o), Catch::Contains("already holds a run"));
    training::TrainOptions r = tiny_run(corpus, dir.file("nothing-here"));
    r.resume = true;
    REQUIRE_THROWS_WITH(training::train(r), Catch::Contains("no checkpoint to resume"));
}

TEST_CASE("programs: --help exits 0; bad flags, files and checkpoints exit 2 with a message",
          "[training][programs]") {
    TempDir dir;
    for (std::string program : {"train", "sample", "eval", "bench", "bench_model", "bench_ops", "approx", "compare", "ngram"}) {
        INFO(program);
        REQUIRE(fs::exists("build/" + program));
        REQUIRE(run("build/" + program + " --help").exit_code == 0);
        Command bad = run("build/" + program + " --no-such-flag");
        REQUIRE(bad.exit_code == 2);
        REQUIRE_THAT(bad.output, Catch::Contains("error"));
    }
    Command malformed = run("build/train --out " + dir.file("x") + " --steps many");
    REQUIRE(malformed.exit_code == 2);
    REQUIRE_THAT(malformed.output, Catch::Contains("--steps"));

    Command missing = run("build/eval --ckpt " + dir.file("missing.ckpt"));
    REQUIRE(missing.exit_code == 2);
    REQUIRE_THAT(missing.output, Catch::Contains("missing.ckpt"));

    write_file(dir.file("garbage.ckpt"), std::string(200, 'x'));
    Command garbage = run("build/sample --ckpt " + dir.file("garbage.ckpt"));
    REQUIRE(garbage.exit_code == 2);
    REQUIRE_THAT(garbage.output, Catch::Contains("garbage.ckpt"));

    write_file(dir.file("bad.fasta"), ">p1\nMKV1\n");
    Command bad_fasta = run("build/ngram --data " + dir.file("bad.fasta"));
    REQUIRE(bad_fasta.exit_code == 2);
    REQUIRE_THAT(bad_fasta.output, Catch::Contains("bad.fasta:2"));

    Command no_data = run("build/train --task text --data " + dir.file("none.txt") + " --out " +
                          dir.file("run"));
    REQUIRE(no_data.exit_code == 2);
    REQUIRE_THAT(no_data.output, Catch::Contains("none.txt"));
    REQUIRE_FALSE(fs::exists(dir.file("run/model.ckpt")));  // nothing half-written
}

TEST_CASE("programs: Ctrl-C finishes the step, saves, and --resume continues", "[training][programs]") {
    TempDir dir;
    std::string corpus = write_corpus(dir);
    std::string run_dir = dir.file("run");
    std::string command = "build/train --task text --data " + corpus +
                          " --dim 16 --heads 2 --layers 1 --features 8 --seq-len 32 --batch 2"
                          " --steps 1000000 --eval-every 1000000 --out " + run_dir;
    // --foreground: only the trainer gets the one SIGINT, as from Ctrl-C (without it,
    // timeout signals the whole process group too, and a second SIGINT kills, by design).
    Command interrupted = run("timeout --foreground --preserve-status -s INT 3 " + command);
    INFO(interrupted.output);
    REQUIRE(interrupted.exit_code == 0);
    REQUIRE_THAT(interrupted.output, Catch::Contains("interrupted at step"));
    nn::Checkpoint checkpoint = nn::load_checkpoint(run_dir + "/model.ckpt");
    REQUIRE(checkpoint.step > 0);
    REQUIRE(checkpoint.step < 1000000);

    Command resumed = run("build/train --resume --out " + run_dir + " --steps " +
                          std::to_string(checkpoint.step + 3));
    INFO(resumed.output);
    REQUIRE(resumed.exit_code == 0);
    REQUIRE(nn::load_checkpoint(run_dir + "/model.ckpt").step == checkpoint.step + 3);
    Command sample = run("build/sample --ckpt " + run_dir + "/model.ckpt --prompt It --n 20");
    REQUIRE(sample.exit_code == 0);
    Command eval = run("build/eval --ckpt " + run_dir + "/model.ckpt");
    REQUIRE(eval.exit_code == 0);
    REQUIRE_THAT(eval.output, Catch::Contains("result: bits_per_byte="));
}

TEST_CASE("a softmax-trained model is scored with FAVOR+ by overriding its attention",
          "[training][programs]") {
    TempDir dir;
    std::string corpus = write_corpus(dir), run_dir = dir.file("run");
    training::TrainOptions o = tiny_run(corpus, run_dir);
    o.model.attention.mechanism = nn::Mechanism::Softmax;
    o.steps = 4;
    training::train(o);

    Generator dropout_a(0), dropout_b(0), dropout_c(0);
    std::string ckpt = run_dir + "/model.ckpt";
    models::TrainedModel trained = models::load_model(ckpt, dropout_a);
    models::TrainedModel favor = models::load_model(ckpt, dropout_b, {"favor", 64, 5});
    models::TrainedModel favor_again = models::load_model(ckpt, dropout_c, {"favor", 64, 5});
    REQUIRE(trained.model->config().attention.mechanism == nn::Mechanism::Softmax);
    REQUIRE(favor.model->config().attention.mechanism == nn::Mechanism::Favor);
    REQUIRE(favor.model->config().attention.features == 64);
    auto trained_params = trained.model->named_parameters();
    auto favor_params = favor.model->named_parameters();
    REQUIRE(trained_params.size() == favor_params.size());
    for (size_t i = 0; i < trained_params.size(); ++i) {
        INFO(trained_params[i].first);
        require_same_bits(trained_params[i].second, favor_params[i].second);
    }
    auto features = favor.model->named_buffers(), same_seed = favor_again.model->named_buffers();
    REQUIRE(!features.empty());
    require_same_bits(features[0].second, same_seed[0].second);  // drawn from the seed

    Command eval = run("build/eval --ckpt " + ckpt + " --attention favor --features 64");
    INFO(eval.output);
    REQUIRE(eval.exit_code == 0);
    REQUIRE_THAT(eval.output, Catch::Contains("favor attention (64 features)"));
    REQUIRE_THAT(eval.output, Catch::Contains("result: bits_per_byte="));
}
