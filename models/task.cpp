// task.cpp — the tasks' names, models and metrics.
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
