// trained_model.cpp — reading a checkpoint's settings and building its model.
#include "models/trained_model.h"

namespace pf::models {

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
    saved.model.check_shapes(checkpoint.with_prefix("model."), where);
    // The task sizes the position table to the sequence length: it must be the table's.
    PF_CHECK(saved.model.image_positions() || saved.task.seq_len <= saved.model.attention.max_length,
             "{}: 'train.seq_len' is {}, longer than 'model.max_length' {}", where,
             saved.task.seq_len, saved.model.attention.max_length);
    return saved;
}

TrainedModel load_model(const std::string& checkpoint_path, Generator& dropout,
                        const ModelOverrides& overrides) {
    nn::Checkpoint checkpoint = nn::load_checkpoint(checkpoint_path);
    SavedSettings saved = read_saved_settings(checkpoint);
    ModelConfig& config = saved.model;
    const bool overridden = !overrides.attention.empty() || overrides.features > 0;
    if (!overrides.attention.empty()) config.attention.mechanism = nn::parse_mechanism(overrides.attention);
    if (overrides.features > 0) config.attention.features = overrides.features;
    config.validate();
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
