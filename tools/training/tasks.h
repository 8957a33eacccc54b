// tasks.h — the data of each task: training batches and a fixed held-out set.
//
//   text     bytes of a corpus (default data/austen: five novels to train, Persuasion
//            held out); random windows of L+1 bytes.
//   image    images as sequences of intensities in raster order (row, column,
//            channel), after a start token; Fashion-MNIST by default, or
//            imagenet64:DIR; held out: the test split.
//   protein  amino-acid sequences (UniProt, from mmseqs2-examples by default), causal
//            or masked (BERT-style), cropped/padded to L or concatenated into long
//            windows; held out: the valid and test splits.
//
// What the model of each task is (vocabulary, objective, positions, metrics) is
// models/task.h, and how its tokens become inputs and targets models/objective.h; here
// is where its data comes from, read by tools/data. A Task hands out training batches
// from a generator, and a fixed held-out set that is the same on every call, so that
// evaluations are comparable; it is built one batch at a time, so that memory does not
// grow with its size:
//   text     the held-out text cut into consecutive windows of L + 1 bytes;
//   image    every test image, in file order;
//   protein  every sequence of the split, cut into consecutive windows (see
//            protein::held_out_windows in models/objective.h), masks from a fixed seed.
#pragma once

#include "engine/random.h"
#include "models/evaluate.h"
#include "models/task.h"
#include "tools/data/fasta.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace pf::training {

using models::Batch;

class Task {
public:
    explicit Task(const models::TaskConfig& config) : config_(config) {}
    virtual ~Task() = default;
    std::string name() const;                      // "text", "image", "protein"
    virtual std::string description() const = 0;  // the data, in a few words
    virtual models::ImageShape image_shape() const { return {}; }  // image tasks only
    // The sequence length a run uses when `requested` is asked for (image tasks: the
    // image's length). pf::Error if the data cannot fill a sequence that long: checked
    // before a model of that length is built.
    virtual int64_t sequence_length(int64_t requested) const = 0;
    virtual Batch train_batch(int64_t batch, int64_t length, Generator& gen) = 0;
    // The held-out set ("valid" or "test") has eval_rows() rows of `length` tokens;
    // eval_batch gives rows [first, first + rows) of it, the same on every call.
    virtual int64_t eval_rows(const std::string& split, int64_t length) = 0;
    virtual Batch eval_batch(const std::string& split, int64_t first, int64_t rows,
                             int64_t length) = 0;

    // The held-out set as models::evaluate reads it.
    models::HeldOutSet held_out(const std::string& split, int64_t length);
    // pf::Error naming both shapes if this data would build another model than `model`
    // (sequences of `length`): e.g. images of another size than it was trained on.
    void check_fits(const models::ModelConfig& model, int64_t length) const;

private:
    models::TaskConfig config_;
};

// The task's data (config.data checked by check_data_spec first).
std::unique_ptr<Task> make_task(const models::TaskConfig& config);

// pf::Error naming --data and the empty part if a path in `spec` is empty: in a text
// list ("a.txt," or ",a.txt" or "a.txt,,b.txt"), or the folder of an image spec
// ("imagenet64:"). An empty spec is the task's default data, and passes.
void check_data_spec(models::TaskKind kind, const std::string& spec);

// The protein task's sequences (path, or the default UniProt file if empty), without
// duplicates, in the fixed train / valid / test split every run uses.
data::ProteinSplits protein_splits(const std::string& path, std::string* description = nullptr);

}  // namespace pf::training
