// compare.cpp — put several training runs side by side: one plot, one table.
//
//   build/compare --runs runs/austen-softmax,runs/austen-favor --metric bits_per_byte
//                 --out results/austen
//
// Reads each run's log.csv (held-out rows) and summary.json, writes OUT.png (the
// held-out metric of every run against the step; with --seconds, beside it against the
// seconds of training, for runs given equal time) and OUT.md (a Markdown table: run,
// attention, layers, steps, final and best held-out metric, tokens/s, peak memory),
// and prints the table (a plot that cannot be drawn or written is a warning, and then
// only OUT.md is said to be written). The first run is the reference: the result line gives, for
// each other run, the largest ratio of its metric to the reference's at the
// evaluations after the first fifth of training.
#include "engine/error.h"
#include "tools/util/cli.h"
#include "tools/util/csv.h"
#include "engine/files.h"
#include "tools/util/plot.h"
#include "tools/util/result.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <sstream>

using namespace pf;

namespace {

struct Run {
    std::string dir, name;
    std::map<int64_t, double> held_out;  // step → metric
    std::map<int64_t, double> seconds;   // step → seconds of training (elapsed_s) there
    nlohmann::json summary = nlohmann::json::object();  // summary.json, if there is one
    double tokens_per_s = NAN;
};

std::vector<std::string> split_commas(const std::string& text) {
    std::vector<std::string> parts;
    std::stringstream in(text);
    std::string part;
    while (std::getline(in, part, ','))
        if (!part.empty()) parts.push_back(part);
    return parts;
}

// A setting of the run's model in summary.json (strings there), or "?".
std::string model_setting(const nlohmann::json& summary, const std::string& key) {
    auto model = summary.find("model");
    if (model == summary.end() || !model->is_object()) return "?";
    auto it = model->find(key);
    return it != model->end() && it->is_string() ? it->get<std::string>() : "?";
}

// Whether a larger value of the metric is the better one.
bool higher_is_better(const std::string& metric) { return metric == "accuracy"; }

// Reads one run folder: the held-out metric at each evaluation from log.csv, the median
// training speed, and summary.json if there is one.
Run read_run(const std::string& dir, const std::string& metric) {
    Run run{dir, std::filesystem::path(dir).filename().string(), {}, {}, nlohmann::json::object(), NAN};
    CsvTable log = read_csv((std::filesystem::path(dir) / "log.csv").string());
    size_t step = log.column("step"), split = log.column("split"), value = log.column(metric),
           rate = log.column("tokens_per_s"), elapsed = log.column("elapsed_s");
    std::vector<double> rates;
    for (size_t r = 0; r < log.rows.size(); ++r) {
        if (log.rows[r][split] == "valid") {
            double at_step = log.number(r, step);
            PF_CHECK(at_step >= 0 && at_step == std::floor(at_step),
                     "{}:{}: column 'step': '{}' is not a step number", log.path,
                     log.lines[r], log.rows[r][step]);
            run.held_out[int64_t(at_step)] = log.number(r, value);
            run.seconds[int64_t(at_step)] = log.number(r, elapsed);
        } else if (!log.rows[r][rate].empty()) {
            rates.push_back(log.number(r, rate));
        }
    }
    PF_CHECK(!run.held_out.empty(), "{}/log.csv: no held-out evaluations", dir);
    if (!rates.empty()) {
        std::sort(rates.begin(), rates.end());
        run.tokens_per_s = rates[rates.size() / 2];
    }
    std::string summary_path = (std::filesystem::path(dir) / "summary.json").string();
    if (std::filesystem::exists(summary_path)) {
        run.summary = nlohmann::json::parse(read_file(summary_path), nullptr, false);
        PF_CHECK(run.summary.is_object(), "{}: not a JSON object", summary_path);
    }
    return run;
}

// The Markdown table: one row per run, with its final and best held-out metric.
std::string runs_table(const std::vector<Run>& runs, const std::string& metric) {
    std::string table = fmt::format(
        "| run | attention | layers | steps | final {0} | best {0} | tokens/s | peak RSS MiB |\n"
        "|---|---|---|---|---|---|---|---|\n", metric);
    for (const Run& run : runs) {
        double best = higher_is_better(metric) ? -INFINITY : INFINITY;
        for (auto& [step, value] : run.held_out)
            best = higher_is_better(metric) ? std::max(best, value) : std::min(best, value);
        auto rss = run.summary.find("peak_rss_mib");
        double peak_rss = rss != run.summary.end() && rss->is_number() ? rss->get<double>() : NAN;
        table += fmt::format("| {} | {} | {} | {} | {:.4f} | {:.4f} | {:.0f} | {:.0f} |\n", run.name,
                             model_setting(run.summary, "attention"),
                             model_setting(run.summary, "layers"),
                             run.held_out.rbegin()->first, run.held_out.rbegin()->second, best,
                             run.tokens_per_s, peak_rss);
    }
    return table;
}

// A panel of the plot: every run's held-out metric against the step, or against the
// seconds of training when `seconds`.
PlotSpec held_out_plot(const std::vector<Run>& runs, const std::string& metric,
                       const std::string& title, bool seconds) {
    PlotSpec plot;
    plot.title = title.empty() ? "held-out " + metric : title;
    plot.xlabel = seconds ? "seconds of training" : "step";
    plot.ylabel = metric;
    for (const Run& run : runs) {
        Series series{run.name, {}, {}};
        for (auto& [step, value] : run.held_out) {
            series.x.push_back(seconds ? run.seconds.at(step) : double(step));
            series.y.push_back(value);
        }
        plot.series.push_back(series);
    }
    return plot;
}

// Writes OUT.md and OUT.png (a warning instead of the plot if it cannot be drawn or
// written, as in the other programs), then says which of them it wrote.
void write_outputs(const std::string& out, const std::string& table,
                   const std::vector<PlotSpec>& panels) {
    std::filesystem::path base(out);
    if (base.has_parent_path()) std::filesystem::create_directories(base.parent_path());
    write_file(out + ".md", table);
    try {
        plot_png_panels(out + ".png", panels);
        fmt::print("wrote {}.png and {}.md\n", out, out);
    } catch (const std::exception& e) {
        fmt::print(stderr, "warning: no plot: {}\n", e.what());
        fmt::print("wrote {}.md (no plot)\n", out);
    }
}

// Each run against the first, at the evaluations they share after a fifth of training:
// the largest ratio of its metric to the reference's, and every run's final metric.
ResultLine compare_to_reference(const std::vector<Run>& runs, const std::string& metric) {
    ResultLine result;
    const Run& reference = runs[0];
    int64_t last_step = reference.held_out.rbegin()->first;
    for (size_t i = 1; i < runs.size(); ++i) {
        double worst = 0;
        for (auto& [step, value] : runs[i].held_out) {
            auto it = reference.held_out.find(step);
            if (it == reference.held_out.end() || step * 5 <= last_step) continue;
            double ratio = higher_is_better(metric) ? it->second / value : value / it->second;
            worst = std::isnan(ratio) ? INFINITY : std::max(worst, ratio);  // NaN: diverged
        }
        result.add(fmt::format("{}_vs_{}_worst_ratio", runs[i].name, reference.name), worst);
        result.add(fmt::format("{}_final", runs[i].name), runs[i].held_out.rbegin()->second);
    }
    result.add(fmt::format("{}_final", reference.name), reference.held_out.rbegin()->second);
    return result;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Compare training runs: held-out curves in one plot, and a table", "compare"};
    std::string runs_arg, metric = "bits_per_byte", title, out;
    app.add_option("--runs", runs_arg, "run folders, separated by commas (the first is the reference)")
        ->required();
    app.add_option("--metric", metric, "held-out metric to compare (a column of log.csv)");
    app.add_option("--title", title, "plot title");
    bool seconds = false;
    app.add_flag("--seconds", seconds,
                 "a second panel: the metric against seconds of training (runs given equal time)");
    app.add_option("--out", out, "output path without extension: writes OUT.png and OUT.md")
        ->required()
        ->check(output_file());
    return run_program(app, argc, argv, [&] {
        std::vector<Run> runs;
        for (const std::string& dir : split_commas(runs_arg)) runs.push_back(read_run(dir, metric));
        PF_CHECK(!runs.empty(), "--runs '{}' names no run folder", runs_arg);
        std::string table = runs_table(runs, metric);
        fmt::print("{}", table);
        std::vector<PlotSpec> panels{held_out_plot(runs, metric, title, false)};
        if (seconds) panels.push_back(held_out_plot(runs, metric, title, true));
        write_outputs(out, table, panels);
        ResultLine result = compare_to_reference(runs, metric);
        result.print();
        return 0;
    });
}
