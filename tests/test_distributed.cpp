// test_distributed.cpp — data-parallel training over MPI (tools/distributed/):
// two processes train exactly the model that one process with two micro-batches trains,
// and to float32 rounding the model of one process with the whole batch; a run resumes
// with another number of processes; Ctrl-C in one process stops them all with a
// checkpoint; a process that dies stops the others. Skipped (with a message) where
// mpirun is missing. Also a batch's parts (their rows, shares of the loss and dropout
// masks), and the dropout draws by rows of a batch that make the masks independent of
// how a batch is split.
#include "programs.h"

#include "engine/ops.h"
#include "models/vocabulary.h"
#include "nn/checkpoint.h"
#include "nn/layers.h"
#include "tools/distributed/data_parallel.h"

#include <signal.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <thread>

using namespace pf;
using namespace pf::testing;
namespace fs = std::filesystem;

namespace {

bool have_mpirun() {
    if (std::system("command -v mpirun > /dev/null 2>&1") == 0) return true;
    WARN("mpirun is missing (Debian package openmpi-bin): the MPI tests are skipped");
    return false;
}

// Two processes on this machine, allowed as root and on fewer cores than processes.
// Under `make sanitize`, LeakSanitizer would report Open MPI's own allocations at exit
// (its plugins', unloaded before the check, so no suppression can name them): leak
// checking is off for the processes mpirun starts. The rest of the suite checks ours.
const std::string kMpirun = "env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
                            "ASAN_OPTIONS=detect_leaks=0 mpirun --oversubscribe -np 2 ";

// The largest difference between the model tensors of two checkpoints, and whether all
// tensors (model and optimizer state) and generators are bit-identical.
struct Difference {
    double max_abs = 0, max_value = 0;
    bool identical = true;
};
Difference compare(const std::string& a_path, const std::string& b_path) {
    nn::Checkpoint a = nn::load_checkpoint(a_path), b = nn::load_checkpoint(b_path);
    REQUIRE(a.step == b.step);
    REQUIRE(a.tensors.size() == b.tensors.size());
    Difference d;
    d.identical = a.generators == b.generators;
    for (size_t i = 0; i < a.tensors.size(); ++i) {
        REQUIRE(a.tensors[i].first == b.tensors[i].first);
        std::vector<float> x = a.tensors[i].second.to_vector(), y = b.tensors[i].second.to_vector();
        d.identical = d.identical && x == y;
        if (a.tensors[i].first.rfind("model.", 0) != 0) continue;
        for (size_t j = 0; j < x.size(); ++j) {
            d.max_abs = std::max(d.max_abs, double(std::fabs(x[j] - y[j])));
            d.max_value = std::max(d.max_value, double(std::fabs(x[j])));
        }
    }
    return d;
}

// The held-out rows of a run's log.
std::vector<std::string> held_out_rows(const std::string& run) {
    std::vector<std::string> rows;
    std::string log = read_file(run + "/log.csv");
    for (size_t begin = 0; begin < log.size();) {
        size_t end = std::min(log.find('\n', begin), log.size());
        std::string line = log.substr(begin, end - begin);
        if (line.find(",valid,") != std::string::npos) rows.push_back(line.substr(0, line.rfind(',')));
        begin = end + 1;
    }
    return rows;
}

}  // namespace

TEST_CASE("dropout on rows of a batch draws what the whole batch draws at those rows",
          "[distributed]") {
    Generator whole_gen(9), parts_gen(9);
    nn::Dropout whole(0.5f, whole_gen), parts(0.5f, parts_gen);
    Tensor all = whole.forward(Tensor::ones({7, 5}));
    // Rows 0..2, 3..4, 5..6 of the same 7 rows, each from the same starting offset.
    std::vector<float> joined;
    for (auto [first, rows] : std::vector<std::pair<int64_t, int64_t>>{{0, 3}, {3, 2}, {5, 2}}) {
        parts_gen.set_state(9, 0);
        parts.set_rows({first, rows, 7});
        std::vector<float> part = parts.forward(Tensor::ones({rows, 5})).to_vector();
        joined.insert(joined.end(), part.begin(), part.end());
        REQUIRE(parts_gen.offset() == whole_gen.offset());  // every part ends where the whole ends
    }
    REQUIRE(joined == all.to_vector());
    parts.set_rows({0, 3, 7});
    REQUIRE_THROWS_WITH(parts.forward(Tensor::ones({10})), Catch::Contains("not 3 rows"));
    REQUIRE_THROWS_WITH(parts.set_rows({5, 3, 7}), Catch::Contains("not rows of a batch of 7"));
}

TEST_CASE("a batch's parts: even rows, shares of the loss, the whole batch's dropout masks",
          "[distributed]") {
    using distributed::part_of;
    std::vector<int64_t> rows;
    for (int64_t k = 0; k < 4; ++k) rows.push_back(part_of(10, 4, k).rows);
    REQUIRE(rows == std::vector<int64_t>{3, 3, 2, 2});
    REQUIRE(part_of(10, 4, 2).first == 6);

    // 7 rows of 4 tokens, some not scored; one process, 3 micro-batches of 3, 2, 2 rows.
    models::Batch batch;
    batch.batch = 7, batch.length = 4;
    for (int32_t i = 0; i < 28; ++i) {
        batch.inputs.push_back(i);
        batch.targets.push_back(i % 3 == 0 ? models::kIgnore : i);
    }
    Generator dropout(9), whole_gen(9);
    dropout.advance(5), whole_gen.advance(5);
    nn::Dropout model(0.5f, dropout), whole(0.5f, whole_gen);
    const distributed::DataParallel parallel(distributed::Processes::world(), 3);
    std::vector<distributed::Part> parts = parallel.parts(batch, dropout);
    REQUIRE(parts.size() == 3);
    std::vector<int32_t> inputs;
    std::vector<float> masks;
    double shares = 0;
    for (const distributed::Part& part : parts) {
        inputs.insert(inputs.end(), part.batch.inputs.begin(), part.batch.inputs.end());
        shares += part.share(Tensor::ones({})).item();
        part.draw_dropout(model, dropout);
        std::vector<float> mask = model.forward(Tensor::ones({part.batch.batch, 4})).to_vector();
        masks.insert(masks.end(), mask.begin(), mask.end());
    }
    REQUIRE(parts[1].range.first == 3);
    REQUIRE(parts[1].batch.batch == 2);
    REQUIRE(inputs == batch.inputs);
    REQUIRE(shares == Approx(1.0));  // each part's scored targets / the batch's
    REQUIRE(parts[0].share(Tensor::ones({})).item() == Approx(8.0 / 18.0));
    REQUIRE(masks == whole.forward(Tensor::ones({7, 4})).to_vector());
    REQUIRE(dropout.offset() == whole_gen.offset());

    // One process: nothing to sum, the gradients left as they are.
    Tensor w = Tensor::ones({2}).requires_grad_();
    sum(w * 3.0f).backward();
    distributed::Summed total = parallel.sum({w}, 1.5f, true);
    REQUIRE(total.loss == 1.5f);
    REQUIRE(total.interrupted);
    REQUIRE(w.grad().to_vector() == std::vector<float>{3, 3});
}

TEST_CASE("2 processes train the model of 1 process with 2 micro-batches, bit for bit",
          "[distributed][programs]") {
    if (!have_mpirun()) return;
    TempDir dir;
    // Uneven parts (5 = 3 + 2 rows), dropout, redraws; and a masked protein model, whose
    // parts score different numbers of tokens and have padding.
    const std::string text = "build/train --task text --data " + write_corpus(dir) +
                             " --layers 2 --dim 16 --heads 2 --features 8 --seq-len 32 --batch 5"
                             " --steps 8 --eval-every 4 --eval-batches 3 --dropout 0.1"
                             " --redraw 3 --seed 4";
    const std::string protein = "build/train --task protein --objective masked --data " +
                                write_fasta(dir) + " --layers 1 --dim 16 --heads 2 --features 8"
                                " --seq-len 24 --batch 6 --steps 6 --eval-every 3 --seed 5";
    for (const std::string& command : {text, protein}) {
        INFO(command);
        Command two = run(kMpirun + command + " --out " + dir.file("two"));
        INFO(two.output);
        REQUIRE(two.exit_code == 0);
        REQUIRE_THAT(two.output, Catch::Contains("2 processes"));
        REQUIRE(run(command + " --threads 1 --micro-batches 2 --out " + dir.file("micro")).exit_code == 0);
        REQUIRE(run(command + " --threads 1 --out " + dir.file("one")).exit_code == 0);

        Difference same = compare(dir.file("two/model.ckpt"), dir.file("micro/model.ckpt"));
        REQUIRE(same.identical);  // parameters, optimizer state, generators
        REQUIRE(held_out_rows(dir.file("two")) == held_out_rows(dir.file("micro")));
        // One process with the whole batch adds the rows' gradients in another order
        // (one GEMM over all rows instead of two over 3 and 2, then a sum): float32
        // rounding, about 1e-7 relative per gradient, which AdamW turns into changes of
        // about lr x 1e-7 per step. Measured: 8.5e-8 after 12 steps; allowed: 100x that.
        Difference close = compare(dir.file("two/model.ckpt"), dir.file("one/model.ckpt"));
        INFO("largest difference " << close.max_abs << " in values up to " << close.max_value);
        REQUIRE(close.max_abs < 1e-5);
        fs::remove_all(dir.file("two")), fs::remove_all(dir.file("micro")), fs::remove_all(dir.file("one"));
    }
}

TEST_CASE("a run resumes with another number of processes: the data order is the seed's",
          "[distributed][programs]") {
    if (!have_mpirun()) return;
    TempDir dir;
    const std::string command = "build/train --task text --data " + write_corpus(dir) +
                                " --layers 1 --dim 16 --heads 2 --features 8 --seq-len 16"
                                " --batch 4 --steps 8 --dropout 0.1 --seed 6 --threads 1";
    REQUIRE(run(command + " --out " + dir.file("straight")).exit_code == 0);
    // 2 processes to step 4, then 1; and 1 process to step 4, then 2.
    REQUIRE(run(kMpirun + command + " --stop-after 4 --out " + dir.file("a")).exit_code == 0);
    Command a = run("build/train --resume --steps 8 --threads 1 --out " + dir.file("a"));
    INFO(a.output);
    REQUIRE(a.exit_code == 0);
    REQUIRE(run(command + " --stop-after 4 --out " + dir.file("b")).exit_code == 0);
    Command b = run(kMpirun + "build/train --resume --steps 8 --out " + dir.file("b"));
    INFO(b.output);
    REQUIRE(b.exit_code == 0);
    for (const char* resumed : {"a", "b"}) {
        INFO(resumed);
        Difference d = compare(dir.file("straight/model.ckpt"), dir.file(std::string(resumed) + "/model.ckpt"));
        REQUIRE(d.max_abs < 1e-5);  // rounding only, as above
        nn::Checkpoint straight = nn::load_checkpoint(dir.file("straight/model.ckpt"));
        nn::Checkpoint other = nn::load_checkpoint(dir.file(std::string(resumed) + "/model.ckpt"));
        REQUIRE(straight.generators == other.generators);  // the same batches, masks, features
        REQUIRE(other.config.count("train.processes") == 0);
    }
}

TEST_CASE("Ctrl-C in one process stops both with a checkpoint; a process that dies stops "
          "the other", "[distributed][programs]") {
    if (!have_mpirun()) return;
    TempDir dir;
    const std::string command = "build/train --task text --data " + write_corpus(dir) +
                                " --layers 2 --dim 32 --heads 2 --features 16 --seq-len 64"
                                " --batch 4 --steps 100000 --eval-every 100000 --out ";
    for (int signal : {SIGINT, SIGKILL}) {
        INFO("signal " << signal);
        const std::string out = dir.file("run" + std::to_string(signal));
        // Start both, wait for training, then signal one process (mpirun's last child).
        write_file(dir.file("signal.sh"),
                   kMpirun + command + out + " > " + out + ".txt 2>&1 &\n"
                   "mpirun=$!\n"
                   "for i in $(seq 600); do [ -s " + out + "/log.csv ] && break; sleep 0.1; done\n"
                   "sleep 1\n"
                   "kill -" + std::to_string(signal) + " $(pgrep -P $mpirun | tail -1)\n"
                   "wait $mpirun\n"
                   "echo exit=$?\n");
        Command c = run("bash " + dir.file("signal.sh"));
        std::string output = read_file(out + ".txt");
        INFO(c.output << output);
        if (signal == SIGINT) {
            REQUIRE_THAT(c.output, Catch::Contains("exit=0"));
            REQUIRE_THAT(output, Catch::Contains("interrupted at step"));
            nn::Checkpoint saved = nn::load_checkpoint(out + "/model.ckpt");
            REQUIRE(saved.step >= 1);
            REQUIRE(saved.step < 100000);
        } else {
            REQUIRE_THAT(c.output, !Catch::Contains("exit=0"));
            REQUIRE_THAT(output, Catch::Contains("signal 9") || Catch::Contains("Killed") ||
                                     Catch::Contains("exited on signal"));
        }
    }
}
