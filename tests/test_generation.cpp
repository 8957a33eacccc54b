// test_generation.cpp — generation of any length (the sliding window of models/generate.h)
// and build/sample's refusals: images of another shape than the model's, non-finite
// temperatures, absurd counts. Also build/eval --context, which reads as sample does.
//
// The program tests run the binaries under build/ (make test builds them first) on
// tiny models trained for two steps.
#include "gradcheck.h"
#include "programs.h"

#include "models/generate.h"

using namespace pf;
using namespace pf::testing;

namespace {

constexpr int64_t kTrainedLength = 16;  // --seq-len of the tiny text models

// A tiny causal text model trained for 2 steps on write_corpus(); returns its checkpoint.
std::string train_tiny_text(const TempDir& dir, const std::string& attention) {
    std::string out = dir.file("run-" + attention);
    Command train = run("build/train --task text --data " + write_corpus(dir) + " --attention " +
                        attention + " --layers 1 --dim 16 --heads 2 --features 8 --seq-len " +
                        std::to_string(kTrainedLength) + " --batch 2 --steps 2 --out " + out);
    INFO(train.output);
    REQUIRE(train.exit_code == 0);
    return out + "/model.ckpt";
}

// What build/sample writes to stdout (its speed line goes to stderr), and its exit code.
std::pair<int, std::string> sample_stdout(const TempDir& dir, const std::string& arguments) {
    std::string stdout_file = dir.file("sample.out");
    Command c = run("(build/sample " + arguments + " > " + stdout_file + ")");  // run() adds 2>&1
    INFO(c.output);
    return {c.exit_code, read_file(stdout_file)};
}

models::ModelConfig tiny_config(const std::string& attention, int64_t max_length) {
    models::ModelConfig config;
    config.vocab = 11, config.layers = 2, config.ff = 32, config.attention.max_length = max_length;
    config.attention.dim = 16, config.attention.heads = 2, config.attention.features = 16;
    config.attention.mechanism = nn::parse_mechanism(attention);
    config.attention.chunk = 2, config.attention.hashes = 2, config.attention.buckets = 4;
    return config;
}

}  // namespace

TEST_CASE("sample refuses test images of another shape than the model's, naming both",
          "[generation][programs]") {
    TempDir data, runs;
    std::string spec = write_image_folder(data, 4, 6, 6);
    std::string out = runs.file("image");
    Command train = run("build/train --task image --data " + spec +
                        " --layers 1 --dim 16 --heads 2 --features 8 --batch 2 --steps 2 --out " + out);
    INFO(train.output);
    REQUIRE(train.exit_code == 0);
    write_image_folder(data, 4, 4, 4);  // the data set now holds smaller images
    Command c = run("build/sample --ckpt " + out + "/model.ckpt --complete 1 --out " +
                    runs.file("completions.png"));
    INFO(c.output);
    REQUIRE(c.exit_code == 2);
    REQUIRE_THAT(c.output, Catch::Contains("4x4x1") && Catch::Contains("6x6x1"));
}

TEST_CASE("sample refuses a non-finite or negative temperature and an absurd --n",
          "[generation][programs]") {
    TempDir dir;
    std::string ckpt = train_tiny_text(dir, "favor");
    for (std::string bad : {"--temperature nan", "--temperature inf", "--temperature=-inf",
                            "--temperature -1", "--n 9223372036854775807", "--n 1000001", "--n 0"}) {
        INFO(bad);
        Command c = run("build/sample --ckpt " + ckpt + " --n 5 " + bad);  // --n 5 alone is fine
        INFO(c.output);
        REQUIRE(c.exit_code == 2);
        REQUIRE_THAT(c.output, Catch::Contains(bad.substr(0, bad.find_first_of(" ="))));
    }
    // Temperature 0 is greedy decoding: two runs with different seeds agree.
    auto [code_a, greedy_a] = sample_stdout(dir, "--ckpt " + ckpt + " --n 10 --temperature 0 --seed 1");
    auto [code_b, greedy_b] = sample_stdout(dir, "--ckpt " + ckpt + " --n 10 --temperature 0 --seed 2");
    REQUIRE(code_a == 0);
    REQUIRE(code_b == 0);
    REQUIRE(greedy_a.size() == 1 + 10 + 1);  // "\n" prompt, 10 bytes, "\n"
    REQUIRE(greedy_a == greedy_b);
}

TEST_CASE("sample generates 3x the training length; the window changes only what comes after",
          "[generation][programs]") {
    TempDir dir;
    for (std::string attention : {"favor", "softmax"}) {
        INFO(attention);
        std::string ckpt = train_tiny_text(dir, attention);
        const std::string prompt = "It is";
        const int64_t n = 3 * kTrainedLength;
        auto [code, long_text] = sample_stdout(dir, "--ckpt " + ckpt + " --prompt '" + prompt +
                                                        "' --seed 7 --n " + std::to_string(n));
        REQUIRE(code == 0);
        REQUIRE(int64_t(long_text.size()) == int64_t(prompt.size()) + n + 1);  // and a newline
        // Within the trained length the window never acts: the same bytes.
        const int64_t within = kTrainedLength - int64_t(prompt.size());
        auto [short_code, short_text] = sample_stdout(dir, "--ckpt " + ckpt + " --prompt '" + prompt +
                                                               "' --seed 7 --n " + std::to_string(within));
        REQUIRE(short_code == 0);
        REQUIRE(short_text.size() == prompt.size() + within + 1);
        REQUIRE(long_text.substr(0, short_text.size() - 1) == short_text.substr(0, short_text.size() - 1));
    }
}

TEST_CASE("window_start: restarts every W - W/2 tokens, each re-reading W/2", "[generation]") {
    const int64_t W = 8;
    for (int64_t t = 0; t < W; ++t) REQUIRE(models::window_start(t, W) == 0);
    REQUIRE(models::window_start(8, W) == 4);    // tokens 4..8 at positions 0..4
    REQUIRE(models::window_start(11, W) == 4);   // tokens 4..11 at positions 0..7
    REQUIRE(models::window_start(12, W) == 8);   // restart: tokens 8..12 at 0..4
    REQUIRE(models::window_start(16, W) == 12);
    for (int64_t window : {1, 2, 3, 5, 8}) {
        for (int64_t t = 0; t < 40; ++t) {
            INFO("W " << window << " token " << t);
            int64_t start = models::window_start(t, window);
            REQUIRE(t - start < window);  // token t sits at a position the model knows
            if (t >= window) REQUIRE(t - start >= window / 2);  // after at least W/2 others
        }
    }
}

TEST_CASE("windowed recurrent generation samples what full forwards over each window sample",
          "[generation]") {
    for (std::string attention : {"favor", "softmax", "relu", "identity", "reformer"}) {
        INFO(attention);
        Generator init(21), dropout(22);
        const int64_t W = 8;
        models::SequenceModel model(tiny_config(attention, W), init, dropout);
        model.eval();
        Generator a(23), b(23);
        std::vector<int32_t> prompt{3, 1, 4};
        std::vector<int32_t> recurrent = models::generate(model, {prompt}, 5 * W, 1.0f, a)[0];
        std::vector<int32_t> full = models::generate_by_full_forward(model, prompt, 5 * W, 1.0f, b);
        REQUIRE(recurrent.size() == prompt.size() + 5 * W);
        REQUIRE(recurrent == full);
    }
}

TEST_CASE("recurrent scoring at the training length agrees with the parallel forward; "
          "eval --context scores any length",
          "[generation][programs]") {
    TempDir dir;
    std::string ckpt = train_tiny_text(dir, "favor");
    Command parallel = run("build/eval --ckpt " + ckpt + " --max-batches 2");
    Command recurrent = run("build/eval --ckpt " + ckpt + " --max-batches 2 --context " +
                            std::to_string(kTrainedLength));
    INFO(parallel.output << recurrent.output);
    REQUIRE(parallel.exit_code == 0);
    REQUIRE(recurrent.exit_code == 0);
    auto p = parse_result_line(parallel.output), r = parse_result_line(recurrent.output);
    REQUIRE(r.at("tokens") == p.at("tokens"));
    REQUIRE(std::fabs(std::stod(r.at("bits_per_byte")) - std::stod(p.at("bits_per_byte"))) < 1e-3);
    Command longer = run("build/eval --ckpt " + ckpt + " --max-batches 1 --context " +
                         std::to_string(4 * kTrainedLength));
    INFO(longer.output);
    REQUIRE(longer.exit_code == 0);
    REQUIRE(parse_result_line(longer.output).at("tokens") == std::to_string(8 * 4 * kTrainedLength));
}

TEST_CASE("eval --attention-shift: a redraw moves a FAVOR+ model's attention, the same seed "
          "moves it the same way; a softmax model is refused", "[generation][programs]") {
    TempDir dir;
    std::string ckpt = train_tiny_text(dir, "favor");
    Command a = run("build/eval --ckpt " + ckpt + " --attention-shift --seed 3");
    Command b = run("build/eval --ckpt " + ckpt + " --attention-shift --seed 3");
    INFO(a.output);
    REQUIRE(a.exit_code == 0);
    auto shift = parse_result_line(a.output);
    REQUIRE(shift == parse_result_line(b.output));
    REQUIRE(std::stod(shift.at("trained_vs_redrawn")) > 0.0);
    REQUIRE(std::stod(shift.at("trained_vs_redrawn")) <= 1.0);
    REQUIRE(std::stod(shift.at("query_norm2")) > 0.0);
    REQUIRE(a.output.find("layer 0: |x|^2") != std::string::npos);  // the one layer

    Command softmax = run("build/eval --ckpt " + train_tiny_text(dir, "softmax") + " --attention-shift");
    INFO(softmax.output);
    REQUIRE(softmax.exit_code == 2);
    REQUIRE(softmax.output.find("attention is softmax") != std::string::npos);
}
