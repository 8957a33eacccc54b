// run.cpp — a run's settings tables, the gate its options pass, and its checkpoint: the
// parts saved and restored side by side, and a run's model loaded alone.
#include "models/run.h"

#include "engine/files.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>

namespace pf::models {

// ---- the settings tables -------------------------------------------------------------------

const Settings<TaskConfig>& task_settings() {
    static const Settings<TaskConfig> settings = [] {
        Settings<TaskConfig> s;
        s.choice("task.task", "--task", "what to model",
                 [](auto& t) -> auto& { return t.kind; }, task_names());
        s.text("task.data", "--data",
               "text: a file, FILE1,FILE2 (last held out) or a folder with train.txt and "
               "valid.txt (default data/austen); image: fashion-mnist (default) or "
               "imagenet64:DIR; protein: a FASTA file (default: mmseqs2-examples)",
               [](auto& t) -> auto& { return t.data; });
        s.choice("task.objective", "--objective", "protein: predict the next residue (causal) or "
                 "hidden ones (masked, bidirectional)",
                 [](auto& t) -> auto& { return t.objective; }, objective_names());
        s.on_off("task.concatenated", "--concatenated",
                 "protein: windows of sequences joined by separators (the long-sequence mode)",
                 [](auto& t) -> auto& { return t.concatenated; });
        s.integer("task.max_images", "--max-images", "image: load at most this many per split",
                  [](auto& t) -> auto& { return t.max_images; }, 0);
        s.integer("train.seq_len", "--seq-len", "sequence length L (image: the image's length)",
                  [](auto& t) -> auto& { return t.seq_len; }, 1);
        return s;
    }();
    return settings;
}

const Settings<ModelConfig>& model_settings() {
    static const Settings<ModelConfig> settings = [] {
        Settings<ModelConfig> s;
        s.choice("model.attention", "--attention", "attention mechanism",
                 [](auto& c) -> auto& { return c.attention.mechanism; }, nn::mechanism_names());
        s.integer("model.features", "--features", "random features m (favor, trig, relu)",
                  [](auto& c) -> auto& { return c.attention.features; }, 1);
        s.choice("model.feature_kind", "--feature-kind",
                 "favor's random features: iid or orthogonal rows, or orthogonal rows with "
                 "FAVOR++'s map",
                 [](auto& c) -> auto& { return c.attention.feature_kind; },
                 nn::feature_kind_names());
        s.integer("model.chunk", "--chunk",
                  "chunk length: causal linear attention's blocks, reformer's chunks",
                  [](auto& c) -> auto& { return c.attention.chunk; }, 1);
        s.integer("model.linformer_k", "--linformer-k",
                  "linformer: rows k of the projections along the sequence",
                  [](auto& c) -> auto& { return c.attention.linformer_k; }, 1);
        s.integer("model.hashes", "--hashes", "reformer: rounds of hashing",
                  [](auto& c) -> auto& { return c.attention.hashes; }, 1);
        s.integer("model.buckets", "--buckets", "reformer: hash buckets of each round (even)",
                  [](auto& c) -> auto& { return c.attention.buckets; }, 2);
        s.integer("model.layers", "--layers", "Transformer blocks",
                  [](auto& c) -> auto& { return c.layers; }, 1);
        s.integer("model.dim", "--dim", "model width D",
                  [](auto& c) -> auto& { return c.attention.dim; }, 1);
        s.integer("model.heads", "--heads", "attention heads",
                  [](auto& c) -> auto& { return c.attention.heads; }, 1);
        s.integer("model.ff", "--ff", "feed-forward width (default 4 D)",
                  [](auto& c) -> auto& { return c.ff; }, 1);
        s.number("model.dropout", "--dropout", "dropout probability",
                 [](auto& c) -> auto& { return c.dropout; }, 0.0, 0.99);
        // Set by the task (models/task.h), not by flags.
        s.choice("model.objective", "", "causal (next token) or masked (bidirectional)",
                 [](auto& c) -> auto& { return c.attention.causal; }, {"masked", "causal"});
        s.integer("model.vocab", "", "tokens", [](auto& c) -> auto& { return c.vocab; }, 2);
        s.integer("model.max_length", "", "longest sequence",
                  [](auto& c) -> auto& { return c.attention.max_length; }, 1);
        s.integer("model.image_height", "", "image rows (0: not an image model)",
                  [](auto& c) -> auto& { return c.image_height; }, 0);
        s.integer("model.image_width", "", "image columns",
                  [](auto& c) -> auto& { return c.image_width; }, 0);
        s.integer("model.image_channels", "", "image channels",
                  [](auto& c) -> auto& { return c.image_channels; }, 0);
        return s;
    }();
    return settings;
}

const Settings<TrainOptions>& train_settings() {
    static const Settings<TrainOptions> settings = [] {
        Settings<TrainOptions> s;
        s.integer("train.batch", "--batch", "sequences per step (with mpirun: over all processes)",
                  [](auto& o) -> auto& { return o.batch; }, 1);
        s.integer("train.micro_batches", "--micro-batches",
                  "split each process's share of a step into this many parts, run one after "
                  "another (less memory; the gradients add up)",
                  [](auto& o) -> auto& { return o.micro_batches; }, 1)
            .missing_means_default();
        s.number("train.lr", "--lr", "peak learning rate",
                 [](auto& o) -> auto& { return o.lr; }, 0, HUGE_VAL, true);
        s.number("train.min_lr_ratio", "", "the learning rate's floor, as a share of its peak",
                 [](auto& o) -> auto& { return o.min_lr_ratio; }, 0, 1);
        s.number("train.weight_decay", "--weight-decay", "AdamW weight decay",
                 [](auto& o) -> auto& { return o.weight_decay; }, 0, HUGE_VAL);
        s.number("train.clip", "--clip", "gradient clipping: largest global norm",
                 [](auto& o) -> auto& { return o.clip; }, 0, HUGE_VAL, true);
        s.integer("train.warmup", "--warmup", "warm-up steps (default 5% of the steps, at most 200)",
                  [](auto& o) -> auto& { return o.warmup; }, -1);
        s.integer("train.redraw", "--redraw", "redraw the random features every N steps (0: never)",
                  [](auto& o) -> auto& { return o.redraw; }, 0);
        s.integer("train.seed", "--seed", "random seed (data order, initialisation, features)",
                  [](auto& o) -> auto& { return o.seed; }, 0);
        s.integer("train.eval_every", "--eval-every", "steps between evaluations (default: a tenth)",
                  [](auto& o) -> auto& { return o.eval_every; }, 0);
        s.integer("train.eval_batches", "--eval-batches", "held-out batches per evaluation",
                  [](auto& o) -> auto& { return o.eval_batches; }, 1);
        return s;
    }();
    return settings;
}

namespace {

// The seconds a run has trained, kept beside its settings.
const Settings<double>& elapsed_setting() {
    static const Settings<double> setting = Settings<double>().number(
        "train.elapsed_s", "", "seconds spent in training steps", [](auto& s) -> auto& { return s; },
        0, HUGE_VAL);
    return setting;
}

SettingsMap run_settings(const TrainOptions& o) {
    SettingsMap map;
    task_settings().write(o.task, map);
    model_settings().write(o.model, map);
    train_settings().write(o, map);
    return map;
}

}  // namespace

void upgrade_model_settings(SettingsMap& map) {
    // Settings of the baselines (linformer, reformer), newer than any checkpoint of the
    // other mechanisms: absent, they take their defaults, which those ignore.
    SettingsMap defaults;
    model_settings().write(ModelConfig{}, defaults);
    for (const char* key : {"model.linformer_k", "model.hashes", "model.buckets"})
        if (!map.count(key)) map[key] = defaults.at(key);
    auto old = map.find("model.orthogonal");
    if (old == map.end() || map.count("model.feature_kind")) return;
    PF_CHECK(old->second == "0" || old->second == "1",
             "'model.orthogonal' is '{}', neither 1 nor 0", old->second);
    map["model.feature_kind"] = old->second == "1" ? "orthogonal" : "iid";
    map.erase(old);
}

// ---- the gate ------------------------------------------------------------------------------

namespace {

// At least how many numbers the model `c` describes holds: its token embedding and head,
// its positions, each block's attention (three D x D matrices at least) and MLP, and the
// random features, rotations or projections of its mechanism. The model is the exact
// description (restore_module checks each of its tensors against the file); this bound
// refuses, from the settings alone, a file claiming more than it holds.
double least_numbers(const ModelConfig& c) {
    const nn::AttentionConfig& a = c.attention;
    const double D = double(a.dim), head_dim = D / double(std::max<int64_t>(1, a.heads));
    const double positions = c.image_positions()
                                 ? double(c.image_height + c.image_width + c.image_channels)
                                 : double(a.max_length);
    double block = 3 * D * D + 2 * D * double(c.ff);
    if (nn::uses_random_features(a.mechanism)) block += double(a.features) * head_dim;
    if (a.mechanism == nn::Mechanism::Reformer) block += double(a.hashes) * head_dim * double(a.buckets / 2);
    if (a.mechanism == nn::Mechanism::Linformer) block += 2 * double(a.linformer_k) * double(a.max_length);
    return 2 * double(c.vocab) * D + positions * D + double(c.layers) * block;
}

// The checkpoint key of a flag of build/train; nothing for the session's flags (--steps,
// --stop-after, --time-limit, --out), which may change on --resume.
std::optional<std::string> key_of_flag(const std::string& flag) {
    if (auto s = task_settings().find_flag(flag)) return s->key;
    if (auto s = model_settings().find_flag(flag)) return s->key;
    if (auto s = train_settings().find_flag(flag)) return s->key;
    return std::nullopt;
}

// Throws pf::Error naming the flag and both values if a flag given with --resume
// disagrees with the run's setting.
void check_resume_flags(const TrainOptions& requested, const nn::Checkpoint& checkpoint) {
    const SettingsMap wanted = run_settings(requested);
    SettingsMap stored = checkpoint.config;
    upgrade_model_settings(stored);
    for (const std::string& flag : requested.given_flags) {
        std::optional<std::string> key = key_of_flag(flag);
        if (!key) continue;
        // An image's sequence length is the image's: the task ignores --seq-len.
        if (*key == "train.seq_len" && requested.task.kind == TaskKind::Image) continue;
        auto found = stored.find(*key);
        std::string run_value = found == stored.end() ? "(none)" : found->second;
        PF_CHECK(run_value == wanted.at(*key), "{} {} conflicts with the run being resumed, "
                 "whose {} is {} ({}): leave the flag out to continue the run as it was, or "
                 "start a new run in another --out", flag, wanted.at(*key), *key, run_value,
                 checkpoint.describe());
    }
}

// A lower bound on one process's memory for a training step, refused when it exceeds the
// machine's, before anything is allocated (--layers 2^31 or a checkpoint's train.batch of
// 2^31 would otherwise allocate until the machine swaps). Parameters: 4 D^2 + 2 D ff a
// block, 16 bytes each (weight, gradient, AdamW's two moments). Activations: each block
// keeps at least its q, k, v, output and MLP hidden values, (4 D + ff) floats a token.
void check_step_fits_memory(const TrainOptions& o, int64_t parts) {
    const double D = double(o.model.attention.dim), ff = double(o.model.ff);
    const double layers = double(o.model.layers);
    const double parameter_bytes = layers * (4 * D * D + 2 * D * ff) * 16;
    const double tokens = std::ceil(double(o.batch) / double(parts)) * double(o.task.seq_len);
    const double activation_bytes = layers * tokens * (4 * D + ff) * 4;
    const double need = parameter_bytes + activation_bytes, have = double(machine_memory_bytes());
    PF_CHECK(need <= have, "{} layers of width {}, batch {} of length {}: a training step needs "
             "at least {:.1f} GiB, more than this machine's {:.1f} GiB (fewer layers, a smaller "
             "batch, or --micro-batches)", o.model.layers, o.model.attention.dim, o.batch,
             o.task.seq_len, need / 1073741824.0, have / 1073741824.0);
}

}  // namespace

SavedSettings read_saved_settings(const nn::Checkpoint& checkpoint) {
    const std::string where = checkpoint.describe();
    SettingsMap map = checkpoint.config;
    upgrade_model_settings(map);
    SavedSettings saved;
    model_settings().read(map, where, saved.model);
    task_settings().read(map, where, saved.task);
    try {
        saved.model.validate();
    } catch (const Error& e) {
        throw Error(fmt::format("{}: bad model configuration: {}", where, e.what()));
    }
    double held = 0;
    for (const auto& [name, tensor] : checkpoint.with_prefix("model.")) held += double(tensor.numel());
    const ModelConfig& m = saved.model;
    PF_CHECK(least_numbers(m) <= held, "{}: its settings (model.layers {}, model.dim {}, "
             "model.ff {}, model.vocab {}, model.max_length {}, model.features {}, "
             "model.hashes {}, model.buckets {}, model.linformer_k {}) describe a model of at "
             "least {:.4g} numbers; the file holds {:.4g}", where, m.layers, m.attention.dim,
             m.ff, m.vocab, m.attention.max_length, m.attention.features, m.attention.hashes,
             m.attention.buckets, m.attention.linformer_k, least_numbers(m), held);
    // The task sizes the position table to the sequence length: it must be the table's.
    PF_CHECK(saved.model.image_positions() || saved.task.seq_len <= saved.model.attention.max_length,
             "{}: 'train.seq_len' is {}, longer than 'model.max_length' {}", where,
             saved.task.seq_len, saved.model.attention.max_length);
    return saved;
}

TrainOptions settle_run_options(TrainOptions o, const nn::Checkpoint* resumed, int64_t processes) {
    if (resumed) {
        const nn::Checkpoint& checkpoint = *resumed;
        check_resume_flags(o, checkpoint);
        SavedSettings saved = read_saved_settings(checkpoint);
        o.task = saved.task;
        o.model = saved.model;
        train_settings().read(checkpoint.config, checkpoint.describe(), o);
        PF_CHECK(checkpoint.step <= o.steps, "{} is at step {}, past --steps {}",
                 checkpoint.describe(), checkpoint.step, o.steps);
        PF_CHECK(o.stop_after == 0 || o.stop_after > checkpoint.step || o.stop_after >= o.steps,
                 "{} is at step {}: --stop-after {} is done already (give a later step)",
                 checkpoint.describe(), checkpoint.step, o.stop_after);
        double elapsed = 0;
        elapsed_setting().read(checkpoint.config, checkpoint.describe(), elapsed);
        PF_CHECK(o.time_limit == 0 || o.time_limit > elapsed,
                 "{} has trained for {:.1f} s: --time-limit {} is spent already (give more seconds)",
                 checkpoint.describe(), elapsed, o.time_limit);
    }
    PF_CHECK(o.steps >= 1, "steps {} must be positive", o.steps);
    task_settings().check(o.task);
    model_settings().check(o.model);
    train_settings().check(o);
    o.model.attention.recompute = o.recompute;
    const int64_t parts = o.micro_batches * processes;
    PF_CHECK(o.batch >= parts, "--batch {} cannot be shared out: {} processes x {} "
             "micro-batches need at least one sequence each", o.batch, processes, o.micro_batches);
    // favor++'s running statistic moves with each process's own batches: the processes'
    // models would drift apart (it is not summed across them yet).
    PF_CHECK(o.model.attention.feature_kind != nn::FeatureKind::Optimal || processes == 1,
             "--feature-kind favor++ trains in one process only ({} were started)", processes);
    check_step_fits_memory(o, parts);
    if (o.warmup < 0) o.warmup = std::min<int64_t>(200, o.steps / 20);
    if (o.eval_every <= 0) o.eval_every = std::max<int64_t>(1, o.steps / 10);
    return o;
}

// ---- the parts, saved and restored -------------------------------------------------------

namespace {

// The run's generators (Generators or const Generators) by the names a checkpoint gives them.
template <class Gens>
auto named_generators(Gens& g) {
    using Pointer = decltype(&g.batches);
    return std::array<std::pair<const char*, Pointer>, 3>{
        {{"batches", &g.batches}, {"dropout", &g.dropout}, {"features", &g.features}}};
}

}  // namespace

void build_model(RunParts& run) {
    const TrainOptions& o = run.options;
    Generator init(o.seed * 4);
    run.model = std::make_unique<SequenceModel>(o.model, init, run.generators.dropout);
    run.optimizer = std::make_unique<nn::AdamW>(run.model->named_parameters(), o.lr, 0.9f, 0.95f,
                                                1e-8f, o.weight_decay);
}

void save_run(const std::string& path, const RunParts& run) {
    nn::Checkpoint checkpoint;
    checkpoint.config = run_settings(run.options);
    elapsed_setting().write(run.elapsed, checkpoint.config);
    checkpoint.step = run.step;
    nn::store_module(checkpoint, "model.", *run.model);
    for (auto& [name, tensor] : run.optimizer->state()) checkpoint.add_tensor("optim." + name, tensor);
    for (auto [name, generator] : named_generators(run.generators))
        nn::store_generator(checkpoint, name, *generator);
    nn::save_checkpoint(path, checkpoint);
}

void restore_run(const nn::Checkpoint& checkpoint, RunParts& run) {
    elapsed_setting().read(checkpoint.config, checkpoint.describe(), run.elapsed);
    run.step = checkpoint.step;
    nn::restore_module(checkpoint, "model.", *run.model);
    run.optimizer->load_state(checkpoint.with_prefix("optim."));
    for (auto [name, generator] : named_generators(run.generators))
        nn::restore_generator(checkpoint, name, *generator);
}

// ---- a run's model alone ---------------------------------------------------------------------

TrainedModel load_model(const std::string& checkpoint_path, Generator& dropout,
                        const ModelOverrides& overrides) {
    nn::Checkpoint checkpoint = nn::load_checkpoint(checkpoint_path);
    SavedSettings saved = read_saved_settings(checkpoint);
    ModelConfig& config = saved.model;
    const bool overridden = !overrides.attention.empty() || overrides.features > 0;
    if (!overrides.attention.empty()) config.attention.mechanism = nn::parse_mechanism(overrides.attention);
    if (overrides.features > 0) config.attention.features = overrides.features;
    model_settings().check(config);
    Generator init(overrides.seed);
    TrainedModel trained;
    trained.model = std::make_unique<SequenceModel>(config, init, dropout);
    nn::restore_module(checkpoint, "model.", *trained.model,
                       overridden ? nn::Restore::ParametersOnly : nn::Restore::Everything);
    trained.model->eval();
    trained.task = saved.task;
    trained.step = checkpoint.step;
    return trained;
}

}  // namespace pf::models
