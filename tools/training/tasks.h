// tasks.h — what each experiment trains on, and how it is scored.
//
//   text     bytes of a corpus (default data/austen: five novels to train, Persuasion
//            held out); random windows of L+1 bytes; scored in bits per byte.
//   image    images as sequences of intensities in raster order (row, column,
//            channel), after a start token; Fashion-MNIST by default, or
//            imagenet64:DIR; scored in bits per dimension on the test split.
//   protein  amino-acid sequences (UniProt, from mmseqs2-examples by default), causal
//            or masked (BERT-style), cropped/padded to L or concatenated into long
//            windows; scored by accuracy and perplexity on the test split.
//
// A Task fixes the model's vocabulary, objective and positions (configure), hands
// out training batches from a generator, and a fixed held-out set that is the same on
// every call, so that evaluations are comparable; it is built one batch at a time, so
// that memory does not grow with its size:
//   text     the held-out text cut into consecutive windows of L + 1 bytes;
//   image    every test image, in file order;
//   protein  every sequence of the split, cut into consecutive windows (see
//            held_out_windows in tools/data/fasta.h), masks from a fixed seed.
#pragma once

#include "engine/random.h"
#include "models/sequence_model.h"
#include "tools/data/fasta.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace pf::training {

constexpr int32_t kIgnore = -100;          // target of a position that is not scored
constexpr int32_t kImageStartToken = 256;  // an image sequence's first input

struct Batch {
    std::vector<int32_t> inputs, targets;  // B * L each, row-major
    int64_t batch = 0, length = 0;
    Tensor key_mask;                       // (B, L), 1 real / 0 padding; undefined if none
};

struct TaskOptions {
    std::string task = "text";        // text | image | protein
    std::string data;                 // path or spec; empty: the task's default data
    std::string objective = "causal"; // protein: causal | masked
    bool concatenated = false;        // protein: long windows of joined sequences
    int64_t max_images = 0;           // image: load at most this many per split (0: all)
};

struct Metric {
    std::string name;
    double value;
};

class Task {
public:
    virtual ~Task() = default;
    virtual std::string name() const = 0;
    virtual std::string description() const = 0;  // the data, in a few words
    // Sets vocab, objective, max_length and image positions for sequences of `length`
    // (image tasks: the image's length, whatever is asked).
    virtual void configure(models::ModelConfig& config, int64_t length) const = 0;
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
    // The task's figures from the mean loss (nats per scored token) and the share of
    // scored tokens predicted right; the first is the headline metric.
    virtual std::vector<Metric> metrics(double mean_loss, double accuracy) const = 0;
};

std::unique_ptr<Task> make_task(const TaskOptions& options);

// The protein task's sequences (path, or the default UniProt file if empty), without
// duplicates, in the fixed train / valid / test split every run uses.
data::ProteinSplits protein_splits(const std::string& path, std::string* description = nullptr);

struct Evaluation {
    double loss = 0;       // mean nats per scored token
    double accuracy = 0;   // share of scored tokens whose argmax is the target
    double majority = 0;   // the accuracy of always predicting the most common target
    int64_t tokens = 0;
    std::vector<Metric> metrics;
};

// Runs the model over the held-out set, `batch` rows at a time, at most `max_batches`
// batches (evaluation mode, no gradients). pf::Error if the data's shape (image size,
// vocabulary) is not the one the model was built for.
Evaluation evaluate(models::SequenceModel& model, Task& task, const std::string& split,
                    int64_t batch, int64_t length, int64_t max_batches);

}  // namespace pf::training
