// task.cpp — the tasks' settings, models and metrics.
#include "models/task.h"

#include "models/vocabulary.h"

#include <cmath>

namespace pf::models {

const std::vector<std::string>& task_names() {
    static const std::vector<std::string> names = {"text", "image", "protein"};
    return names;
}

const std::vector<std::string>& objective_names() {
    static const std::vector<std::string> names = {"causal", "masked"};
    return names;
}

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

void configure_model(ModelConfig& model, const TaskConfig& task, const ImageShape& image) {
    model.attention.causal = task.kind != TaskKind::Protein || task.objective == Objective::Causal;
    model.image_height = model.image_width = model.image_channels = 0;
    model.attention.max_length = task.seq_len;
    switch (task.kind) {
        case TaskKind::Text: model.vocab = kByteTokens; break;
        case TaskKind::Protein: model.vocab = protein::vocab_size(); break;
        case TaskKind::Image:
            model.vocab = kImageIntensities + 1;  // and the start token
            model.attention.max_length = image.length();
            model.image_height = image.height;
            model.image_width = image.width;
            model.image_channels = image.channels;
            break;
    }
}

const std::vector<std::string>& metric_names(TaskKind kind) {
    static const std::vector<std::string> text = {"bits_per_byte", "accuracy"},
                                          image = {"bits_per_dim", "accuracy"},
                                          protein = {"accuracy", "perplexity", "loss"};
    return kind == TaskKind::Text ? text : kind == TaskKind::Image ? image : protein;
}

double metric_value(const std::string& name, double mean_loss, double accuracy) {
    if (name == "accuracy") return accuracy;
    if (name == "perplexity") return std::exp(mean_loss);
    if (name == "loss") return mean_loss;
    return mean_loss / std::log(2.0);  // bits per byte, bits per dimension
}

std::vector<Metric> task_metrics(TaskKind kind, double mean_loss, double accuracy) {
    std::vector<Metric> metrics;
    for (const std::string& name : metric_names(kind))
        metrics.push_back({name, metric_value(name, mean_loss, accuracy)});
    return metrics;
}

}  // namespace pf::models
