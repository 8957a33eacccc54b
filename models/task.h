// task.h — what makes a sequence model a text, image or protein model.
//
//   text     bytes of a corpus; predicts the next byte; learned positions; scored in
//            bits per byte.
//   image    intensities in raster order (row, column, channel) after a start token;
//            predicts the next intensity; factorised positions (row + column + channel
//            embeddings); scored in bits per dimension.
//   protein  amino acids; predicts the next residue (causal) or hidden residues (masked:
//            bidirectional attention); learned positions; scored by accuracy and perplexity.
//
// The tokens are those of models/vocabulary.h; how they become a Batch of inputs and
// targets (shifts, masks, start tokens) is models/objective.h. Where each task's data
// comes from (reading it, the splits) is tools/training/tasks.h.
#pragma once

#include "engine/tensor.h"
#include "models/sequence_model.h"

#include <string>
#include <vector>

namespace pf::models {

enum class TaskKind { Text, Image, Protein };
const std::vector<std::string>& task_names();       // "text", "image", "protein"
enum class Objective { Causal, Masked };
const std::vector<std::string>& objective_names();  // "causal", "masked"

// What a model is trained on. Its settings are stored in every checkpoint.
struct TaskConfig {
    TaskKind kind = TaskKind::Text;
    std::string data;                         // path or spec; empty: the task's default data
    Objective objective = Objective::Causal;  // protein: causal or masked
    bool concatenated = false;                // protein: long windows of joined sequences
    int64_t max_images = 0;                   // image: load at most this many per split (0: all)
    int64_t seq_len = 256;                    // L (image: the image's length, whatever is asked)
};
// Its settings (checkpoint keys "task.*", flags --task, ...): task_settings in models/run.h.

// The shape of a data set's images (all 0 for the other tasks).
struct ImageShape {
    int64_t height = 0, width = 0, channels = 0;
    int64_t length() const { return height * width * channels; }
};

// Sets the model's vocabulary, objective and positions for the task: sequences of
// task.seq_len tokens, or for images `image`'s positions and length.
void configure_model(ModelConfig& model, const TaskConfig& task, const ImageShape& image);

// B rows of L tokens, row-major (B, L): the model's inputs and the targets it is scored
// on (kIgnore: not scored).
struct Batch {
    std::vector<int32_t> inputs, targets;
    int64_t batch = 0, length = 0;
    Tensor key_mask;  // (B, L), 1 real / 0 padding; undefined if there is no padding
};

struct Metric {
    std::string name;
    double value;
};
// The task's figures, headline first: text bits_per_byte, accuracy; image bits_per_dim,
// accuracy; protein accuracy, perplexity, loss.
const std::vector<std::string>& metric_names(TaskKind kind);
// One figure from the mean loss (nats per scored token) and the share of scored tokens
// whose most likely token is the target (NaN if not measured, as in training steps):
// bits_per_* are loss / ln 2, perplexity e^loss.
double metric_value(const std::string& name, double mean_loss, double accuracy);
std::vector<Metric> task_metrics(TaskKind kind, double mean_loss, double accuracy);

}  // namespace pf::models
