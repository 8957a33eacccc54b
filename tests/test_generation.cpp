// test_generation.cpp — build/sample's refusals: images of another shape than the
// model's, non-finite temperatures, absurd counts.
//
// The program tests run the binaries under build/ (make test builds them first) on
// tiny models trained for two steps.
#include "gradcheck.h"
#include "programs.h"

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
