// trainer.cpp — the training loop, its logs and summary, as named steps:
//   (read_run_checkpoint) → models::settle_run_options → build_run → open_run_folder
//   → (training_step, evaluate_and_save)* → finish. What a checkpoint holds, and how it is
//   saved and restored, is models/run.h; a step's parts (micro-batches, processes) and
//   their sum are tools/distributed/data_parallel.h's.
#include "tools/training/trainer.h"

#include "engine/ops.h"
#include "engine/thread_pool.h"
#include "models/evaluate.h"
#include "models/run.h"
#include "nn/checkpoint.h"
#include "nn/optim.h"
#include "tools/distributed/data_parallel.h"
#include "tools/distributed/processes.h"
#include "tools/training/tasks.h"
#include "tools/util/blas_kernel.h"
#include "tools/util/csv.h"
#include "engine/files.h"
#include "tools/util/format.h"
#include "tools/util/plot.h"
#include "tools/util/progress.h"
#include "tools/util/timing.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cstring>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <optional>

namespace pf::training {

namespace fs = std::filesystem;
using models::SettingsMap;

namespace {

// ---- Ctrl-C (or SIGTERM, which mpirun sends on Ctrl-C): finish the step, save, stop. A
// second signal kills as usual. -----------------------------------------------------------

std::atomic<bool> g_interrupted{false};

extern "C" void on_interrupt(int signal) {
    g_interrupted = true;
    std::signal(signal, SIG_DFL);
}

// The --data spec with each path in it made absolute, so that the checkpoint can be
// resumed and evaluated from any folder: text "a.txt,b.txt" (or a folder), image
// "fashion-mnist:DIR" or "imagenet64:DIR" ("fashion-mnist" alone is no path), protein a
// FASTA file. Empty (the task's default) stays empty.
std::string absolute_data_spec(models::TaskKind task, const std::string& spec) {
    if (spec.empty()) return spec;
    auto absolute = [](const std::string& path) {
        return fs::absolute(path).lexically_normal().string();
    };
    if (task == models::TaskKind::Image) {
        size_t colon = spec.find(':');
        return colon == std::string::npos ? spec : spec.substr(0, colon + 1) +
                                                       absolute(spec.substr(colon + 1));
    }
    if (task != models::TaskKind::Text) return absolute(spec);
    std::string joined;
    for (size_t begin = 0; begin <= spec.size();) {
        size_t comma = std::min(spec.find(',', begin), spec.size());
        joined += (begin == 0 ? "" : ",") + absolute(spec.substr(begin, comma - begin));
        begin = comma + 1;
    }
    return joined;
}

// Keeps the log rows up to `step` (a crash may have logged steps after the checkpoint,
// or cut the last row off), replacing the log atomically once all of it has been read:
// a row that is not numbers is an error naming its line, and the log stays as it was.
// An empty log, or one without a complete line, is started afresh.
void trim_log(const std::string& path, int64_t step) {
    if (!fs::exists(path)) return;
    std::string text = read_file(path);
    text.resize(text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1);
    if (text.empty()) {
        write_file(path, "");
        return;
    }
    const CsvTable table = parse_csv(text, path);
    const size_t step_column = table.column("step");
    std::string kept = csv_line(table.header);
    for (size_t r = 0; r < table.rows.size(); ++r) {
        const double row_step = table.number(r, step_column);
        PF_CHECK(std::isfinite(row_step), "{}:{}: the step is empty", path, table.lines[r]);
        if (row_step <= double(step)) kept += csv_line(table.rows[r]);
    }
    write_file(path, kept);
}

void plot_log(const std::string& log_path, const std::string& png_path, const std::string& metric,
              const std::string& title) {
    CsvTable table = read_csv(log_path);
    size_t step = table.column("step"), split = table.column("split"), value = table.column(metric);
    Series train{"train (mean of 20 steps)", {}, {}}, valid{"held out", {}, {}};
    double window_sum = 0;
    std::vector<double> window;
    for (const auto& row : table.rows) {
        double x = std::stod(row[step]), y = row[value].empty() ? NAN : std::stod(row[value]);
        if (row[split] == "train") {
            window.push_back(y);
            window_sum += y;
            if (window.size() > 20) window_sum -= window[window.size() - 21];
            if (window.size() % 5 == 0) {
                train.x.push_back(x);
                train.y.push_back(window_sum / double(std::min<size_t>(window.size(), 20)));
            }
        } else {
            valid.x.push_back(x);
            valid.y.push_back(y);
        }
    }
    PlotSpec plot;
    plot.title = title;
    plot.xlabel = "step";
    plot.ylabel = metric;
    plot.series = {train, valid};
    plot_png(png_path, plot);
}

// ---- the run ----------------------------------------------------------------------------

// Everything a training session works with.
struct Run {
    models::RunParts parts;      // what its checkpoint holds: options, model, optimizer, ...
    const TrainOptions& options = parts.options;
    const distributed::Processes& processes = distributed::Processes::world();
    std::string checkpoint_path, log_path;
    std::unique_ptr<Task> task;
    // The leader's alone (the first process writes files and prints):
    std::unique_ptr<FileLock> lock;
    std::unique_ptr<CsvWriter> log;
    std::unique_ptr<ProgressBar> progress;
    std::string metric;                // the task's headline metric
    int64_t start = 0;                 // the step this session starts at
    double elapsed_before = 0;         // seconds trained by earlier sessions
    double sum_seconds = 0;            // this session's seconds summing gradients over processes
    std::optional<models::Evaluation> last_eval;
    std::vector<double> train_losses;  // this session's, for the summary

    explicit Run(TrainOptions settled, std::string folder)
        : parts(std::move(settled)),
          checkpoint_path((std::filesystem::path(folder) / "model.ckpt").string()),
          log_path((std::filesystem::path(folder) / "log.csv").string()) {}
    bool leader() const { return processes.leader(); }
    void say(const std::string& text) const {
        if (!options.quiet && leader()) fmt::print("{}\n", text);
    }
};

// The checkpoint of the run in `out` (the leader reads it and sends it to the other
// processes: the run folder may be on the leader's machine only).
nn::Checkpoint read_run_checkpoint(const std::string& path, const distributed::Processes& processes) {
    PF_CHECK(!processes.leader() || fs::exists(path), "{}: no checkpoint to resume from", path);
    std::string bytes = processes.leader() ? read_file(path) : "";
    processes.broadcast(bytes);
    return nn::parse_checkpoint(bytes, path);
}

// The task (its data loaded and checked against the sequence length), the model it
// calls for, and the optimizer. Every process builds the same (same seed).
void build_run(Run& run) {
    TrainOptions& o = run.parts.options;
    run.task = make_task(o.task);
    o.task.seq_len = run.task->sequence_length(o.task.seq_len);
    models::configure_model(o.model, o.task, run.task->image_shape());
    models::build_model(run.parts);
    run.metric = models::metric_names(o.task.kind).front();
}

// Everything is checked: now the run folder (the leader's). One trainer per folder, for
// the life of the run, and nothing is written there before the lock is held. On
// --resume, every part of the run continues from the checkpoint.
void open_run_folder(Run& run, const nn::Checkpoint* resumed) {
    const TrainOptions& o = run.options;
    if (run.leader()) {
        fs::create_directories(o.out);
        run.lock = std::make_unique<FileLock>((fs::path(o.out) / "train.lock").string());
        PF_CHECK(o.resume || !fs::exists(run.checkpoint_path),
                 "{} already holds a run (model.ckpt): pass --resume to continue it, or choose "
                 "another --out", o.out);
        // Every file the run writes is a regular file or nothing (engine/files.h), checked
        // before the first step rather than after the last.
        for (const char* name : {"model.ckpt", "log.csv", "summary.json", "loss.png"})
            check_replaceable((fs::path(o.out) / name).string());
        remove_stale_temporary_files(run.checkpoint_path);
    }
    if (resumed) {
        models::restore_run(*resumed, run.parts);
        run.start = run.parts.step;
        run.elapsed_before = run.parts.elapsed;
    }
    if (!run.leader()) return;
    if (o.resume) trim_log(run.log_path, run.start);
    run.log = std::make_unique<CsvWriter>(
        run.log_path,
        std::vector<std::string>{"step", "split", "loss", run.metric, "accuracy", "lr",
                                 "tokens_per_s", "elapsed_s"},
        o.resume && fs::exists(run.log_path) ? CsvWriter::Mode::Append : CsvWriter::Mode::Overwrite);
    run.progress = std::make_unique<ProgressBar>(o.steps, "train", std::cerr);
    run.progress->resume_from(run.start);
}

// Every part of the run at `step`, written atomically by the leader (models/run.h).
void save(Run& run, int64_t step) {
    run.parts.step = step;
    if (run.leader()) models::save_run(run.checkpoint_path, run.parts);
}

// ---- one step ---------------------------------------------------------------------------

struct StepResult {
    float loss, lr;
    bool updated;      // false: the gradient was not finite, the update skipped
    bool interrupted;  // Ctrl-C (or SIGTERM) in any process
};

// One step of `step` (0-based): the global batch (every process draws all of it, so
// that the data order depends on the seed and the step alone), this process's parts of
// it one after another (forward, loss, backward: the gradients add up), the sum over the
// processes, clipping, AdamW. How the batch is shared out: tools/distributed/data_parallel.h.
StepResult training_step(Run& run, int64_t step) {
    const TrainOptions& o = run.options;
    models::SequenceModel& model = *run.parts.model;
    nn::AdamW& optimizer = *run.parts.optimizer;
    models::Generators& generators = run.parts.generators;
    const float lr = nn::lr_at(step, o.steps, o.lr, o.warmup, o.min_lr_ratio);
    optimizer.set_lr(lr);
    const Batch batch = run.task->train_batch(o.batch, o.task.seq_len, generators.batches);
    const distributed::DataParallel parallel(run.processes, o.micro_batches);
    optimizer.zero_grad();
    float loss = 0;
    for (const distributed::Part& part : parallel.parts(batch, generators.dropout)) {
        part.draw_dropout(model, generators.dropout);
        const Batch& rows = part.batch;
        Tensor logits = model.forward(rows.inputs, rows.batch, rows.length, rows.key_mask);
        Tensor part_loss = part.share(models::batch_loss(logits, rows.targets));
        part_loss.backward();
        loss += part_loss.item();
    }
    const distributed::Summed total = parallel.sum(model.parameters(), loss, g_interrupted);
    run.sum_seconds += total.seconds;
    const bool finite = std::isfinite(nn::clip_grad_norm(model.parameters(), o.clip));
    if (finite) optimizer.step();
    if (o.redraw > 0 && (step + 1) % o.redraw == 0) model.redraw_features(generators.features);
    return {total.loss, lr, finite, total.interrupted};
}

// Scores the model on the validation set (its batches shared out over the processes and
// summed), logs it, and rewrites the checkpoint.
void evaluate_and_save(Run& run, int64_t step) {
    const TrainOptions& o = run.options;
    const distributed::Processes& processes = run.processes;
    models::EvaluationShare share{processes.rank(), processes.size(),
                                  [&processes](std::vector<double>& losses, std::vector<int64_t>& counts) {
                                      processes.sum(losses);
                                      processes.sum(counts);
                                  }};
    models::Evaluation e = models::evaluate(*run.parts.model, o.task.kind,
                                            run.task->held_out("valid", o.task.seq_len), o.batch,
                                            o.eval_batches, models::Reading::Whole, share);
    if (run.leader()) {
        double headline = NAN;
        std::string figures;
        for (const models::Metric& m : e.metrics) {
            if (m.name == run.metric) headline = m.value;
            figures += fmt::format(" {} {:.4g}", m.name, m.value);
        }
        run.log->row(std::vector<std::string>{
            std::to_string(step), "valid", fmt::format("{:.6g}", e.loss),
            fmt::format("{:.6g}", headline), fmt::format("{:.6g}", e.accuracy), "", "",
            fmt::format("{:.3f}", run.parts.elapsed)});
        if (!o.quiet) run.progress->message(fmt::format("step {}: held out{}", step, figures));
    }
    run.last_eval = std::move(e);
    save(run, step);
}

// Whether the run's seconds of training have reached --time-limit. With several
// processes their mean decides, so that all of them end at the same step.
bool out_of_time(const Run& run) {
    if (run.options.time_limit <= 0) return false;
    std::vector<double> elapsed{run.parts.elapsed};
    run.processes.sum(elapsed);
    return elapsed[0] / double(run.processes.size()) >= run.options.time_limit;
}

// Steps from run.start to the end (--steps, or --time-limit's seconds), or until Ctrl-C,
// --stop-after or a gradient that stays non-finite. Returns why it stopped early ("" if
// it finished) and the steps done.
std::pair<std::string, int64_t> training_loop(Run& run) {
    const TrainOptions& o = run.options;
    constexpr int64_t kMaxNonFiniteSteps = 50;  // skipped updates in a row before giving up
    const int64_t tokens_per_step = o.batch * o.task.seq_len;
    double rate_tokens = 0, rate_seconds = 0;  // for tokens/s over the recent steps
    int64_t non_finite_steps = 0;
    for (int64_t step = run.start; step < o.steps; ++step) {
        // One process stops before a step; several agree in the step's sum (below).
        if (g_interrupted && run.processes.size() == 1) return {"interrupted", step};
        double step_start = now_seconds();
        StepResult result = training_step(run, step);
        non_finite_steps = result.updated ? 0 : non_finite_steps + 1;
        const int64_t done = step + 1;
        double seconds = now_seconds() - step_start;
        run.parts.elapsed += seconds;
        rate_tokens = 0.9 * rate_tokens + double(tokens_per_step);
        rate_seconds = 0.9 * rate_seconds + seconds;
        double tokens_per_s = rate_tokens / rate_seconds;
        run.train_losses.push_back(result.loss);
        if (run.leader()) {
            run.log->row(std::vector<std::string>{
                std::to_string(done), "train", fmt::format("{:.6g}", result.loss),
                fmt::format("{:.6g}", models::metric_value(run.metric, result.loss, NAN)), "",
                fmt::format("{:.6g}", result.lr), fmt::format("{:.1f}", tokens_per_s),
                fmt::format("{:.3f}", run.parts.elapsed)});
            if (!o.quiet) run.progress->update(done, {{"loss", result.loss}, {"tok/s", tokens_per_s}});
        }
        const bool finished = done == o.steps || out_of_time(run);
        if (done % o.eval_every == 0 || finished) evaluate_and_save(run, done);
        if (finished) return {"", done};
        if (result.interrupted) return {"interrupted", done};
        if (o.stop_after > 0 && done >= o.stop_after) return {"stopped", done};
        if (non_finite_steps == kMaxNonFiniteSteps)
            return {fmt::format("stopped: the gradient was not finite for {} steps in a row (try a "
                                "lower --lr)", kMaxNonFiniteSteps), done};
    }
    return {"", o.steps};
}

// The end of a run after `steps` steps (--steps, or fewer at --time-limit): summary.json,
// the loss curve, the held-out figures (the leader's).
void finish(const Run& run, int64_t steps) {
    const TrainOptions& o = run.options;
    if (!run.leader()) return;
    // A number as format_exact writes it (a widened float with the float's digits, a
    // whole number as an integer); JSON has no NaN or infinity: those are null.
    auto number = [](double v) -> nlohmann::ordered_json {
        if (!std::isfinite(v)) return nullptr;
        if (std::fabs(v) < 0x1p53 && v == std::trunc(v)) return int64_t(v);
        return std::strtod(format_exact(v).c_str(), nullptr);
    };
    nlohmann::ordered_json summary, model_json;
    summary["task"] = run.task->name();
    summary["data"] = run.task->description();
    SettingsMap model_settings;
    models::model_settings().write(o.model, model_settings);
    for (auto& [key, value] : model_settings) model_json[key.substr(strlen("model."))] = value;
    summary["model"] = model_json;
    summary["parameters"] = run.parts.model->parameter_count();
    summary["steps"] = steps, summary["batch"] = o.batch, summary["seq_len"] = o.task.seq_len;
    summary["lr"] = number(o.lr), summary["seed"] = o.seed;
    summary["processes"] = run.processes.size(), summary["threads"] = num_threads();
    summary["elapsed_s"] = number(run.parts.elapsed);
    if (o.time_limit > 0) summary["time_limit_s"] = number(o.time_limit);
    // Training speed of this session: step time only (evaluations excluded).
    const double session_s = std::max(1e-9, run.parts.elapsed - run.elapsed_before);
    summary["tokens_per_s"] = number(double(steps - run.start) * double(o.batch * o.task.seq_len) / session_s);
    // Summing gradients over the processes: seconds per step, and their share of the step.
    summary["sum_s_per_step"] = number(run.sum_seconds / double(std::max<int64_t>(1, steps - run.start)));
    summary["sum_share"] = number(run.sum_seconds / session_s);
    const std::vector<double>& losses = run.train_losses;
    if (!losses.empty()) {
        size_t tail = std::max<size_t>(1, losses.size() / 10);
        double tail_loss = 0;
        for (size_t i = losses.size() - tail; i < losses.size(); ++i) tail_loss += losses[i] / double(tail);
        summary["final_train_loss"] = number(tail_loss);
    }
    if (run.last_eval) {
        nlohmann::ordered_json held_out{{"loss", number(run.last_eval->loss)}, {"tokens", run.last_eval->tokens}};
        for (const models::Metric& m : run.last_eval->metrics) held_out[m.name] = number(m.value);
        summary["held_out"] = held_out;
    }
    summary["peak_rss_mib"] = number(peak_rss_mib());
    // Bytes that are not UTF-8 (a file name's, say) become U+FFFD rather than an error.
    write_file((fs::path(o.out) / "summary.json").string(),
               summary.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n");
    try {
        plot_log(run.log_path, (fs::path(o.out) / "loss.png").string(), run.metric,
                 fmt::format("{} {}: {} attention, {} layers", run.task->name(),
                             models::objective_names().at(size_t(o.task.objective)),
                             nn::mechanism_name(o.model.attention.mechanism), o.model.layers));
    } catch (const std::exception& e) {
        fmt::print(stderr, "warning: no loss plot: {}\n", e.what());
    }
    if (run.last_eval) {
        std::string figures;
        for (const models::Metric& m : run.last_eval->metrics) figures += fmt::format(" {}={:.4g}", m.name, m.value);
        run.say(fmt::format("held out after {} steps:{}", steps, figures));
    }
    run.say(fmt::format("wrote {}/{{log.csv, model.ckpt, summary.json, loss.png}}", o.out));
}

}  // namespace

int train(TrainOptions requested) {
    const distributed::Processes& processes = distributed::Processes::world();
    requested.task.data = absolute_data_spec(requested.task.kind, requested.task.data);
    std::optional<nn::Checkpoint> resumed;
    if (requested.resume)
        resumed = read_run_checkpoint((fs::path(requested.out) / "model.ckpt").string(), processes);
    Run run(models::settle_run_options(requested, resumed ? &*resumed : nullptr, processes.size()),
            requested.out);
    build_run(run);
    open_run_folder(run, resumed ? &*resumed : nullptr);
    resumed.reset();  // its tensors are in the model now
    const TrainOptions& o = run.options;

    run.say(fmt::format("task: {}", run.task->description()));
    run.say(blas_kernel_line());
    run.say(fmt::format("model: {} attention, {} layers, width {}, {} heads, {} parameters; {} "
                        "tokens per step", nn::mechanism_name(o.model.attention.mechanism),
                        o.model.layers, o.model.attention.dim, o.model.attention.heads,
                        run.parts.model->parameter_count(), o.batch * o.task.seq_len));
    if (run.processes.size() > 1)
        run.say(fmt::format("{} processes ({} threads each), each with a replica of the model",
                            run.processes.size(), num_threads()));
    if (o.resume) run.say(fmt::format("resuming {} at step {} of {}", run.checkpoint_path, run.start, o.steps));
    g_interrupted = false;
    std::signal(SIGINT, on_interrupt);
    std::signal(SIGTERM, on_interrupt);
    run.parts.model->train();
    auto [stop_reason, step] = training_loop(run);
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
    if (run.leader() && !o.quiet) run.progress->finish();

    if (!stop_reason.empty()) {
        save(run, step);
        run.say(fmt::format("{} at step {} of {}; checkpoint {} saved — continue with --resume --out {}",
                            stop_reason, step, o.steps, run.checkpoint_path, o.out));
        return 0;
    }
    finish(run, step);
    return 0;
}

}  // namespace pf::training
