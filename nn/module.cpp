// module.cpp — parameter and buffer registries, walked depth first.
#include "nn/module.h"

namespace pf::nn {

NamedTensors Module::named_parameters() const {
    NamedTensors out = parameters_;
    for (const auto& [name, child] : children_)
        for (auto& [child_name, tensor] : child->named_parameters())
            out.emplace_back(name + "." + child_name, tensor);
    return out;
}

NamedTensors Module::named_buffers() const {
    NamedTensors out = buffers_;
    for (const auto& [name, child] : children_)
        for (auto& [child_name, tensor] : child->named_buffers())
            out.emplace_back(name + "." + child_name, tensor);
    return out;
}

std::vector<Tensor> Module::parameters() const {
    std::vector<Tensor> out;
    for (auto& [name, tensor] : named_parameters()) out.push_back(tensor);
    return out;
}

std::vector<Module*> Module::modules() {
    std::vector<Module*> out{this};
    for (auto& [name, child] : children_)
        for (Module* m : child->modules()) out.push_back(m);
    return out;
}

int64_t Module::parameter_count() const {
    int64_t total = 0;
    for (const Tensor& p : parameters()) total += p.numel();
    return total;
}

void Module::train(bool on) {
    training_ = on;
    on_mode_change();
    for (auto& [name, child] : children_) child->train(on);
}

void Module::zero_grad() {
    for (Tensor p : parameters()) p.zero_grad();
}

Tensor Module::register_parameter(const std::string& name, Tensor value) {
    PF_CHECK(value.is_leaf(), "register_parameter: '{}' must be a leaf tensor", name);
    value.requires_grad_();
    parameters_.emplace_back(name, value);
    return value;
}

Tensor Module::register_buffer(const std::string& name, Tensor value) {
    buffers_.emplace_back(name, value);
    return value;
}

}  // namespace pf::nn
