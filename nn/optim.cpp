// optim.cpp — AdamW, the warm-up + cosine schedule and gradient clipping
// (see optim.h for the formulas).
#include "nn/optim.h"

#include "engine/ops.h"
#include "engine/thread_pool.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numbers>
#include <set>

namespace pf::nn {

// ---- AdamW ----------------------------------------------------------------------------

namespace {
// Elements per piece of the optimizer's and the clipping's loops: a (1024, 256) weight
// offers 64 pieces. The clipping's partial sums use these blocks too, so its norm does
// not depend on the thread count.
constexpr int64_t kUpdateGrain = 1 << 12;
}  // namespace

AdamW::AdamW(NamedTensors parameters, float lr, float beta1, float beta2, float eps,
             float weight_decay)
    : lr_(lr), beta1_(beta1), beta2_(beta2), eps_(eps), weight_decay_(weight_decay) {
    PF_CHECK(lr >= 0, "AdamW: learning rate must be >= 0, got {}", lr);
    PF_CHECK(beta1 >= 0 && beta1 < 1, "AdamW: beta1 {} not in [0, 1)", beta1);
    PF_CHECK(beta2 >= 0 && beta2 < 1, "AdamW: beta2 {} not in [0, 1)", beta2);
    PF_CHECK(eps > 0, "AdamW: eps must be > 0, got {}", eps);
    PF_CHECK(weight_decay >= 0, "AdamW: weight_decay must be >= 0, got {}", weight_decay);
    std::set<std::string> seen;
    std::set<const Node*> seen_tensors;
    for (auto& [name, parameter] : parameters) {
        PF_CHECK(parameter.defined(), "AdamW: parameter '{}' is undefined", name);
        PF_CHECK(parameter.is_leaf(), "AdamW: parameter '{}' is not a leaf tensor", name);
        PF_CHECK(seen.insert(name).second, "AdamW: two parameters are named '{}'", name);
        if (!seen_tensors.insert(parameter.node().get()).second) continue;  // tied: update once
        slots_.push_back({name, parameter, Tensor::zeros(parameter.shape()),
                          Tensor::zeros(parameter.shape()), parameter.dim() >= 2});
    }
}

void AdamW::set_lr(float lr) {
    PF_CHECK(lr >= 0, "AdamW: learning rate must be >= 0, got {}", lr);
    lr_ = lr;
}

void AdamW::zero_grad() {
    for (Slot& slot : slots_) slot.parameter.zero_grad();
}

// One step, element by element (see optim.h), each parameter's elements in parallel
// pieces. The bias corrections are folded into two scalars:
//   lr * m^ / (sqrt(v^) + eps) = step_size * m / (sqrt(v) / sqrt(c2) + eps)
// with step_size = lr / c1, c1 = 1 - beta1^t, c2 = 1 - beta2^t.
void AdamW::step() {
    NoGradGuard no_grad;  // the update is not part of any graph
    ++step_count_;
    double t = double(step_count_);
    double c1 = 1.0 - std::pow(double(beta1_), t), c2 = 1.0 - std::pow(double(beta2_), t);
    float step_size = float(lr_ / c1);
    float inv_sqrt_c2 = float(1.0 / std::sqrt(c2));
    float decay_factor = 1.0f - lr_ * weight_decay_;
    for (Slot& slot : slots_) {
        Tensor grad = slot.parameter.grad();
        if (!grad.defined()) continue;
        float* p = slot.parameter.mutable_data();
        float* m = slot.m.mutable_data();
        float* v = slot.v.mutable_data();
        const float* g = grad.data();
        float decay = slot.decay ? decay_factor : 1.0f;
        parallel_for(slot.parameter.numel(), kUpdateGrain, [&](int64_t begin, int64_t end) {
            for (int64_t i = begin; i < end; ++i) {
                m[i] = beta1_ * m[i] + (1 - beta1_) * g[i];
                v[i] = beta2_ * v[i] + (1 - beta2_) * g[i] * g[i];
                p[i] = p[i] * decay - step_size * m[i] / (std::sqrt(v[i]) * inv_sqrt_c2 + eps_);
            }
        });
    }
}

NamedTensors AdamW::state() const {
    PF_CHECK(step_count_ <= (int64_t(1) << 24), "AdamW state: step count {} is more than a "
             "float holds exactly (2^24)", step_count_);
    NoGradGuard no_grad;
    NamedTensors out;
    for (const Slot& slot : slots_) {
        out.emplace_back("m." + slot.name, clone(slot.m));
        out.emplace_back("v." + slot.name, clone(slot.v));
    }
    out.emplace_back("step", Tensor::scalar(float(step_count_)));
    return out;
}

void AdamW::load_state(const NamedTensors& state) {
    std::map<std::string, Tensor> entries;
    for (const auto& [name, tensor] : state) {
        PF_CHECK(tensor.defined(), "AdamW state: entry '{}' is undefined", name);
        PF_CHECK(entries.emplace(name, tensor).second, "AdamW state: entry '{}' appears twice",
                 name);
    }
    // Check everything first, so that a bad state leaves the optimizer untouched.
    std::set<std::string> expected{"step"};
    auto check = [&](const std::string& name, const Shape& shape) {
        expected.insert(name);
        auto it = entries.find(name);
        PF_CHECK(it != entries.end(), "AdamW state: missing entry '{}'", name);
        PF_CHECK(it->second.shape() == shape, "AdamW state: entry '{}' has shape {}, expected {}",
                 name, shape_str(it->second.shape()), shape_str(shape));
    };
    check("step", {});
    float step = entries.at("step").item();
    PF_CHECK(step >= 0 && step == std::floor(step) && step <= float(1 << 24),
             "AdamW state: entry 'step' is {}, not a step count", step);
    for (const Slot& slot : slots_) {
        check("m." + slot.name, slot.parameter.shape());
        check("v." + slot.name, slot.parameter.shape());
    }
    for (const auto& [name, tensor] : entries)
        PF_CHECK(expected.count(name), "AdamW state: unexpected entry '{}' (no such parameter)",
                 name);

    for (Slot& slot : slots_) {
        const Tensor& m = entries.at("m." + slot.name);
        const Tensor& v = entries.at("v." + slot.name);
        std::copy_n(m.data(), m.numel(), slot.m.mutable_data());
        std::copy_n(v.data(), v.numel(), slot.v.mutable_data());
    }
    step_count_ = int64_t(step);
}

// ---- learning-rate schedule -----------------------------------------------------------

float lr_at(int64_t step, int64_t total_steps, float max_lr, int64_t warmup_steps,
            float min_lr_ratio) {
    PF_CHECK(step >= 0, "lr_at: step {} is negative", step);
    PF_CHECK(total_steps > 0, "lr_at: total_steps must be positive, got {}", total_steps);
    PF_CHECK(warmup_steps >= 0, "lr_at: warmup_steps {} is negative", warmup_steps);
    PF_CHECK(max_lr >= 0, "lr_at: max_lr {} is negative", max_lr);
    PF_CHECK(min_lr_ratio >= 0 && min_lr_ratio <= 1, "lr_at: min_lr_ratio {} not in [0, 1]",
             min_lr_ratio);
    double max = max_lr, min = double(min_lr_ratio) * max_lr;
    if (step < warmup_steps) return float(max * double(step) / double(warmup_steps));
    if (step >= total_steps) return float(min);
    double s = double(step - warmup_steps) / double(total_steps - warmup_steps);
    return float(min + (max - min) * 0.5 * (1.0 + std::cos(std::numbers::pi * s)));
}

// ---- gradient clipping ----------------------------------------------------------------

float clip_grad_norm(const std::vector<Tensor>& parameters, float max_norm) {
    PF_CHECK(max_norm > 0, "clip_grad_norm: max_norm must be positive, got {}", max_norm);
    // Each gradient once, even if a tied parameter is listed twice.
    std::vector<Tensor> grads;
    std::set<const Node*> seen;
    for (const Tensor& p : parameters)
        if (p.grad().defined() && seen.insert(p.node().get()).second) grads.push_back(p.grad());
    // The sum of squares over fixed blocks of kUpdateGrain elements, added in order.
    double sum_of_squares = 0;
    for (const Tensor& g : grads) {
        const float* d = g.data();
        const int64_t n = g.numel(), blocks = (n + kUpdateGrain - 1) / kUpdateGrain;
        std::vector<double> partial(blocks);
        parallel_pieces(blocks, [&](int64_t b) {
            double s = 0;
            for (int64_t i = b * kUpdateGrain; i < std::min(n, (b + 1) * kUpdateGrain); ++i)
                s += double(d[i]) * d[i];
            partial[b] = s;
        });
        for (double s : partial) sum_of_squares += s;
    }
    double norm = std::sqrt(sum_of_squares);
    if (std::isfinite(norm) && norm > max_norm) {
        float scale = float(max_norm / norm);
        for (Tensor& g : grads) {
            float* d = g.mutable_data();  // a leaf owns its gradient's storage
            parallel_for(g.numel(), kUpdateGrain, [&](int64_t begin, int64_t end) {
                for (int64_t i = begin; i < end; ++i) d[i] *= scale;
            });
        }
    }
    return float(norm);
}

}  // namespace pf::nn
