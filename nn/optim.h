// optim.h — training machinery: the AdamW optimizer, the learning-rate schedule
// (linear warm-up, then cosine decay) and global gradient-norm clipping.
//
// One training step, as the trainer does it:
//
//   AdamW optimizer(model.named_parameters(), max_lr);
//   for (int64_t step = 0; step < total_steps; ++step) {
//       optimizer.set_lr(lr_at(step, total_steps, max_lr, warmup_steps));
//       optimizer.zero_grad();
//       Tensor loss = model.loss(batch);
//       loss.backward();
//       float norm = clip_grad_norm(model.parameters(), 1.0f);
//       optimizer.step();
//   }
#pragma once

#include "nn/module.h"

#include <cstdint>
#include <string>
#include <vector>

namespace pf::nn {

// AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", 2019), as
// PyTorch's torch.optim.AdamW. For each parameter p with gradient g, at step t = 1, 2, ...
//
//   p <- p - lr * weight_decay * p          (decoupled decay; only for 2+ axes, see below)
//   m <- beta1 m + (1 - beta1) g            (first moment)
//   v <- beta2 v + (1 - beta2) g^2          (second moment)
//   m^ = m / (1 - beta1^t),  v^ = v / (1 - beta2^t)   (bias correction: m, v start at 0)
//   p <- p - lr * m^ / (sqrt(v^) + eps)
//
// Weight decay applies only to parameters with two or more axes: the matrices of
// Linear layers and embedding tables, which it keeps small. Biases and LayerNorm
// weights (one axis) are not decayed: they are few, do not grow the model's
// capacity, and pulling a LayerNorm gain towards 0 would fight the normalisation.
// (The usual rule in GPT-2 style training, e.g. nanoGPT's.)
//
// beta2 defaults to 0.95, not PyTorch's 0.999: with 0.999 the second moment averages
// over ~1000 steps and reacts slowly to a burst of large gradients, which in
// Transformer training shows up as loss spikes; 0.95 (GPT-3, nanoGPT) averages over
// ~20 steps, which suits the short runs and small batches of this project.
//
// One step count t is shared by all parameters. Parameters whose gradient is
// undefined (not reached by backward) are skipped entirely: no decay, no moment update.
// A tensor listed twice under two names (tied weights) is updated once, under its
// first name.
class AdamW {
public:
    AdamW(NamedTensors parameters, float lr, float beta1 = 0.9f, float beta2 = 0.95f,
          float eps = 1e-8f, float weight_decay = 0.1f);

    void step();       // one update of every parameter that has a gradient
    void zero_grad();  // forget every parameter's gradient

    void set_lr(float lr);
    float lr() const { return lr_; }
    int64_t step_count() const { return step_count_; }  // steps taken so far (t)

    // Everything step() depends on besides the parameters and hyper-parameters:
    //   "m.<parameter name>", "v.<parameter name>" (each shaped like its parameter)
    //   and "step" (shape (), the step count; a float is exact up to 2^24 steps,
    //   far more than a run here takes, and state() throws beyond that).
    // The caller prefixes the names for a checkpoint, e.g. "optim.".
    NamedTensors state() const;
    // Copies a state() back in. Throws pf::Error naming the entry if one is missing,
    // has the wrong shape, or belongs to no parameter; nothing changes on error.
    void load_state(const NamedTensors& state);

private:
    struct Slot {
        std::string name;
        Tensor parameter;
        Tensor m, v;  // moments, shaped like the parameter
        bool decay;   // 2+ axes
    };
    std::vector<Slot> slots_;
    float lr_, beta1_, beta2_, eps_, weight_decay_;
    int64_t step_count_ = 0;
};

// Learning rate at `step` (counting from 0): a linear warm-up from 0 at step 0 to
// max_lr at warmup_steps, then a cosine decay from max_lr to min_lr_ratio * max_lr
// at total_steps, and min_lr_ratio * max_lr from there on:
//
//   step < warmup:           max_lr * step / warmup
//   warmup <= step < total:  min + (max_lr - min) (1 + cos(pi s)) / 2,
//                            s = (step - warmup) / (total - warmup) in [0, 1)
//   step >= total:           min = min_lr_ratio * max_lr
float lr_at(int64_t step, int64_t total_steps, float max_lr, int64_t warmup_steps,
            float min_lr_ratio = 0.1f);

// Global gradient clipping. norm = sqrt(sum of g^2 over every element of every
// parameter's gradient), summed in double; if norm > max_norm every gradient is
// scaled in place by max_norm / norm, so that the whole gradient vector has length
// max_norm and keeps its direction. Parameters without a gradient are skipped, and a
// tensor listed twice (tied weights) counts once.
// Returns the norm before clipping. A non-finite norm (an inf or NaN gradient) is
// returned as it is and the gradients are left alone: the caller should skip the step.
float clip_grad_norm(const std::vector<Tensor>& parameters, float max_norm);

}  // namespace pf::nn
