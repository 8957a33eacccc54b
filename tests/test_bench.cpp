// test_bench.cpp — build/bench --paper as a smoke run: the paper's whole model at short
// lengths, its CSV, plot and result line, and a length the memory budget rules out
// recorded with the reason instead of a time.
//
// The program tests run the binaries under build/ (make test builds them first).
#include "programs.h"

#include "tools/util/csv.h"
#include "tools/util/files.h"
#include "tools/util/plot.h"
#include "tools/util/result.h"

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
