// trainer.cpp — the training loop, its checkpoints, logs and summary.
#include "tools/training/trainer.h"

#include "engine/ops.h"
#include "nn/checkpoint.h"
#include "nn/optim.h"
#include "tools/util/csv.h"
#include "tools/util/files.h"
#include "tools/util/json.h"
#include "tools/util/plot.h"
#include "tools/util/progress.h"
#include "tools/util/timing.h"

#include <fmt/format.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <filesystem>

namespace pf::training {

namespace fs = std::filesystem;

namespace {

// ---- Ctrl-C: finish the step, save, stop. A second Ctrl-C kills as usual. ---------------

std::atomic<bool> g_interrupted{false};

extern "C" void on_interrupt(int) {
    g_interrupted = true;
    std::signal(SIGINT, SIG_DFL);
}

// ---- options in a checkpoint ---------------------------------------------------------------

using Config = std::map<std::string, std::string>;

Config options_to_config(const TrainOptions& o, double elapsed_s) {
    Config c;
    for (auto& [key, value] : o.model.to_map()) c["model." + key] = value;
    c["task.task"] = o.task.task;
    c["task.data"] = o.task.data;
    c["task.objective"] = o.task.objective;
    c["task.concatenated"] = o.task.concatenated ? "1" : "0";
    c["task.max_images"] = std::to_string(o.task.max_images);
    c["train.seq_len"] = std::to_string(o.seq_len);
    c["train.batch"] = std::to_string(o.batch);
    c["train.lr"] = fmt::format("{}", o.lr);
    c["train.min_lr_ratio"] = fmt::format("{}", o.min_lr_ratio);
    c["train.weight_decay"] = fmt::format("{}", o.weight_decay);
    c["train.clip"] = fmt::format("{}", o.clip);
    c["train.warmup"] = std::to_string(o.warmup);
    c["train.redraw"] = std::to_string(o.redraw);
    c["train.seed"] = std::to_string(o.seed);
    c["train.eval_every"] = std::to_string(o.eval_every);
    c["train.eval_batches"] = std::to_string(o.eval_batches);
    c["train.elapsed_s"] = fmt::format("{}", elapsed_s);
    return c;
}

Config with_prefix(const Config& config, const std::string& prefix) {
    Config out;
    for (auto& [key, value] : config)
        if (key.rfind(prefix, 0) == 0) out[key.substr(prefix.size())] = value;
    return out;
}

// Reads the run's settings back, each checked against its range and the model's against
// the shapes of the tensors in the file, before anything is built from them; only steps,
// stop_after, out, quiet stay as given. Returns the seconds the run has trained.
double options_from_checkpoint(const nn::Checkpoint& checkpoint, TrainOptions& o) {
    const Config& c = checkpoint.config;
    const std::string where = checkpoint.describe();
    nn::ConfigReader r{c, where};
    o.model = models::ModelConfig::from_map(with_prefix(c, "model."), where);
    o.model.check_shapes(checkpoint.with_prefix("model."), where);
    o.task.task = r.text("task.task");
    o.task.data = r.text("task.data");
    o.task.objective = r.text("task.objective");
    o.task.concatenated = r.integer("task.concatenated", 0, 1) != 0;
    o.task.max_images = r.integer("task.max_images", 0);
    o.seq_len = r.integer("train.seq_len", 1);
    // The task sizes the position table to the sequence length: it must be the table's.
    PF_CHECK(o.model.image_positions() || o.seq_len <= o.model.max_length,
             "{}: 'train.seq_len' is {}, longer than 'model.max_length' {}", where, o.seq_len,
             o.model.max_length);
    o.batch = r.integer("train.batch", 1);
    o.lr = float(r.number("train.lr", 0));
    o.min_lr_ratio = float(r.number("train.min_lr_ratio", 0, 1));
    o.weight_decay = float(r.number("train.weight_decay", 0));
    o.clip = float(r.number("train.clip", 0));
    o.warmup = r.integer("train.warmup", 0);
    o.redraw = r.integer("train.redraw", 0);
    o.seed = uint64_t(r.integer("train.seed", 0));
    o.eval_every = r.integer("train.eval_every", 1);
    o.eval_batches = r.integer("train.eval_batches", 1);
    return r.number("train.elapsed_s", 0);
}

// The checkpoint setting each flag of build/train sets. On --resume a given flag must
// agree with it; flags not listed here (--steps, --stop-after, --out) may change.
const std::map<std::string, std::string> kSettingOfFlag = {
    {"--task", "task.task"},          {"--data", "task.data"},
    {"--objective", "task.objective"}, {"--concatenated", "task.concatenated"},
    {"--max-images", "task.max_images"}, {"--attention", "model.attention"},
    {"--features", "model.features"},  {"--feature-kind", "model.orthogonal"},
    {"--chunk", "model.chunk"},        {"--layers", "model.layers"},
    {"--dim", "model.dim"},            {"--heads", "model.heads"},
    {"--ff", "model.ff"},              {"--dropout", "model.dropout"},
    {"--seq-len", "train.seq_len"},    {"--batch", "train.batch"},
    {"--lr", "train.lr"},              {"--warmup", "train.warmup"},
    {"--weight-decay", "train.weight_decay"}, {"--clip", "train.clip"},
    {"--redraw", "train.redraw"},      {"--seed", "train.seed"},
    {"--eval-every", "train.eval_every"}, {"--eval-batches", "train.eval_batches"}};

// Throws pf::Error naming the flag and both values if a flag given with --resume
// disagrees with the run's setting (`requested`: the options as given, as a config).
void check_resume_flags(const std::vector<std::string>& given_flags, const Config& requested,
                        const nn::Checkpoint& checkpoint) {
    for (const std::string& flag : given_flags) {
        auto setting = kSettingOfFlag.find(flag);
        if (setting == kSettingOfFlag.end()) continue;
        const std::string& key = setting->second;
        // An image's sequence length is the image's: the task ignores --seq-len.
        if (key == "train.seq_len" && requested.at("task.task") == "image") continue;
        auto stored = checkpoint.config.find(key);
        std::string run_value = stored == checkpoint.config.end() ? "(none)" : stored->second;
        PF_CHECK(run_value == requested.at(key), "{} {} conflicts with the run being resumed, "
                 "whose {} is {} ({}): leave the flag out to continue the run as it was, or "
                 "start a new run in another --out", flag, requested.at(key), key, run_value,
                 checkpoint.describe());
    }
}

// The --data spec with each path in it made absolute, so that the checkpoint can be
// resumed and evaluated from any folder: text "a.txt,b.txt" (or a folder), image
// "fashion-mnist:DIR" or "imagenet64:DIR" ("fashion-mnist" alone is no path), protein a
// FASTA file. Empty (the task's default) stays empty.
std::string absolute_data_spec(const std::string& task, const std::string& spec) {
    if (spec.empty()) return spec;
    auto absolute = [](const std::string& path) {
        return fs::absolute(path).lexically_normal().string();
    };
    if (task == "image") {
        size_t colon = spec.find(':');
        return colon == std::string::npos ? spec : spec.substr(0, colon + 1) +
                                                       absolute(spec.substr(colon + 1));
    }
    if (task != "text") return absolute(spec);
    std::string joined;
    for (size_t begin = 0; begin <= spec.size();) {
        size_t comma = std::min(spec.find(',', begin), spec.size());
        joined += (begin == 0 ? "" : ",") + absolute(spec.substr(begin, comma - begin));
        begin = comma + 1;
    }
    return joined;
}

// Removes the temporary files that saves of `checkpoint_path` interrupted by a crash
// left beside it (path.tmp.XXXXXX, see nn::write_file_atomic). Only while the run
// folder is locked: no other process can be writing one then.
void remove_stale_temporary_files(const std::string& checkpoint_path) {
    const fs::path checkpoint(checkpoint_path);
    const std::string prefix = checkpoint.filename().string() + ".tmp.";
    std::vector<fs::path> stale;
    for (const auto& entry : fs::directory_iterator(checkpoint.parent_path()))
        if (entry.path().filename().string().rfind(prefix, 0) == 0 && entry.is_regular_file())
            stale.push_back(entry.path());
    for (const fs::path& path : stale) fs::remove(path);
}

// ---- the run's state ---------------------------------------------------------------------

struct Generators {
    Generator batches, dropout, features;
    explicit Generators(uint64_t seed) : batches(seed * 4 + 1), dropout(seed * 4 + 2), features(seed * 4 + 3) {}
};

void save(const std::string& path, const TrainOptions& o, double elapsed_s, int64_t step,
          const models::SequenceModel& model, const nn::AdamW& optimizer, const Generators& gens) {
    nn::Checkpoint checkpoint;
    checkpoint.config = options_to_config(o, elapsed_s);
    checkpoint.step = step;
    nn::store_module(checkpoint, "model.", model);
    for (auto& [name, tensor] : optimizer.state()) checkpoint.add_tensor("optim." + name, tensor);
    nn::store_generator(checkpoint, "batches", gens.batches);
    nn::store_generator(checkpoint, "dropout", gens.dropout);
    nn::store_generator(checkpoint, "features", gens.features);
    nn::save_checkpoint(path, checkpoint);
}

// The name of the task's headline metric, and its value from a loss.
std::string headline_metric(const Task& task) { return task.metrics(1.0, 0.0).front().name; }

double headline_from_loss(const std::string& metric, double loss) {
    if (metric == "perplexity") return std::exp(loss);
    if (metric == "accuracy") return NAN;
    return loss / std::log(2.0);  // bits per byte / per dimension
}

// Keeps the log rows up to `step` (a crash may have logged steps after the checkpoint).
void trim_log(const std::string& path, int64_t step) {
    if (!fs::exists(path)) return;
    CsvTable table = read_csv(path);
    size_t step_column = table.column("step");
    CsvWriter rewrite(path, table.header);
    for (const auto& row : table.rows)
        if (std::stoll(row[step_column]) <= step) rewrite.row(row);
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

}  // namespace

int train(TrainOptions options) {
    const std::string checkpoint_path = (fs::path(options.out) / "model.ckpt").string();
    const std::string log_path = (fs::path(options.out) / "log.csv").string();
    const int64_t final_steps = options.steps, stop_after = options.stop_after;
    const std::string out = options.out;
    const bool quiet = options.quiet;

    PF_CHECK(!options.resume || fs::exists(checkpoint_path), "{}: no checkpoint to resume from",
             checkpoint_path);
    options.task.data = absolute_data_spec(options.task.task, options.task.data);
    nn::Checkpoint checkpoint;
    double elapsed_before = 0;
    if (options.resume) {
        checkpoint = nn::load_checkpoint(checkpoint_path);
        check_resume_flags(options.given_flags, options_to_config(options, 0), checkpoint);
        elapsed_before = options_from_checkpoint(checkpoint, options);
        options.steps = final_steps;
        options.stop_after = stop_after;
        options.out = out;
        options.quiet = quiet;
        PF_CHECK(checkpoint.step <= options.steps,
                 "{} is at step {}, past --steps {}", checkpoint_path, checkpoint.step, options.steps);
    }
    PF_CHECK(options.steps >= 1 && options.batch >= 1 && options.seq_len >= 1,
             "steps {}, batch {} and seq-len {} must be positive", options.steps, options.batch,
             options.seq_len);

    std::unique_ptr<Task> task = make_task(options.task);
    options.seq_len = task->sequence_length(options.seq_len);
    task->configure(options.model, options.seq_len);
    options.model.validate();
    if (options.warmup < 0) options.warmup = std::min<int64_t>(200, options.steps / 20);
    if (options.eval_every <= 0) options.eval_every = std::max<int64_t>(1, options.steps / 10);

    Generators gens(options.seed);
    Generator init(options.seed * 4);
    models::SequenceModel model(options.model, init, gens.dropout);
    nn::AdamW optimizer(model.named_parameters(), options.lr, 0.9f, 0.95f, 1e-8f,
                        options.weight_decay);

    // Everything is checked: now the run folder. One trainer per folder, for the life of
    // this call, and nothing is written there before the lock is held.
    fs::create_directories(out);
    FileLock lock((fs::path(out) / "train.lock").string());
    PF_CHECK(options.resume || !fs::exists(checkpoint_path),
             "{} already holds a run (model.ckpt): pass --resume to continue it, or choose "
             "another --out", out);
    remove_stale_temporary_files(checkpoint_path);
    int64_t start = 0;
    if (options.resume) {
        nn::restore_module(checkpoint, "model.", model);
        optimizer.load_state(checkpoint.with_prefix("optim."));
        nn::restore_generator(checkpoint, "batches", gens.batches);
        nn::restore_generator(checkpoint, "dropout", gens.dropout);
        nn::restore_generator(checkpoint, "features", gens.features);
        start = checkpoint.step;
        trim_log(log_path, start);
    }

    const std::string metric = headline_metric(*task);
    CsvWriter log(log_path,
                  {"step", "split", "loss", metric, "accuracy", "lr", "tokens_per_s", "elapsed_s"},
                  options.resume && fs::exists(log_path) ? CsvWriter::Mode::Append
                                                          : CsvWriter::Mode::Overwrite);
    const int64_t tokens_per_step = options.batch * options.seq_len;
    // Messages go to stdout unless quiet (tests).
    auto say = [&](const std::string& text) {
        if (!quiet) fmt::print("{}\n", text);
    };
    say(fmt::format("task: {}", task->description()));
    say(fmt::format("model: {} attention, {} layers, width {}, {} heads, {} parameters; {} tokens per step",
               options.model.attention, options.model.layers, options.model.dim,
               options.model.heads, model.parameter_count(), tokens_per_step));
    if (options.resume) say(fmt::format("resuming {} at step {} of {}", checkpoint_path, start, options.steps));

    g_interrupted = false;
    std::signal(SIGINT, on_interrupt);
    ProgressBar progress(options.steps, "train", std::cerr);
    progress.resume_from(start);
    double elapsed = elapsed_before;  // seconds spent in training steps, over all sessions
    double rate_tokens = 0, rate_seconds = 0;  // for tokens/s over the recent steps
    Evaluation last_eval;
    bool evaluated = false;
    std::vector<double> recent_losses;
    int64_t step = start;
    std::string stop_reason;
    constexpr int64_t kMaxNonFiniteSteps = 50;  // skipped updates in a row before giving up
    int64_t non_finite_steps = 0;

    auto evaluate_and_save = [&](int64_t at_step) {
        last_eval = evaluate(model, *task, "valid", options.batch, options.seq_len, options.eval_batches);
        evaluated = true;
        std::vector<std::string> row{std::to_string(at_step), "valid", fmt::format("{:.6g}", last_eval.loss)};
        double headline = NAN;
        for (const Metric& m : last_eval.metrics)
            if (m.name == metric) headline = m.value;
        row.push_back(fmt::format("{:.6g}", headline));
        row.push_back(fmt::format("{:.6g}", last_eval.accuracy));
        row.insert(row.end(), {"", "", fmt::format("{:.3f}", elapsed)});
        log.row(row);
        std::string figures;
        for (const Metric& m : last_eval.metrics) figures += fmt::format(" {} {:.4g}", m.name, m.value);
        if (!quiet) progress.message(fmt::format("step {}: held out{}", at_step, figures));
        save(checkpoint_path, options, elapsed, at_step, model, optimizer, gens);
    };

    model.train();
    for (; step < options.steps; ++step) {
        if (g_interrupted) {
            stop_reason = "interrupted";
            break;
        }
        double step_start = now_seconds();
        float lr = nn::lr_at(step, options.steps, options.lr, options.warmup, options.min_lr_ratio);
        optimizer.set_lr(lr);
        Batch batch = task->train_batch(options.batch, options.seq_len, gens.batches);
        Tensor logits = model.forward(batch.inputs, batch.batch, batch.length, batch.key_mask);
        Tensor loss = cross_entropy(reshape(logits, {batch.batch * batch.length, options.model.vocab}),
                                    batch.targets, kIgnore);
        optimizer.zero_grad();
        loss.backward();
        float norm = nn::clip_grad_norm(model.parameters(), options.clip);
        if (std::isfinite(norm)) optimizer.step();  // a non-finite gradient skips the update
        non_finite_steps = std::isfinite(norm) ? 0 : non_finite_steps + 1;
        int64_t done = step + 1;
        if (options.redraw > 0 && done % options.redraw == 0) model.redraw_features(gens.features);

        double seconds = now_seconds() - step_start;
        elapsed += seconds;
        rate_tokens = 0.9 * rate_tokens + tokens_per_step;
        rate_seconds = 0.9 * rate_seconds + seconds;
        double tokens_per_s = rate_tokens / rate_seconds;
        float loss_value = loss.item();
        recent_losses.push_back(loss_value);
        log.row(std::vector<std::string>{
            std::to_string(done), "train", fmt::format("{:.6g}", loss_value),
            fmt::format("{:.6g}", headline_from_loss(metric, loss_value)), "",
            fmt::format("{:.6g}", lr), fmt::format("{:.1f}", tokens_per_s), fmt::format("{:.3f}", elapsed)});
        if (!quiet)
            progress.update(done, {{"loss", loss_value}, {"tok/s", tokens_per_s}});
        if (done % options.eval_every == 0 || done == options.steps) evaluate_and_save(done);
        if (stop_after > 0 && done >= stop_after && done < options.steps) {
            stop_reason = "stopped";
            step = done;
            break;
        }
        if (non_finite_steps == kMaxNonFiniteSteps) {
            stop_reason = fmt::format("stopped: the gradient was not finite for {} steps in a "
                                      "row (try a lower --lr)", kMaxNonFiniteSteps);
            step = done;
            break;
        }
    }
    std::signal(SIGINT, SIG_DFL);
    if (!quiet) progress.finish();

    if (!stop_reason.empty()) {
        save(checkpoint_path, options, elapsed, step, model, optimizer, gens);
        say(fmt::format("{} at step {} of {}; checkpoint {} saved — continue with --resume --out {}",
                        stop_reason, step, options.steps, checkpoint_path, out));
        return 0;
    }

    // The end: summary.json and the loss curve.
    JsonObject summary;
    summary.set("task", task->name()).set("data", task->description());
    JsonObject model_json;
    for (auto& [key, value] : options.model.to_map()) model_json.set(key, value);
    summary.set("model", model_json).set("parameters", model.parameter_count());
    summary.set("steps", options.steps).set("batch", options.batch).set("seq_len", options.seq_len);
    summary.set("lr", double(options.lr)).set("seed", options.seed);
    summary.set("elapsed_s", elapsed);
    // Training speed of this run: step time only (evaluations excluded).
    summary.set("tokens_per_s", double(options.steps - start) * double(tokens_per_step) /
                                    std::max(1e-9, elapsed - elapsed_before));
    size_t tail = std::max<size_t>(1, recent_losses.size() / 10);
    double tail_loss = 0;
    for (size_t i = recent_losses.size() - std::min(tail, recent_losses.size()); i < recent_losses.size(); ++i)
        tail_loss += recent_losses[i] / double(tail);
    if (!recent_losses.empty()) summary.set("final_train_loss", tail_loss);
    if (evaluated) {
        JsonObject held_out;
        held_out.set("loss", last_eval.loss).set("tokens", last_eval.tokens);
        for (const Metric& m : last_eval.metrics) held_out.set(m.name, m.value);
        summary.set("held_out", held_out);
    }
    summary.set("peak_rss_mib", peak_rss_mib());
    summary.write((fs::path(out) / "summary.json").string());
    std::string png = (fs::path(out) / "loss.png").string();
    try {
        plot_log(log_path, png, metric,
                 fmt::format("{} {}: {} attention, {} layers", task->name(),
                             options.model.objective, options.model.attention, options.model.layers));
    } catch (const std::exception& e) {
        fmt::print(stderr, "warning: no loss plot: {}\n", e.what());
    }
    if (evaluated) {
        std::string figures;
        for (const Metric& m : last_eval.metrics) figures += fmt::format(" {}={:.4g}", m.name, m.value);
        say(fmt::format("held out after {} steps:{}", options.steps, figures));
    }
    say(fmt::format("wrote {}/{{log.csv, model.ckpt, summary.json, loss.png}}", out));
    return 0;
}

LoadedModel load_model(const std::string& checkpoint_path, Generator& dropout,
                       const ModelOverrides& overrides) {
    nn::Checkpoint checkpoint = nn::load_checkpoint(checkpoint_path);
    TrainOptions options;
    options_from_checkpoint(checkpoint, options);
    const bool overridden = !overrides.attention.empty() || overrides.features > 0;
    if (!overrides.attention.empty()) options.model.attention = overrides.attention;
    if (overrides.features > 0) options.model.features = overrides.features;
    options.model.validate();
    Generator init(overrides.seed);
    LoadedModel loaded;
    loaded.model = std::make_unique<models::SequenceModel>(options.model, init, dropout);
    nn::restore_module(checkpoint, "model.", *loaded.model,
                       overridden ? nn::Restore::ParametersOnly : nn::Restore::Everything);
    loaded.model->eval();
    loaded.task = options.task;
    loaded.seq_len = options.seq_len;
    loaded.step = checkpoint.step;
    return loaded;
}

}  // namespace pf::training
