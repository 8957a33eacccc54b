// scaling.cpp — data-parallel training on N machines: what this machine measured, and a
// model of the step time for N = 1..64 machines.
//
//   build/scaling --one runs/dp-1x2 --many runs/dp-2x1 --out results/scaling
//
// --one is a run of one process (all cores), --many the same run on several processes
// (mpirun -np N build/train ..., one core each): their summary.json give the measured
// tokens/s and the seconds per step spent summing gradients. The model then takes the
// one-process compute rate and the gradient's size (4 bytes a parameter) and adds a ring
// all-reduce, the usual algorithm between machines, which sends and receives
//   2 (N - 1) / N x G bytes   in   2 (N - 1) messages
// per machine and step. With bandwidth W and a latency a per message (a = 30 us: TCP over
// Ethernet), and no overlap of communication with compute (as build/train does it):
//   step(N) = b L / r  +  2 (N - 1) / N x G / W  +  2 (N - 1) a,
// for b sequences of L tokens per machine at r tokens/s. Efficiency: the compute share of
// the step. The smallest per-machine batch with at least 90% efficiency solves
//   b L / r >= 9 (all-reduce time).
// Writes OUT.csv, OUT.md (the table) and OUT.png (efficiency against N), and a result line.
#include "engine/error.h"
#include "tools/util/cli.h"
#include "tools/util/csv.h"
#include "engine/files.h"
#include "tools/util/plot.h"
#include "tools/util/result.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>

using namespace pf;

namespace {

constexpr double kLatencyS = 30e-6;                    // per message
constexpr double kGigabit = 1e9 / 8;                   // bytes per second
const std::vector<double> kBandwidths = {10 * kGigabit, 100 * kGigabit};
const std::vector<int> kMachines = {1, 2, 4, 8, 16, 32, 64};

// What a run's summary.json says.
struct Measured {
    double tokens_per_s, sum_s_per_step, parameters, batch, seq_len, processes, threads;
};

// Every figure the tables divide by or print must be there and make sense: a speed of 0
// or -5 tokens/s would print -nan% and infinite step times.
Measured read_summary(const std::string& run) {
    const std::string path = (std::filesystem::path(run) / "summary.json").string();
    const auto json = nlohmann::json::parse(read_file(path), nullptr, false);
    PF_CHECK(json.is_object(), "{}: not a JSON object", path);
    auto figure = [&](const char* key, bool zero_allowed) {
        auto it = json.find(key);
        PF_CHECK(it != json.end() && it->is_number(), "{}: no {} (not a finished build/train run?)",
                 path, key);
        const double value = it->get<double>();
        PF_CHECK(std::isfinite(value) && (value > 0 || (zero_allowed && value == 0)),
                 "{}: {} is {}, but must be a finite number {} 0", path, key, value,
                 zero_allowed ? ">=" : ">");
        return value;
    };
    return {figure("tokens_per_s", false), figure("sum_s_per_step", true),
            figure("parameters", false),   figure("batch", false),
            figure("seq_len", false),      figure("processes", false),
            figure("threads", false)};
}

double ring_allreduce_s(int machines, double gradient_bytes, double bandwidth) {
    const double n = machines;
    return 2 * (n - 1) / n * gradient_bytes / bandwidth + 2 * (n - 1) * kLatencyS;
}

// The measured comparison: one process on all cores against N processes of one core.
void print_measured(const Measured& one, const Measured& many, ResultLine& result) {
    const double step_s = many.batch * many.seq_len / many.tokens_per_s;
    fmt::print("measured, one run after the other on this machine:\n"
               "  1 process x {:.0f} threads: {:.0f} tokens/s\n"
               "  {:.0f} processes x {:.0f} thread: {:.0f} tokens/s ({:.2f}x), of a {:.2f} s step "
               "{:.1f} ms summing gradients ({:.1f}%)\n",
               one.threads, one.tokens_per_s, many.processes, many.threads, many.tokens_per_s,
               many.tokens_per_s / one.tokens_per_s, step_s, many.sum_s_per_step * 1e3,
               100 * many.sum_s_per_step / step_s);
    result.add("processes_vs_threads", many.tokens_per_s / one.tokens_per_s)
        .add("sum_ms_per_step", many.sum_s_per_step * 1e3)
        .add("sum_share", many.sum_s_per_step / step_s);
}

// The model's table for each number of machines and bandwidth, as CSV rows and Markdown.
void write_model(const Measured& one, const std::string& out, ResultLine& result) {
    const double gradient_bytes = 4 * one.parameters, token_s = 1 / one.tokens_per_s;
    const double sequence_s = one.seq_len * token_s, compute_s = one.batch * sequence_s;
    CsvWriter csv(out + ".csv", {"machines", "gbit_s", "allreduce_s", "step_s", "efficiency",
                                 "batch_for_90", "global_batch_for_90"});
    std::string md = fmt::format(
        "| machines | all-reduce 10 / 100 Gbit/s (ms) | efficiency at {:.0f} sequences per machine "
        "| the same, compute 100x faster | sequences per machine for 90% |\n"
        "|---|---|---|---|---|\n", one.batch);
    std::vector<PlotSpec> panels(1, PlotSpec{"Data-parallel efficiency (model)", "machines",
                                             "compute share of the step"});
    panels[0].log_x = true;
    for (double bandwidth : kBandwidths)
        for (double speedup : {1.0, 100.0})
            panels[0].series.push_back({fmt::format("{:.0f} Gbit/s{}", bandwidth / kGigabit,
                                                    speedup > 1 ? ", compute 100x faster" : ""), {}, {}});
    for (int n : kMachines) {
        std::string cells[4];
        for (size_t w = 0; w < kBandwidths.size(); ++w) {
            const double allreduce = ring_allreduce_s(n, gradient_bytes, kBandwidths[w]);
            const double efficiency = compute_s / (compute_s + allreduce);
            const double batch_90 = std::max(1.0, std::ceil(9 * allreduce / sequence_s));
            csv.row({double(n), kBandwidths[w] / kGigabit, allreduce, compute_s + allreduce,
                     efficiency, batch_90, batch_90 * n});
            cells[0] += fmt::format("{}{:.1f}", w ? " / " : "", allreduce * 1e3);
            cells[1] += fmt::format("{}{:.1f}%", w ? " / " : "", 100 * efficiency);
            cells[2] += fmt::format("{}{:.1f}%", w ? " / " : "",
                                    100 * compute_s / (compute_s + 100 * allreduce));
            cells[3] += fmt::format("{}{:.0f}", w ? " / " : "", batch_90);
            for (int fast = 0; fast < 2; ++fast) {
                const double c = fast ? compute_s / 100 : compute_s;
                Series& series = panels[0].series[2 * w + fast];
                series.x.push_back(n), series.y.push_back(c / (c + allreduce));
            }
            if (n == 64) result.add(fmt::format("efficiency_64_{:.0f}gbit", kBandwidths[w] / kGigabit), efficiency);
        }
        md += fmt::format("| {} | {} | {} | {} | {} |\n", n, cells[0], cells[1], cells[2], cells[3]);
    }
    fmt::print("\nmodel: {:.2f} M parameters ({:.1f} MB of gradient), {:.2f} s of compute for {:.0f} "
               "sequences of {:.0f} tokens per machine\n{}", one.parameters / 1e6,
               gradient_bytes / 1e6, compute_s, one.batch, one.seq_len, md);
    write_file(out + ".md", md);
    try {
        plot_png(out + ".png", panels[0]);
    } catch (const std::exception& e) {
        fmt::print(stderr, "warning: no plot: {}\n", e.what());
    }
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Data-parallel training: measured processes against threads, and a model "
                 "of the step time on N machines", "scaling"};
    std::string one_run, many_run, out = "results/scaling";
    app.add_option("--one", one_run, "a finished run of one process")->required();
    app.add_option("--many", many_run, "the same run with mpirun -np N")->required();
    app.add_option("--out", out, "OUT.csv, OUT.md and OUT.png")->check(output_file());
    return run_program(app, argc, argv, [&] {
        const Measured one = read_summary(one_run), many = read_summary(many_run);
        std::filesystem::path out_path(out);
        if (out_path.has_parent_path()) std::filesystem::create_directories(out_path.parent_path());
        ResultLine result;
        print_measured(one, many, result);
        write_model(one, out, result);
        result.print();
        return 0;
    });
}
