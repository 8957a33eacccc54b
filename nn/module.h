// module.h — the base of every layer and model: named parameters, children, modes.
//
//   class MLP : public Module {
//   public:
//       MLP(int64_t d, int64_t hidden, Generator& gen)
//           : up_(register_module("up", std::make_unique<Linear>(d, hidden, gen))),
//             down_(register_module("down", std::make_unique<Linear>(hidden, d, gen))) {}
//       Tensor forward(const Tensor& x) { return down_.forward(gelu(up_.forward(x))); }
//   private:
//       Linear& up_;
//       Linear& down_;
//   };
//
// Parameters are leaves with requires_grad; named_parameters() lists them depth
// first as "up.weight", "down.bias", ... — the names checkpoints use. Buffers are
// state that is saved but not trained (e.g. attention's random features).
// Modules own their children and are neither copied nor moved (children are
// referred to by address).
#pragma once

#include "engine/tensor.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace pf::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
public:
    Module() = default;
    virtual ~Module() = default;
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;

    NamedTensors named_parameters() const;
    std::vector<Tensor> parameters() const;
    NamedTensors named_buffers() const;
    int64_t parameter_count() const;  // number of scalars
    // This module and every module below it, depth first.
    std::vector<Module*> modules();

    // Training mode (dropout active, features may be redrawn) or evaluation mode.
    void train(bool on = true);
    void eval() { train(false); }
    bool training() const { return training_; }

    void zero_grad();  // forget every parameter's gradient

protected:
    // Registers a leaf as a trainable parameter (sets requires_grad) and returns it.
    Tensor register_parameter(const std::string& name, Tensor value);
    // Registers saved-but-not-trained state. The module must keep its buffer's
    // storage (update values in place with mutable_data()), as the registry holds
    // the same handle.
    Tensor register_buffer(const std::string& name, Tensor value);
    // Takes ownership of a child module; returns a reference that stays valid.
    template <typename M>
    M& register_module(const std::string& name, std::unique_ptr<M> child) {
        M& ref = *child;
        children_.emplace_back(name, std::move(child));
        return ref;
    }
    // Called by train() on every module; override to react to a mode change.
    virtual void on_mode_change() {}

private:
    NamedTensors parameters_, buffers_;
    std::vector<std::pair<std::string, std::unique_ptr<Module>>> children_;
    bool training_ = true;
};

}  // namespace pf::nn
