// test_bench.cpp — build/bench --paper as a smoke run: the paper's whole model at short
// lengths, its CSV, plot and result line, and a length the memory budget rules out
// recorded with the reason instead of a time; build/bench_model --scaling, and the
// OpenBLAS kernel every program chooses.
//
// The program tests run the binaries under build/ (make test builds them first).
#include "programs.h"

#include "engine/blas.h"
#include "engine/cpu_features.h"
#include "tools/util/csv.h"
#include "engine/files.h"
#include "tools/util/plot.h"

#include <cmath>
#include <filesystem>

using namespace pf;
using namespace pf::testing;

// With a budget of 0.2 GiB of tensors, L = 256 runs (about 140-180 MiB, parameters and
// gradients included) and L = 512 cannot: the parameters and their gradients alone
// (about 150 MiB) doubled are over it. About 4 s: 6 runs of 2 steps at L = 256.
TEST_CASE("bench --paper --quick: the 6-layer model at L = 256; L = 512 over the budget is "
          "skipped, saying why", "[programs]") {
    TempDir dir;
    std::string csv_path = dir.file("paper.csv");
    Command c = run("build/bench --paper --quick --memory-budget 0.2 --out " + csv_path);
    INFO(c.output);
    REQUIRE(c.exit_code == 0);

    CsvTable table = read_csv(csv_path);
    REQUIRE(table.rows.size() == 12);  // softmax, favor, identity x bidir, causal x 256, 512
    size_t length = table.column("length"), seconds = table.column("seconds"),
           status = table.column("status");
    for (size_t row = 0; row < table.rows.size(); ++row) {
        INFO(table.rows[row][table.column("attention")] << " " << table.rows[row][length]);
        if (table.rows[row][length] == "256") {
            CHECK(table.rows[row][status] == "ok");
            CHECK(table.number(row, seconds) > 0);
        } else {
            CHECK(table.rows[row][status].rfind("over budget: would need", 0) == 0);
            CHECK(std::isnan(table.number(row, seconds)));
        }
    }
    if (gnuplot_available()) CHECK(std::filesystem::exists(dir.file("paper.png")));

    auto result = parse_result_line(c.output);
    CHECK(result.at("paper_max_length_favor") == "256");
    CHECK(result.at("paper_max_length_softmax_causal") == "256");
    CHECK(result.at("paper_favor_vs_identity_8192") == "nan");  // 8192 is not in the run
    CHECK(c.output.find("note: paper_favor_vs_identity_8192 is nan") != std::string::npos);

    // --recompute: FAVOR+ alone, the same GEMMs forward plus attention's again, in less memory.
    std::string recomputed_path = dir.file("recomputed.csv");
    Command r = run("build/bench --paper --quick --recompute --memory-budget 0.2 --out " +
                    recomputed_path);
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CsvTable recomputed = read_csv(recomputed_path);
    REQUIRE(recomputed.rows.size() == 4);  // favor x bidir, causal x 256, 512
    auto favor_at_256 = [&](const CsvTable& t, const std::string& mode) {
        for (size_t row = 0; row < t.rows.size(); ++row)
            if (t.rows[row][t.column("attention")] == "favor" && t.rows[row][t.column("mode")] == mode &&
                t.rows[row][t.column("length")] == "256")
                return row;
        FAIL("no favor " << mode << " row at L = 256");
        return size_t(0);
    };
    for (std::string mode : {"bidirectional", "causal"}) {
        INFO(mode);
        size_t a = favor_at_256(table, mode), b = favor_at_256(recomputed, mode);
        CHECK(recomputed.number(b, recomputed.column("peak_mib")) <
              table.number(a, table.column("peak_mib")));
        CHECK(recomputed.number(b, recomputed.column("gemm_gflop")) >
              table.number(a, table.column("gemm_gflop")));
    }
    CHECK(parse_result_line(r.output).at("paper_max_length_favor_recompute") == "256");
}

// The kernel line, the choice of kernels and the scaling table, on the --quick model
// (batch 2, L 256). The test process runs with OPENBLAS_CORETYPE set (tests/main.cpp
// chose it, or the user did), so each run states its environment.
TEST_CASE("bench_model --scaling: kernels as wide as the CPU unless the user chose, the "
          "speedups, the pieces and Amdahl's prediction", "[bench][program]") {
    const std::string quick = " build/bench_model --scaling --quick --steps 1 --thread-counts ";
    // Left to choose: OpenBLAS runs a set at least as wide as the CPU's (or, on a CPU with
    // no more than SSE3, whatever it picked).
    Command c = run("env -u OPENBLAS_CORETYPE -u PF_OPENBLAS_PICKED" + quick + "1,2");
    INFO(c.output);
    REQUIRE(c.exit_code == 0);
    REQUIRE(c.output.find("OpenBLAS kernels: ") != std::string::npos);
    auto result = parse_result_line(c.output);
    const std::string wanted = blas::kernel_for(cpu_features());
    if (!wanted.empty())
        CHECK(blas::kernel_level(result.at("blas_core")) >= blas::kernel_level(wanted));
    for (std::string key : {"speedup_1", "speedup_2", "predicted_speedup_16", "predicted_speedup_64"})
        CHECK(std::stod(result.at(key)) > 0);
    CHECK(std::stod(result.at("speedup_2")) == 1.0);  // speedups are over 2 threads
    // More threads never predict a slower step; the largest product offers 64 pieces.
    CHECK(std::stod(result.at("predicted_speedup_64")) >= std::stod(result.at("predicted_speedup_16")));
    CHECK(c.output.find("blas::gemm") != std::string::npos);
    // A value the user set is never overridden, even the slowest kernels.
    Command prescott = run("env -u PF_OPENBLAS_PICKED OPENBLAS_CORETYPE=Prescott" + quick + "1");
    INFO(prescott.output);
    REQUIRE(prescott.exit_code == 0);
    CHECK(parse_result_line(prescott.output).at("blas_core") == "Prescott");
    CHECK(prescott.output.find("(OPENBLAS_CORETYPE=Prescott)") != std::string::npos);
    // A malformed list of thread counts is refused, with exit code 2.
    Command bad = run(quick + "1,x");
    CHECK(bad.exit_code == 2);
    CHECK(bad.output.find("'x' is not a thread count") != std::string::npos);
}
