// tasks.cpp — text, image and protein data: the readers of tools/data, made into
// batches by models/objective.h.
#include "tools/training/tasks.h"

#include "models/objective.h"
#include "models/vocabulary.h"
#include "tools/data/fasta.h"
#include "tools/data/images.h"
#include "tools/data/text.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

namespace pf::training {

namespace {

namespace protein = models::protein;

constexpr uint64_t kEvalSeed = 20210101;  // fixed: held-out batches never change
constexpr uint64_t kSplitSeed = 0;        // fixed: every run uses the same protein split
const char* kDefaultText = "data/austen";
const char* kDefaultProteins = "/usr/share/doc/mmseqs2/example-data/DB.fasta.gz";

// ---- text -------------------------------------------------------------------------

class TextTask : public Task {
public:
    explicit TextTask(const models::TaskConfig& config)
        : Task(config), path_(config.data.empty() ? kDefaultText : config.data) {
        PF_CHECK(!config.data.empty() || std::filesystem::exists(path_),
                 "{} not found: run `make data` to prepare Jane Austen's novels, or pass "
                 "--data FILE", path_);
        corpus_ = data::load_text_corpus(path_);
    }
    std::string description() const override { return corpus_.description; }

    // A window is L + 1 bytes, of the training text and of the held-out text alike.
    int64_t sequence_length(int64_t requested) const override {
        size_t shorter = std::min(corpus_.train.size(), corpus_.valid.size());
        PF_CHECK(requested >= 1 && uint64_t(requested) < shorter,
                 "{}: sequence length {} does not fit: a window needs {} bytes, and the "
                 "training text has {}, the held-out text {}",
                 path_, requested, requested + 1, corpus_.train.size(), corpus_.valid.size());
        return requested;
    }

    Batch train_batch(int64_t batch, int64_t length, Generator& gen) override {
        return models::sample_text_windows(corpus_.train, batch, length, gen);
    }

    // Consecutive windows of the held-out text (models::text_windows).
    int64_t eval_rows(const std::string&, int64_t length) override {
        int64_t windows = models::text_window_count(corpus_.valid, length);
        PF_CHECK(windows >= 1, "held-out text of {} bytes is shorter than one window of {}",
                 corpus_.valid.size(), length + 1);
        return windows;
    }

    Batch eval_batch(const std::string&, int64_t first, int64_t rows, int64_t length) override {
        return models::text_windows(corpus_.valid, first, rows, length);
    }

private:
    std::string path_;
    data::TextCorpus corpus_;
};

// ---- images -------------------------------------------------------------------------

class ImageTask : public Task {
public:
    explicit ImageTask(const models::TaskConfig& config)
        : Task(config), spec_(config.data.empty() ? "fashion-mnist" : config.data),
          train_(data::load_image_dataset(config.data, "train", config.max_images)),
          test_(data::load_image_dataset(config.data, "test", config.max_images)) {}

    std::string description() const override {
        return fmt::format("{}: {} training and {} test images of {}x{}x{}", spec_, train_.count,
                           test_.count, train_.height, train_.width, train_.channels);
    }
    models::ImageShape image_shape() const override {
        return {train_.height, train_.width, train_.channels};
    }
    int64_t image_length() const { return image_shape().length(); }
    int64_t sequence_length(int64_t) const override { return image_length(); }

    // Random training images; the start token and the shift: models::image_batch.
    Batch train_batch(int64_t batch, int64_t, Generator& gen) override {
        std::vector<std::vector<int32_t>> images;
        for (int64_t r = 0; r < batch; ++r)
            images.push_back(data::image_to_tokens(train_, int64_t(gen.below(train_.count))));
        return models::image_batch(images);
    }

    int64_t eval_rows(const std::string&, int64_t) override { return test_.count; }

    Batch eval_batch(const std::string&, int64_t first, int64_t rows, int64_t) override {
        std::vector<std::vector<int32_t>> images;
        for (int64_t r = 0; r < rows; ++r) images.push_back(data::image_to_tokens(test_, first + r));
        return models::image_batch(images);
    }

private:
    std::string spec_;
    data::ImageSet train_, test_;
};

// ---- proteins -------------------------------------------------------------------------

class ProteinTask : public Task {
public:
    explicit ProteinTask(const models::TaskConfig& config)
        : Task(config), objective_(config.objective), concatenated_(config.concatenated) {
        splits_ = protein_splits(config.data, &description_);
    }

    std::string description() const override {
        return fmt::format("{} ({} train / {} valid / {} test after removing duplicates)",
                           description_, splits_.train.size(), splits_.valid.size(),
                           splits_.test.size());
    }

    // Padded rows need no more than all the training tokens; concatenated windows must
    // fit in the stream of the training sequences.
    int64_t sequence_length(int64_t requested) const override {
        int64_t tokens = 0;
        for (const std::string& sequence : splits_.train) tokens += int64_t(sequence.size()) + 2;
        PF_CHECK(requested >= 1 && requested < tokens,
                 "{}: sequence length {} does not fit: the {} training sequences hold {} tokens "
                 "with their start and end tokens", description_, requested,
                 splits_.train.size(), tokens);
        return requested;
    }

    Batch train_batch(int64_t batch, int64_t length, Generator& gen) override {
        if (concatenated_)
            return protein::sample_concatenated_batch(splits_.train, batch, length, objective_, gen);
        if (objective_ == models::Objective::Causal)
            return protein::sample_causal_batch(splits_.train, batch, length, gen);
        return protein::sample_masked_batch(splits_.train, batch, length, gen);
    }

    int64_t eval_rows(const std::string& split, int64_t length) override {
        int64_t rows = int64_t(windows(split, length).size());
        PF_CHECK(rows >= 1, "the {} split holds no window of {} tokens", split, length);
        return rows;
    }

    Batch eval_batch(const std::string& split, int64_t first, int64_t rows, int64_t length) override {
        return protein::held_out_batch(sequences(split), windows(split, length), first, rows,
                                       length, objective_, concatenated_, kEvalSeed);
    }

private:
    const std::vector<std::string>& sequences(const std::string& split) const {
        return split == "valid" ? splits_.valid : splits_.test;
    }
    // The held-out windows of a split for length L, worked out once.
    const std::vector<protein::HeldOutWindow>& windows(const std::string& split, int64_t length) {
        auto key = std::make_pair(split, length);
        auto found = windows_.find(key);
        if (found == windows_.end())
            found = windows_.emplace(key, protein::held_out_windows(sequences(split), length,
                                                                    objective_, concatenated_))
                        .first;
        return found->second;
    }

    models::Objective objective_;
    bool concatenated_;
    std::string description_;
    data::ProteinSplits splits_;
    std::map<std::pair<std::string, int64_t>, std::vector<protein::HeldOutWindow>> windows_;
};

}  // namespace

data::ProteinSplits protein_splits(const std::string& path_in, std::string* description) {
    std::string path = path_in.empty() ? kDefaultProteins : path_in;
    PF_CHECK(!path_in.empty() || std::filesystem::exists(path),
             "{} not found: run `make data` (it installs mmseqs2-examples), or pass "
             "--data FILE.fasta[.gz]", path);
    std::vector<std::string> all = data::read_fasta(path, protein::kResidues);
    if (description) *description = fmt::format("{}: {} sequences", path, all.size());
    data::ProteinSplits splits = data::split_proteins(std::move(all), kSplitSeed);
    PF_CHECK(!splits.train.empty() && !splits.test.empty() && !splits.valid.empty(),
             "{}: too few sequences to split into train, valid and test", path);
    return splits;
}

std::unique_ptr<Task> make_task(const models::TaskConfig& config) {
    check_data_spec(config.kind, config.data);
    switch (config.kind) {
        case models::TaskKind::Text: return std::make_unique<TextTask>(config);
        case models::TaskKind::Image: return std::make_unique<ImageTask>(config);
        case models::TaskKind::Protein: return std::make_unique<ProteinTask>(config);
    }
    throw Error("unknown task");
}

void check_data_spec(models::TaskKind kind, const std::string& spec) {
    if (spec.empty()) return;
    if (kind == models::TaskKind::Image) {
        const size_t colon = spec.find(':');
        PF_CHECK(colon == std::string::npos || colon + 1 < spec.size(),
                 "--data '{}': an empty path after the colon; give the folder as {}DIR", spec,
                 spec);
        return;
    }
    if (kind != models::TaskKind::Text) return;  // protein: one path, not empty
    const size_t entries = 1 + size_t(std::count(spec.begin(), spec.end(), ','));
    size_t begin = 0;
    for (size_t entry = 1; entry <= entries; ++entry) {
        const size_t comma = std::min(spec.find(',', begin), spec.size());
        PF_CHECK(comma > begin, "--data '{}': file {} of the {} in the comma-separated list is "
                 "an empty path", spec, entry, entries);
        begin = comma + 1;
    }
}

std::string Task::name() const { return models::task_names().at(size_t(config_.kind)); }

models::HeldOutSet Task::held_out(const std::string& split, int64_t length) {
    return {eval_rows(split, length), [this, split, length](int64_t first, int64_t count) {
                return eval_batch(split, first, count, length);
            }};
}

void Task::check_fits(const models::ModelConfig& model, int64_t length) const {
    models::ModelConfig data = model;
    models::TaskConfig task = config_;
    task.seq_len = length;
    models::configure_model(data, task, image_shape());
    PF_CHECK(data.image_height == model.image_height && data.image_width == model.image_width &&
                 data.image_channels == model.image_channels,
             "the data's images are {}x{}x{} (height x width x channels), the model's are "
             "{}x{}x{}: {}", data.image_height, data.image_width, data.image_channels,
             model.image_height, model.image_width, model.image_channels, description());
    PF_CHECK(data.vocab == model.vocab && data.attention.max_length <= model.attention.max_length,
             "the data needs a vocabulary of {} and sequences of {}, the model has {} and {}: {}",
             data.vocab, data.attention.max_length, model.vocab, model.attention.max_length,
             description());
}

}  // namespace pf::training
