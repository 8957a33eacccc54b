// test_hostile_files.cpp — files that try to break the programs: output paths that are
// devices, FIFOs or symbolic links; two trainers on one run folder; checkpoints whose
// checksum holds but whose configuration lies; flags a checkpoint could not hold; flags
// that contradict the run being resumed; temporary files left by a crash. Each ends
// with exit code 2 and a message naming the problem, and nothing is lost.
//
// The program tests run the binaries under build/ (make test builds them first).
#include "programs.h"

#include "engine/files.h"
#include "models/run.h"
#include "nn/checkpoint.h"
#include "tools/training/trainer.h"
#include "tools/util/csv.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

using namespace pf;
using namespace pf::testing;
namespace fs = std::filesystem;

namespace {

// The tiny text run of the programs' tests, as a command line.
const std::string kTinyText = "--task text --layers 1 --dim 16 --heads 2 --features 8 "
                              "--seq-len 16 --batch 2 --steps 2 --eval-batches 1";

std::string train_command(const std::string& data, const std::string& out) {
    return "build/train " + kTinyText + " --data " + data + " --out " + out;
}

// A tiny text run trained in this process; returns its checkpoint's path.
std::string train_tiny_text(const TempDir& dir, const std::string& run) {
    training::TrainOptions o;
    o.task.kind = models::TaskKind::Text;
    o.task.data = write_corpus(dir);
    o.model.layers = 1, o.model.attention.dim = 16, o.model.attention.heads = 2, o.model.ff = 32;
    o.model.attention.features = 8;
    o.task.seq_len = 16, o.batch = 2, o.steps = 2, o.eval_batches = 1;
    o.out = dir.file(run);
    o.quiet = true;
    REQUIRE(training::train(o) == 0);
    return dir.file(run + "/model.ckpt");
}

// A copy of `checkpoint` with one configuration value changed (the checksum is valid).
std::string with_config(const TempDir& dir, const std::string& checkpoint,
                        const std::string& key, const std::string& value) {
    nn::Checkpoint changed = nn::load_checkpoint(checkpoint);
    REQUIRE(changed.config.count(key) == 1);
    changed.config[key] = value;
    std::string path = dir.file(key + "=" + value + ".ckpt");
    nn::save_checkpoint(path, changed);
    return path;
}

bool is_fifo(const std::string& path) {
    struct stat info {};
    return ::lstat(path.c_str(), &info) == 0 && S_ISFIFO(info.st_mode);
}

}  // namespace

TEST_CASE("write_file replaces a regular file or nothing: links and FIFOs are refused",
          "[hostile][nn]") {
    TempDir dir;
    std::string target = dir.file("target.txt"), link = dir.file("link.txt");
    write_file(target, "kept");
    fs::create_symlink(target, link);
    REQUIRE_THROWS_WITH(write_file(link, "new"),
                        Catch::Contains(link) && Catch::Contains("symbolic link"));
    REQUIRE(fs::is_symlink(link));
    REQUIRE(read_file(target) == "kept");

    std::string fifo = dir.file("fifo");
    REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
    REQUIRE_THROWS_WITH(write_file(fifo, "new"),
                        Catch::Contains(fifo) && Catch::Contains("FIFO"));
    REQUIRE(is_fifo(fifo));

    // Nothing was left beside them, and a regular file is still replaced.
    write_file(target, "new");
    REQUIRE(read_file(target) == "new");
    auto entries = std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator());
    REQUIRE(entries == 3);  // target.txt, link.txt, fifo
}

TEST_CASE("sample --out onto a symbolic link, a FIFO or /dev/full exits 2 and leaves it be",
          "[hostile][programs]") {
    TempDir dir;
    training::TrainOptions o;
    o.task.kind = models::TaskKind::Image;
    o.task.data = write_image_folder(dir, 4, 4, 4);
    o.model.layers = 1, o.model.attention.dim = 16, o.model.attention.heads = 2, o.model.ff = 32;
    o.model.attention.features = 8;
    o.batch = 2, o.steps = 1, o.eval_batches = 1;
    o.out = dir.file("run");
    o.quiet = true;
    REQUIRE(training::train(o) == 0);
    std::string sample = "build/sample --ckpt " + dir.file("run/model.ckpt") + " --n 1 --out ";

    std::string target = dir.file("kept.png"), link = dir.file("link.png");
    write_file(target, "kept");
    fs::create_symlink(target, link);
    Command through_link = run(sample + link);
    INFO(through_link.output);
    REQUIRE(through_link.exit_code == 2);
    REQUIRE_THAT(through_link.output, Catch::Contains(link));
    REQUIRE(fs::is_symlink(link));
    REQUIRE(read_file(target) == "kept");

    std::string fifo = dir.file("fifo.png");
    REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
    Command onto_fifo = run(sample + fifo);
    INFO(onto_fifo.output);
    REQUIRE(onto_fifo.exit_code == 2);
    REQUIRE_THAT(onto_fifo.output, Catch::Contains(fifo));
    REQUIRE(is_fifo(fifo));

    // The reported case: as root, /dev/full became a PNG.
    if (fs::is_character_file("/dev/full")) {
        Command onto_device = run(sample + "/dev/full");
        INFO(onto_device.output);
        REQUIRE(onto_device.exit_code == 2);
        REQUIRE(fs::is_character_file("/dev/full"));
    }
    REQUIRE(run(sample + dir.file("fine.png")).exit_code == 0);
}

TEST_CASE("one trainer per run folder: a second is refused naming the first, and the lock "
          "goes with the first", "[hostile][training][programs]") {
    TempDir dir;
    std::string corpus = write_corpus(dir), out = dir.file("run");
    fs::create_directories(out);
    {
        FileLock held(out + "/train.lock");  // as a running trainer holds it
        REQUIRE_THROWS_WITH(FileLock(out + "/train.lock"),
                            Catch::Contains("pid " + std::to_string(::getpid())));
        Command second = run(train_command(corpus, out));
        INFO(second.output);
        REQUIRE(second.exit_code == 2);
        REQUIRE_THAT(second.output, Catch::Contains(out + "/train.lock") &&
                                        Catch::Contains("pid " + std::to_string(::getpid())));
        REQUIRE_FALSE(fs::exists(out + "/log.csv"));
    }
    Command first = run(train_command(corpus, out));
    INFO(first.output);
    REQUIRE(first.exit_code == 0);
    FileLock free_again(out + "/train.lock");  // the trainer has ended: the lock is free
}

TEST_CASE("checkpoint configurations are checked on load: sizes, ranges, shapes",
          "[hostile][training][programs]") {
    TempDir dir;
    std::string checkpoint = train_tiny_text(dir, "run");
    Generator dropout(0);

    SECTION("train.seq_len = 0 (was SIGFPE in eval)") {
        std::string bad = with_config(dir, checkpoint, "train.seq_len", "0");
        for (std::string program : {"build/eval", "build/sample"}) {
            Command c = run(program + " --ckpt " + bad);
            INFO(program << ": " << c.output);
            REQUIRE(c.exit_code == 2);
            REQUIRE_THAT(c.output, Catch::Contains("train.seq_len") && Catch::Contains(bad));
        }
    }
    SECTION("out-of-range values name their key") {
        for (auto [key, value] : std::vector<std::pair<std::string, std::string>>{
                 {"model.heads", "0"}, {"model.dim", "-16"}, {"model.feature_kind", "2"},
                 {"model.attention", "performer"}, {"task.task", "video"},
                 {"train.seq_len", "100000"}}) {
            INFO(key << " = " << value);
            REQUIRE_THROWS_WITH(models::load_model(with_config(dir, checkpoint, key, value),
                                                   dropout),
                                Catch::Contains(key));
        }
    }
    SECTION("the schedule's values are checked when the run is resumed") {
        for (auto [key, value] : std::vector<std::pair<std::string, std::string>>{
                 {"train.batch", "0"}, {"train.eval_batches", "-3"}, {"train.lr", "nan"},
                 {"train.lr", "0"}, {"train.elapsed_s", "-1"}}) {
            INFO(key << " = " << value);
            std::string out = dir.file("resume " + key + "=" + value);
            fs::create_directories(out);
            fs::copy_file(with_config(dir, checkpoint, key, value), out + "/model.ckpt");
            training::TrainOptions o;
            o.out = out, o.resume = true, o.steps = 4, o.quiet = true;
            REQUIRE_THROWS_WITH(training::train(o), Catch::Contains(key));
            REQUIRE_FALSE(fs::exists(out + "/log.csv"));
        }
    }
    SECTION("a train.batch of 2^31 is refused by the memory gate, before anything is allocated") {
        std::string out = dir.file("resume huge batch");
        fs::create_directories(out);
        fs::copy_file(with_config(dir, checkpoint, "train.batch", "2147483648"), out + "/model.ckpt");
        training::TrainOptions o;
        o.out = out, o.resume = true, o.steps = 4, o.quiet = true;
        REQUIRE_THROWS_WITH(training::train(o), Catch::Contains("batch 2147483648") &&
                                                    Catch::Contains("GiB"));
        REQUIRE_FALSE(fs::exists(out + "/log.csv"));
    }
    SECTION("a configuration larger than the tensors in the file is refused, not allocated") {
        for (auto [key, value] : std::vector<std::pair<std::string, std::string>>{
                 {"model.layers", "100000000"}, {"model.dim", "1000000"},
                 {"model.ff", "1000000000"}, {"model.max_length", "1000000000"},
                 {"model.vocab", "1000000000"}, {"model.features", "1000000000"}}) {
            INFO(key << " = " << value);
            REQUIRE_THROWS_WITH(models::load_model(with_config(dir, checkpoint, key, value),
                                                   dropout),
                                Catch::Contains(with_config(dir, checkpoint, key, value)) &&
                                    Catch::Contains(key.substr(key.find('.') + 1)));
        }
        Command c = run("build/eval --ckpt " + with_config(dir, checkpoint, "model.layers", "1e8"));
        INFO(c.output);
        REQUIRE(c.exit_code == 2);
        REQUIRE_THAT(c.output, Catch::Contains("model.layers"));
    }
    SECTION("--ckpt on a FIFO is refused, not waited on") {
        std::string fifo = dir.file("model.fifo");
        REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
        Command c = run("timeout 60 build/eval --ckpt " + fifo);
        INFO(c.output);
        REQUIRE(c.exit_code == 2);
        REQUIRE_THAT(c.output, Catch::Contains(fifo) && Catch::Contains("not a regular file"));
    }
}

TEST_CASE("the baselines' settings are checked against their tensors: before anything is "
          "allocated when they claim more, by the model's own tensors when less", "[hostile]") {
    for (std::string attention : {"reformer", "linformer"}) {
        INFO(attention);
        models::ModelConfig config;
        config.vocab = 11, config.layers = 1, config.ff = 32;
        config.attention.dim = 16, config.attention.heads = 2, config.attention.max_length = 16;
        config.attention.mechanism = nn::parse_mechanism(attention);
        config.attention.causal = attention == "reformer";  // linformer: bidirectional only
        config.attention.linformer_k = 8, config.attention.hashes = 2, config.attention.buckets = 4;
        models::TaskConfig task;
        task.seq_len = 16;
        Generator init(1), dropout(2);
        models::SequenceModel model(config, init, dropout);
        nn::Checkpoint checkpoint;
        nn::store_module(checkpoint, "model.", model);
        models::model_settings().write(config, checkpoint.config);
        models::task_settings().write(task, checkpoint.config);
        REQUIRE(models::read_saved_settings(checkpoint).model.attention.hashes == 2);

        std::vector<std::pair<std::string, std::string>> lies = {
            {"model.hashes", "1000000000"}, {"model.buckets", "2000000000"}};
        std::pair<std::string, std::string> small_lie = {"model.buckets", "6"};
        std::string tensor = "attention.rotations";
        if (attention == "linformer") {
            lies = {{"model.linformer_k", "1000000000"}, {"model.max_length", "1000000000"}};
            small_lie = {"model.linformer_k", "7"}, tensor = "attention.sequence_projection.E";
        }
        for (auto [key, value] : lies) {
            INFO(key << " = " << value);
            nn::Checkpoint lying = checkpoint;
            lying.config[key] = value;
            REQUIRE_THROWS_WITH(models::read_saved_settings(lying),
                                Catch::Contains(key + " " + value) && Catch::Contains("the file holds"));
        }
        // A lie within the file's size builds a model whose own tensors refuse the file.
        nn::Checkpoint lying = checkpoint;
        lying.config[small_lie.first] = small_lie.second;
        models::SavedSettings saved = models::read_saved_settings(lying);
        models::SequenceModel built(saved.model, init, dropout);
        REQUIRE_THROWS_WITH(nn::restore_module(lying, "model.", built),
                            Catch::Contains(tensor) && Catch::Contains("the model expects"));
    }
}

TEST_CASE("build/train refuses a causal linformer, saying why; a reformer run samples and "
          "scores token by token", "[hostile][programs]") {
    TempDir dir;
    std::string corpus = write_corpus(dir);
    Command refused = run(train_command(corpus, dir.file("linformer")) + " --attention linformer");
    INFO(refused.output);
    REQUIRE(refused.exit_code == 2);
    REQUIRE_THAT(refused.output, Catch::Contains("linformer cannot be causal"));
    REQUIRE_FALSE(fs::exists(dir.file("linformer/model.ckpt")));

    std::string out = dir.file("reformer");
    Command trained = run(train_command(corpus, out) + " --attention reformer --hashes 2 --buckets 4");
    INFO(trained.output);
    REQUIRE(trained.exit_code == 0);
    Command sampled = run("build/sample --ckpt " + out + "/model.ckpt --n 40 --prompt truth");
    INFO(sampled.output);
    REQUIRE(sampled.exit_code == 0);
    Command scored = run("build/eval --ckpt " + out + "/model.ckpt --context 20 --max-batches 1");
    INFO(scored.output);
    REQUIRE(scored.exit_code == 0);
    REQUIRE_THAT(scored.output, Catch::Contains("result: bits_per_byte="));
}

TEST_CASE("build/train accepts exactly the integers a checkpoint holds", "[hostile][programs]") {
    TempDir dir;
    std::string corpus = write_corpus(dir);
    for (std::string flags : {"--seed -1", "--seed 1e16", "--eval-batches 9e15", "--warmup 9e15",
                              "--max-images 9000000000000000", "--steps 1e17"}) {
        Command c = run(train_command(corpus, dir.file("refused")) + " " + flags);
        INFO(flags << ": " << c.output);
        REQUIRE(c.exit_code == 2);
        REQUIRE_THAT(c.output, Catch::Contains(flags.substr(0, flags.find(' '))));
        REQUIRE_FALSE(fs::exists(dir.file("refused/model.ckpt")));
    }
    // The largest accepted seed trains, and its checkpoint loads back and resumes.
    std::string out = dir.file("edge");
    Command trained = run(train_command(corpus, out) + " --seed 8999999999999999");
    INFO(trained.output);
    REQUIRE(trained.exit_code == 0);
    Command evaluated = run("build/eval --ckpt " + out + "/model.ckpt");
    INFO(evaluated.output);
    REQUIRE(evaluated.exit_code == 0);
    Command resumed = run("build/train --resume --steps 3 --out " + out);
    INFO(resumed.output);
    REQUIRE(resumed.exit_code == 0);
}

TEST_CASE("--resume refuses flags that contradict the run, works from any folder, and "
          "removes the temporary files of interrupted saves", "[hostile][training][programs]") {
    TempDir dir;
    write_file(dir.file("small.txt"), read_file(write_corpus(dir)));
    std::string out = dir.file("run"), train = fs::absolute("build/train").string();
    // Trained with a relative --data, from the data's folder.
    Command first = run("cd " + dir.path().string() + " && " + train + " " + kTinyText +
                        " --data small.txt --out run --stop-after 1");
    INFO(first.output);
    REQUIRE(first.exit_code == 0);

    for (auto [flags, shown] : std::vector<std::pair<std::string, std::string>>{
             {"--dim 32", "--dim 32"}, {"--lr 0.5", "--lr 0.5"},
             {"--data " + dir.file("corpus.txt"), "--data " + dir.file("corpus.txt")},
             {"--attention softmax", "--attention softmax"}}) {
        Command c = run("build/train --resume --out " + out + " " + flags);
        INFO(flags << ": " << c.output);
        REQUIRE(c.exit_code == 2);
        REQUIRE_THAT(c.output, Catch::Contains(shown) && Catch::Contains("conflicts"));
    }
    REQUIRE(nn::load_checkpoint(out + "/model.ckpt").step == 1);

    // A crash mid-save left a temporary file; the resume (from another folder, with the
    // run's own --dim and a new --steps) removes it and finishes.
    write_file(out + "/model.ckpt.tmp.Ab12Cd", "half a checkpoint");
    write_file(out + "/notes.txt", "mine");
    Command resumed = run("build/train --resume --out " + out + " --dim 16 --data " +
                          dir.file("small.txt") + " --steps 3");
    INFO(resumed.output);
    REQUIRE(resumed.exit_code == 0);
    REQUIRE(nn::load_checkpoint(out + "/model.ckpt").step == 3);
    REQUIRE_FALSE(fs::exists(out + "/model.ckpt.tmp.Ab12Cd"));
    REQUIRE(read_file(out + "/notes.txt") == "mine");
}

TEST_CASE("a run's outputs never follow a planted link: --resume refuses and leaves the "
          "targets alone", "[hostile][training][programs]") {
    TempDir dir;
    const std::string out = dir.file("run");
    Command first = run(train_command(write_corpus(dir), out) + " --stop-after 1");
    INFO(first.output);
    REQUIRE(first.exit_code == 0);
    for (const std::string name : {"loss.png", "summary.json", "log.csv", "train.lock"}) {
        INFO(name);
        const std::string precious = dir.file("precious-" + name), planted = out + "/" + name;
        write_file(precious, "precious");
        if (fs::exists(planted)) fs::remove(planted);
        fs::create_symlink(precious, planted);
        Command c = run("build/train --resume --steps 2 --out " + out);
        INFO(c.output);
        REQUIRE(c.exit_code == 2);
        REQUIRE_THAT(c.output, Catch::Contains(planted) && Catch::Contains("symbolic link"));
        REQUIRE(read_file(precious) == "precious");
        REQUIRE(nn::load_checkpoint(out + "/model.ckpt").step == 1);
        fs::remove(planted);
    }
    // With the links gone (and no log: a new one is started), the run finishes.
    Command resumed = run("build/train --resume --steps 2 --out " + out);
    INFO(resumed.output);
    REQUIRE(resumed.exit_code == 0);
    REQUIRE(nn::load_checkpoint(out + "/model.ckpt").step == 2);
}

TEST_CASE("--resume with a damaged log.csv: a bad row is named and the log kept; a row cut "
          "off by a crash, or an empty log, is no obstacle", "[hostile][training][programs]") {
    TempDir dir;
    const std::string corpus = write_corpus(dir);
    auto stopped_run = [&](const std::string& name) {
        const std::string out = dir.file(name);
        Command c = run(train_command(corpus, out) + " --eval-every 1");  // 2 steps
        INFO(c.output);
        REQUIRE(c.exit_code == 0);
        return out;
    };
    SECTION("a row whose step is not a number") {
        const std::string out = stopped_run("bad-row"), log = out + "/log.csv";
        std::string text = read_file(log);
        const size_t second_row = text.find('\n', text.find('\n') + 1) + 1;
        REQUIRE(text.compare(second_row, 2, "1,") == 0);
        text.replace(second_row, 1, "one");
        write_file(log, text);
        Command c = run("build/train --resume --steps 3 --out " + out);
        INFO(c.output);
        REQUIRE(c.exit_code == 2);
        REQUIRE_THAT(c.output, Catch::Contains(log + ":3") && Catch::Contains("'one' is not a number"));
        REQUIRE(read_file(log) == text);
    }
    SECTION("a last row cut off, or an empty log") {
        for (bool empty : {false, true}) {
            const std::string out = stopped_run(empty ? "empty" : "cut"), log = out + "/log.csv";
            const std::string text = read_file(log);
            write_file(log, empty ? "" : text.substr(0, text.size() - 5));
            Command c = run("build/train --resume --steps 3 --out " + out);
            INFO(c.output);
            REQUIRE(c.exit_code == 0);
            REQUIRE(nn::load_checkpoint(out + "/model.ckpt").step == 3);
            const CsvTable table = read_csv(log);
            REQUIRE(table.numbers("step").back() == 3);
        }
    }
}

TEST_CASE("model.chunk longer than the sequence costs no memory: a checkpoint's 20000 and "
          "--chunk 2^31 score and train as the sequence length does",
          "[hostile][training][programs]") {
    TempDir dir;
    const std::string corpus = write_corpus(dir);
    for (const std::string attention : {"favor", "reformer"}) {
        INFO(attention);
        const std::string out = dir.file(attention);
        Command trained = run_bounded(train_command(corpus, out) + " --attention " + attention);
        INFO(trained.output);
        REQUIRE(trained.exit_code == 0);
        const std::string checkpoint = out + "/model.ckpt";
        Command own = run_bounded("build/eval --ckpt " + checkpoint);
        Command huge = run_bounded("build/eval --ckpt " +
                                   with_config(dir, checkpoint, "model.chunk", "20000"));
        Command sequence = run_bounded("build/eval --ckpt " +
                                       with_config(dir, checkpoint, "model.chunk", "16"));
        INFO(own.output << huge.output << sequence.output);
        REQUIRE(own.exit_code == 0);
        REQUIRE(huge.exit_code == 0);
        REQUIRE(sequence.exit_code == 0);
        // The held-out score of a chunk longer than L equals that of chunks of L (one chunk).
        REQUIRE(parse_result_line(huge.output).at("bits_per_byte") ==
                parse_result_line(sequence.output).at("bits_per_byte"));
    }
    Command longest = run_bounded(train_command(corpus, dir.file("longest")) + " --chunk 2147483648");
    INFO(longest.output);
    REQUIRE(longest.exit_code == 0);
}
