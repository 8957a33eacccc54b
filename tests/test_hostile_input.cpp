// test_hostile_input.cpp — no input crashes a program, hangs it or is silently ignored:
// malformed flags, nonsense numbers (seeds that would wrap, floats a float cannot hold),
// empty paths, flags for another kind of model, empty or endless data files, images
// whose header claims billions of pixels, gzip bombs and data that does not fit the
// model end with a message naming the problem and exit code 2.
//
// The program tests run the binaries under build/ (make test builds them first), with a
// timeout and a memory cap, so that a regression fails the test instead of the machine.
#include "programs.h"

#include "engine/error.h"
#include "engine/random.h"
#include "nn/checkpoint.h"
#include "tools/training/trainer.h"
#include "engine/files.h"

#include <stb/stb_image_write.h>
#include <zlib.h>

#include <filesystem>
#include <string>
#include <tuple>
#include <vector>

using namespace pf;
using namespace pf::testing;

namespace {

// A tiny run of build/train (to be completed with --task, --data and --out).
const std::string kTinyTrain =
    "build/train --layers 1 --dim 16 --heads 2 --features 8 --seq-len 16 --batch 2 --steps 2";
const std::string kTinyText = kTinyTrain + " --task text";

// IDX files of `count` H x W grey images (train and test alike, the test split with
// `count` images too unless it is 0) in `dir`, as a Fashion-MNIST data spec.
std::string write_idx_folder(const std::string& dir, int64_t train_count, int64_t test_count,
                             int64_t H, int64_t W) {
    Generator gen(3);
    for (auto [prefix, count] : {std::pair{"train", train_count}, std::pair{"t10k", test_count}}) {
        std::string images, labels;
        put_u32(images, 0x803), put_u32(images, uint32_t(count));
        put_u32(images, uint32_t(H)), put_u32(images, uint32_t(W));
        put_u32(labels, 0x801), put_u32(labels, uint32_t(count));
        for (int64_t i = 0; i < count * H * W; ++i) images.push_back(char(gen.below(256)));
        labels.append(size_t(count), '\0');
        write_file(dir + "/" + prefix + "-images-idx3-ubyte", images);
        write_file(dir + "/" + prefix + "-labels-idx1-ubyte", labels);
    }
    return "fashion-mnist:" + dir;
}

// A FASTA file of 300 random protein sequences of 10 to 60 residues.
std::string write_proteins(const TempDir& dir) {
    Generator gen(4);
    std::string fasta;
    for (int i = 0; i < 300; ++i) {
        fasta += ">p" + std::to_string(i) + "\n";
        for (uint64_t r = 0, n = 10 + gen.below(51); r < n; ++r)
            fasta += "ACDEFGHIKLMNPQRSTVWY"[gen.below(20)];
        fasta += "\n";
    }
    std::string path = dir.file("proteins.fasta");
    write_file(path, fasta);
    return path;
}

training::TrainOptions tiny_run(const std::string& task, const std::string& data,
                                const std::string& out) {
    training::TrainOptions o;
    o.task.kind = task_kind(task);
    o.task.data = data;
    o.model.attention.dim = 16, o.model.attention.heads = 2, o.model.layers = 1, o.model.ff = 32;
    o.model.attention.features = 8;
    o.task.seq_len = 16, o.batch = 2, o.steps = 2;
    o.eval_batches = 1;
    o.out = out;
    o.quiet = true;
    return o;
}

void require_refused(const Command& c, const std::string& named) {
    INFO(c.output);
    REQUIRE(c.exit_code == 2);
    REQUIRE_THAT(c.output, Catch::Contains("error") && Catch::Contains(named));
}

}  // namespace

TEST_CASE("hostile input: an image set without images is refused, naming the file",
          "[hostile][programs]") {
    REQUIRE_THROWS_AS(Generator(1).below(0), Error);
    TempDir dir;
    std::string spec = write_idx_folder(dir.path().string(), 0, 2, 4, 4);
    require_refused(run_bounded(kTinyTrain + " --task image --data " + spec + " --out " +
                                dir.file("run")),
                    "train-images-idx3-ubyte");
}

TEST_CASE("hostile input: compare without runs, and with a log that is not numbers",
          "[hostile][programs]") {
    TempDir dir;
    require_refused(run_bounded("build/compare --runs , --out " + dir.file("x")), "--runs");
    write_file(dir.file("run/log.csv"),
               "step,split,loss,bits_per_byte,accuracy,lr,tokens_per_s,elapsed_s\n"
               "1,train,5.5,7.9,,0.001,100,1\n"
               "two,valid,5.4,7.8,0.1,,,2\n");
    require_refused(run_bounded("build/compare --runs " + dir.file("run") + " --out " + dir.file("x")),
                    "log.csv:3: column 'step': 'two'");
}

TEST_CASE("hostile input: thread counts are bounded, from the flag and from PF_THREADS",
          "[hostile][programs]") {
    TempDir dir;
    std::string eval = "build/eval --ckpt " + dir.file("missing.ckpt");
    require_refused(run_bounded(eval + " --threads 100000"), "--threads");
    require_refused(run_bounded(eval + " --threads 0"), "--threads");
    for (std::string value : {"100000", "0", "abc", "4x", ""}) {
        INFO("PF_THREADS=" << value);
        require_refused(run_bounded("env PF_THREADS='" + value + "' " + eval), "PF_THREADS");
    }
}

TEST_CASE("hostile input: a sequence longer than the text, and a data file that never ends",
          "[hostile][programs]") {
    TempDir dir;
    std::string corpus = write_corpus(dir);
    require_refused(run_bounded("build/train --task text --layers 1 --dim 16 --heads 2 --batch 2 "
                                "--data " + corpus + " --seq-len 100000 --out " +
                                dir.file("long")),
                    "sequence length 100000");
    REQUIRE_FALSE(std::filesystem::exists(dir.file("long")));
    require_refused(run_bounded(kTinyText + " --data /dev/zero --out " + dir.file("zero")),
                    "/dev/zero: not a regular file");
    require_refused(run_bounded("build/ngram --data /dev/zero"), "/dev/zero");
    // FAVOR++'s map is for favor only.
    require_refused(run_bounded(kTinyText + " --data " + corpus + " --attention softmax "
                                "--feature-kind favor++ --out " + dir.file("plusplus")),
                    "favor++ features are for favor attention");
    REQUIRE_FALSE(std::filesystem::exists(dir.file("plusplus")));
}

TEST_CASE("hostile input: 2^31 layers or sequences a step are refused by the memory gate",
          "[hostile][programs]") {
    TempDir dir;
    std::string corpus = write_corpus(dir);
    for (std::string flag : {"--layers 2147483648", "--batch 2147483648",
                             "--batch 8999999999999999 --layers 1000000"}) {
        INFO(flag);
        require_refused(run_bounded("build/train --task text --dim 16 --heads 2 --seq-len 16 "
                                    "--steps 2 --data " + corpus + " " + flag + " --out " +
                                    dir.file("huge")),
                        "more than this machine's");
        REQUIRE_FALSE(std::filesystem::exists(dir.file("huge")));
    }
}

TEST_CASE("hostile input: non-finite and out-of-range numbers are refused at parse time",
          "[hostile][programs]") {
    TempDir dir;
    std::string out = " --out " + dir.file("run");
    for (auto [command, flag] : std::vector<std::pair<std::string, std::string>>{
             {"build/approx --input-std nan", "--input-std"},
             {"build/approx --input-std inf", "--input-std"},
             {"build/bench --memory-budget -1", "--memory-budget"},
             {"build/bench --time-budget nan", "--time-budget"},
             {"build/bench --time-budget 0", "--time-budget"},
             {kTinyText + " --lr nan" + out, "--lr"},
             {kTinyText + " --lr=-inf" + out, "--lr"},
             {kTinyText + " --clip inf" + out, "--clip"},
             {kTinyText + " --weight-decay nan" + out, "--weight-decay"},
             {kTinyText + " --dropout nan" + out, "--dropout"}}) {
        INFO(command);
        require_refused(run_bounded(command), flag);
    }
}

TEST_CASE("hostile input: integer flags are decimal: 020 is 20, 0x10 is refused",
          "[hostile][programs]") {
    TempDir dir;
    std::string corpus = write_corpus(dir);
    std::string train = "build/train --task text --data " + corpus +
                        " --layers 1 --heads 2 --features 8 --seq-len 16 --batch 2";
    require_refused(run_bounded(train + " --dim 0x10 --steps 2 --out " + dir.file("hex")), "--dim");
    require_refused(run_bounded(train + " --dim 16 --steps 1e3 --out " + dir.file("exp")), "--steps");
    Command leading_zero = run_bounded(train + " --dim 020 --steps 02 --out " + dir.file("run"));
    INFO(leading_zero.output);
    REQUIRE(leading_zero.exit_code == 0);
    nn::Checkpoint checkpoint = nn::load_checkpoint(dir.file("run/model.ckpt"));
    REQUIRE(checkpoint.config.at("model.dim") == "20");  // not octal 16
    REQUIRE(checkpoint.step == 2);
}

TEST_CASE("hostile input: eval refuses images of another size than the model's",
          "[hostile][programs]") {
    TempDir dir;
    std::filesystem::create_directories(dir.file("six")), std::filesystem::create_directories(dir.file("two"));
    std::string six = write_idx_folder(dir.file("six"), 8, 4, 6, 6);
    std::string two = write_idx_folder(dir.file("two"), 8, 4, 1, 2);
    REQUIRE(training::train(tiny_run("image", six, dir.file("run"))) == 0);
    Command eval = run_bounded("build/eval --ckpt " + dir.file("run/model.ckpt") + " --data " + two);
    require_refused(eval, "1x2x1");
    REQUIRE_THAT(eval.output, Catch::Contains("6x6x1"));
}

TEST_CASE("hostile input: eval of a protein model with default flags scores a fixed set, "
          "batch by batch",
          "[hostile][programs]") {
    TempDir dir;
    std::string proteins = write_proteins(dir);
    training::TrainOptions o = tiny_run("protein", proteins, dir.file("run"));
    o.task.objective = models::Objective::Masked;
    REQUIRE(training::train(o) == 0);
    std::string eval = "build/eval --ckpt " + dir.file("run/model.ckpt");
    Command first = run_bounded(eval), second = run_bounded(eval + " --batch 3");
    Command one_batch = run_bounded(eval + " --max-batches 1");
    INFO(first.output << second.output << one_batch.output);
    REQUIRE(first.exit_code == 0);
    REQUIRE(second.exit_code == 0);
    REQUIRE(one_batch.exit_code == 0);
    auto a = parse_result_line(first.output), b = parse_result_line(second.output),
         c = parse_result_line(one_batch.output);
    // The same rows and masks whatever the batch size: the same figures.
    REQUIRE(a.at("tokens") == b.at("tokens"));
    REQUIRE(std::stod(a.at("loss")) == Approx(std::stod(b.at("loss"))).epsilon(1e-5));
    REQUIRE(std::stoll(c.at("tokens")) < std::stoll(a.at("tokens")));
    // Batches are built when needed: the whole set costs no more memory than one batch.
    REQUIRE(std::stod(a.at("peak_rss_mib")) < std::stod(c.at("peak_rss_mib")) + 32);
}

TEST_CASE("hostile input: a negative or out-of-range --seed is refused by every program "
          "that takes one, as are floats that a float cannot hold",
          "[hostile][programs]") {
    TempDir dir;
    std::string missing = " --ckpt " + dir.file("missing.ckpt");
    for (auto [command, flag] : std::vector<std::pair<std::string, std::string>>{
             {"build/approx --seed -1", "--seed"},
             {"build/approx --seed 18446744073709551616", "--seed"},  // 2^64: wrapped to 0
             {"build/approx --seed 18446744073709551615", "--seed"},  // beyond train's seeds
             {"build/sample" + missing + " --seed -1", "--seed"},
             {"build/sample" + missing + " --seed 18446744073709551616", "--seed"},
             {"build/eval" + missing + " --seed -1", "--seed"},
             {"build/eval" + missing + " --seed 18446744073709551616", "--seed"},
             {kTinyText + " --seed -1 --out " + dir.file("run"), "--seed"},
             {"build/approx --trials 99999999999999999999", "--trials"},  // beyond 64 bits
             {"build/approx --input-std 1e39", "--input-std"},  // inf as a float
             {"build/approx --input-std 1e-50", "--input-std"},  // 0 as a float
             {"build/sample" + missing + " --temperature 1e39", "--temperature"},
             {"build/bench --time-budget 1e39", "--time-budget"},
             {kTinyText + " --lr 1e39 --out " + dir.file("run"), "--lr"},
             {kTinyText + " --dropout 1e-50 --out " + dir.file("run"), "--dropout"}}) {
        INFO(command);
        require_refused(run_bounded(command), flag);
    }
    REQUIRE_FALSE(std::filesystem::exists(dir.file("run")));
    // The largest seed is taken.
    Command largest = run_bounded("build/approx --trials 1 --length 8 --seed 8999999999999999 "
                                  "--out " + dir.file("approx.csv"));
    INFO(largest.output);
    REQUIRE(largest.exit_code == 0);
}

TEST_CASE("hostile input: an empty --out, or one naming a folder, is refused by every program "
          "that writes one, before anything is written",
          "[hostile][programs]") {
    TempDir dir;
    std::string folder = dir.path().string() + "/";
    for (std::string out : {std::string("''"), folder, folder + "."}) {
        for (std::string command :
             {"build/compare --runs " + dir.file("run"), "build/sample --ckpt " + dir.file("x.ckpt"),
              std::string("build/approx --trials 1 --length 8"), std::string("build/bench --quick"),
              "build/scaling --one " + dir.file("a") + " --many " + dir.file("b")}) {
            INFO(command << " --out " << out);
            require_refused(run_bounded(command + " --out " + out), "--out");
        }
    }
    require_refused(run_bounded(kTinyText + " --data " + write_corpus(dir) + " --out ''"), "--out");
    // Nothing hidden (".png", ".md", ".csv") was written into the folder.
    for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
        INFO(entry.path());
        REQUIRE(entry.path().filename() == "corpus.txt");
    }
}

TEST_CASE("hostile input: scaling refuses a summary.json whose speed is 0, negative or not "
          "finite, naming the file and the key",
          "[hostile][programs]") {
    TempDir dir;
    auto summary = [&](const std::string& name, const std::string& tokens_per_s) {
        write_file(dir.file(name + "/summary.json"),
                   "{\n  \"parameters\": 10000,\n  \"batch\": 2,\n  \"seq_len\": 16,\n"
                   "  \"processes\": 1,\n  \"threads\": 2,\n  \"tokens_per_s\": " + tokens_per_s +
                   ",\n  \"sum_s_per_step\": 0.001\n}\n");
        return dir.file(name);
    };
    std::string good = summary("good", "1000");
    std::string out = " --out " + dir.file("results/scaling");
    Command fine = run_bounded("build/scaling --one " + good + " --many " + good + out);
    INFO(fine.output);
    REQUIRE(fine.exit_code == 0);
    REQUIRE_THAT(fine.output, !Catch::Contains("nan") && !Catch::Contains("inf"));
    for (std::string speed : {"0", "-5", "null"}) {  // null: how summary.json writes inf, NaN
        INFO("tokens_per_s " << speed);
        std::string bad = summary("bad" + speed, speed);
        Command c = run_bounded("build/scaling --one " + good + " --many " + bad + out);
        require_refused(c, bad + "/summary.json");
        REQUIRE_THAT(c.output, Catch::Contains("tokens_per_s") && !Catch::Contains("nan%"));
        require_refused(run_bounded("build/scaling --one " + bad + " --many " + good + out),
                        "tokens_per_s");
    }
}

TEST_CASE("hostile input: compare does not say it wrote a plot it could not write",
          "[hostile][programs]") {
    TempDir dir;
    write_file(dir.file("run/log.csv"),
               "step,split,loss,bits_per_byte,accuracy,lr,tokens_per_s,elapsed_s\n"
               "1,train,5.5,7.9,,0.001,100,1\n"
               "1,valid,5.4,7.8,0.1,,,2\n");
    std::filesystem::create_directories(dir.file("out/x.png"));  // a folder where the plot goes
    Command c = run_bounded("build/compare --runs " + dir.file("run") + " --out " +
                            dir.file("out/x"));
    INFO(c.output);
    REQUIRE(c.exit_code == 0);
    REQUIRE_THAT(c.output, Catch::Contains("warning: no plot") &&
                               Catch::Contains("wrote " + dir.file("out/x") + ".md") &&
                               !Catch::Contains("x.png and"));
    REQUIRE(std::filesystem::is_directory(dir.file("out/x.png")));
    REQUIRE(std::filesystem::exists(dir.file("out/x.md")));
}

TEST_CASE("hostile input: an empty path in train's --data or --out is refused, naming the flag",
          "[hostile][programs]") {
    TempDir dir;
    std::string corpus = write_corpus(dir);
    for (auto [data, task] : std::vector<std::pair<std::string, std::string>>{
             {corpus + ",", "text"},
             {"," + corpus, "text"},
             {corpus + ",," + corpus, "text"},
             {"''", "text"},
             {"imagenet64:", "image"}}) {
        INFO(data);
        Command c = run_bounded(kTinyTrain + " --task " + task + " --data " + data + " --out " +
                                dir.file("run"));
        require_refused(c, "--data");
        REQUIRE_THAT(c.output, Catch::Contains("empty path"));
    }
    require_refused(run_bounded(kTinyText + " --data " + corpus + " --out ''"), "--out");
    REQUIRE_FALSE(std::filesystem::exists(dir.file("run")));
}

TEST_CASE("hostile input: sample refuses flags for another kind of model (--prompt: text; "
          "--complete, --out: images)",
          "[hostile][programs]") {
    TempDir dir;
    std::filesystem::create_directories(dir.file("images"));
    std::string images = write_idx_folder(dir.file("images"), 8, 4, 4, 4);
    REQUIRE(training::train(tiny_run("text", write_corpus(dir), dir.file("text"))) == 0);
    REQUIRE(training::train(tiny_run("image", images, dir.file("image"))) == 0);
    REQUIRE(training::train(tiny_run("protein", write_proteins(dir), dir.file("protein"))) == 0);
    std::string png = dir.file("grid.png");
    for (auto [kind, flags, named] : std::vector<std::tuple<std::string, std::string, std::string>>{
             {"image", "--prompt hello", "--prompt is for text models"},
             {"protein", "--prompt MKT", "--prompt is for text models"},
             {"text", "--complete 1", "--complete is for image models"},
             {"protein", "--complete 1", "--complete is for image models"},
             {"text", "--out " + png, "--out is for image models"},
             {"protein", "--out " + png, "--out is for image models"}}) {
        INFO(kind << " " << flags);
        Command c = run_bounded("build/sample --n 2 --ckpt " + dir.file(kind + "/model.ckpt") +
                                " " + flags);
        require_refused(c, named);
        REQUIRE_THAT(c.output, Catch::Contains("is a" + std::string(kind == "image" ? "n " : " ") +
                                               kind + " model"));
    }
    REQUIRE_FALSE(std::filesystem::exists(png));
    Command fine = run_bounded("build/sample --n 2 --ckpt " + dir.file("image/model.ckpt") +
                               " --out " + png);
    INFO(fine.output);
    REQUIRE(fine.exit_code == 0);
}

TEST_CASE("hostile input: --stop-after at or before the step a resumed run is at is refused, "
          "and the run is left as it was",
          "[hostile][programs]") {
    TempDir dir;
    training::TrainOptions o = tiny_run("text", write_corpus(dir), dir.file("run"));
    o.steps = 10, o.stop_after = 3;
    REQUIRE(training::train(o) == 0);
    const std::string checkpoint = read_file(dir.file("run/model.ckpt"));
    const std::string log = read_file(dir.file("run/log.csv"));
    REQUIRE(nn::load_checkpoint(dir.file("run/model.ckpt")).step == 3);
    for (std::string stop : {"2", "3"}) {
        INFO("--stop-after " << stop);
        Command c = run_bounded("build/train --resume --steps 10 --out " + dir.file("run") +
                                " --stop-after " + stop);
        require_refused(c, "--stop-after " + stop);
        REQUIRE_THAT(c.output, Catch::Contains("step 3"));
        REQUIRE(read_file(dir.file("run/model.ckpt")) == checkpoint);
        REQUIRE(read_file(dir.file("run/log.csv")) == log);
    }
    Command later = run_bounded("build/train --resume --steps 10 --out " + dir.file("run") +
                                " --stop-after 4");
    INFO(later.output);
    REQUIRE(later.exit_code == 0);
    REQUIRE(nn::load_checkpoint(dir.file("run/model.ckpt")).step == 4);
}

TEST_CASE("hostile input: --time-limit must be a positive finite number of seconds, and a "
          "resumed run's spent limit is refused", "[hostile][programs]") {
    TempDir dir;
    const std::string corpus = write_corpus(dir);
    for (std::string limit : {"0", "-1", "nan", "inf", "1e10", "ten"}) {
        INFO("--time-limit " << limit);
        require_refused(run_bounded("build/train --data " + corpus + " --steps 2 --out " +
                                    dir.file("never") + " --time-limit " + limit),
                        "--time-limit");
        REQUIRE(!std::filesystem::exists(dir.file("never")));
    }
    training::TrainOptions o = tiny_run("text", corpus, dir.file("run"));
    o.steps = 10, o.stop_after = 3;
    REQUIRE(training::train(o) == 0);
    const std::string checkpoint = read_file(dir.file("run/model.ckpt"));
    Command c = run_bounded("build/train --resume --steps 10 --out " + dir.file("run") +
                            " --time-limit 0.001");
    require_refused(c, "--time-limit 0.001 is spent already");
    REQUIRE(read_file(dir.file("run/model.ckpt")) == checkpoint);
}

TEST_CASE("hostile input: a PNG whose header claims 26000 x 26000 pixels is refused before it "
          "is decoded, naming the file, its size and the limit",
          "[hostile][programs]") {
    TempDir dir;
    std::filesystem::create_directories(dir.file("png"));
    // Two valid 8x8 grey PNGs (the second is the held-out one); then the first one's header
    // is made to say 26000 x 26000 (grey: within stb's own limit of 2^30 bytes; 2 GB as
    // RGB), its checksum made right again. The pixel data is still that of 8x8, so only a
    // decoder that trusted the header would get far.
    std::vector<uint8_t> pixels(8 * 8, 100);
    for (std::string name : {"a.png", "b.png"})
        REQUIRE(stbi_write_png(dir.file("png/" + name).c_str(), 8, 8, 1, pixels.data(), 8) != 0);
    std::string png = read_file(dir.file("png/a.png"));
    REQUIRE(png.substr(12, 4) == "IHDR");
    auto put_be32 = [&png](size_t at, uint32_t v) {
        for (int k = 0; k < 4; ++k) png[at + size_t(k)] = char((v >> (24 - 8 * k)) & 0xff);
    };
    put_be32(16, 26000), put_be32(20, 26000);  // width, height
    put_be32(29, uint32_t(crc32(0, reinterpret_cast<const Bytef*>(png.data() + 12), 17)));
    write_file(dir.file("png/a.png"), png);
    Command c = run_bounded(kTinyTrain + " --task image --data imagenet64:" + dir.file("png") +
                            " --out " + dir.file("run"));
    require_refused(c, dir.file("png/a.png"));
    REQUIRE_THAT(c.output, Catch::Contains("26000x26000") && Catch::Contains("4096x4096"));
    REQUIRE_FALSE(std::filesystem::exists(dir.file("run")));
}

TEST_CASE("hostile input: a gzip bomb as train's --data is refused, naming the file and the "
          "limit, without inflating it whole",
          "[hostile][programs]") {
    TempDir dir;
    // 50 gzip members of 100 MB of zeros each, one after the other (gzip reads them as one
    // stream): 5 GB of text in 5 MB, more than the 4 GiB run_bounded allows.
    std::string bomb = dir.file("bomb.txt.gz");
    Command make = run("head -c 100000000 /dev/zero | gzip -c > " + dir.file("part.gz") +
                       " && for i in $(seq 50); do cat " + dir.file("part.gz") + "; done > " + bomb);
    INFO(make.output);
    REQUIRE(make.exit_code == 0);
    REQUIRE(std::filesystem::file_size(bomb) < 10'000'000);
    Command c = run_bounded(kTinyText + " --data " + bomb + " --out " + dir.file("run"));
    require_refused(c, bomb);
    REQUIRE_THAT(c.output, Catch::Contains(std::to_string(kMaxInflation) + " times"));
    REQUIRE_FALSE(std::filesystem::exists(dir.file("run/model.ckpt")));
}
