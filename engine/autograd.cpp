// autograd.cpp — the autograd engine behind tensor.h: nodes, leaves and gradients,
// recording (record, SavedTensor, NoGradGuard, recompute) and backward().
//
// It computes with the engine's kernels, never with ops: ops record() into it, so
// it sits beneath them (gradients add up with kernels::map, the loop under add).
#include "engine/tensor.h"

#include "engine/kernels.h"

#include <algorithm>
#include <atomic>
#include <unordered_set>

namespace pf {

namespace {
std::atomic<int64_t> g_live_nodes{0};
}  // namespace

// ---- nodes --------------------------------------------------------------------

Node::Node(Shape s) : shape(std::move(s)) { ++g_live_nodes; }

// Destroying the last handle to the end of a 100k-op chain would otherwise destroy
// its GradFn, whose input's destructor destroys its GradFn, and so on: 100k nested
// calls. Instead we take the inputs out and release them from an explicit stack;
// an input whose last owner we are is emptied the same way before it dies.
Node::~Node() {
    --g_live_nodes;
    if (!grad_fn) return;
    std::vector<std::shared_ptr<Node>> pending = std::move(grad_fn->inputs);
    grad_fn.reset();
    while (!pending.empty()) {
        std::shared_ptr<Node> node = std::move(pending.back());
        pending.pop_back();
        if (node && node.use_count() == 1 && node->grad_fn) {
            for (auto& input : node->grad_fn->inputs) pending.push_back(std::move(input));
            node->grad_fn.reset();
        }
    }
}

int64_t Tensor::live_nodes() { return g_live_nodes; }

// ---- autograd: leaves, gradients --------------------------------------------------

const std::shared_ptr<Node>& Tensor::node() const { return impl().node; }
bool Tensor::requires_grad() const { return impl_ && impl_->node && impl_->node->requires_grad; }
bool Tensor::is_leaf() const { return !node() || node()->grad_fn == nullptr; }
Tensor Tensor::grad() const { return node() ? node()->grad : Tensor(); }
void Tensor::zero_grad() {
    if (node()) node()->grad = Tensor();
}
std::string Tensor::op_name() const { return is_leaf() ? "" : node()->grad_fn->op_name; }

Tensor& Tensor::requires_grad_(bool value) {
    PF_CHECK(is_leaf(), "requires_grad_: only leaves can change requires_grad (this tensor came "
                        "from {})", op_name());
    if (!node()) impl().node = std::make_shared<Node>(shape());
    node()->requires_grad = value;
    return *this;
}

void Tensor::set_grad(const Tensor& grad) {
    PF_CHECK(!grad.defined() || grad.shape() == shape(), "set_grad: gradient of shape {} for a "
             "tensor of shape {}", shape_str(grad.shape()), shape_str(shape()));
    if (!node()) impl().node = std::make_shared<Node>(shape());
    node()->grad = grad;
}

Tensor Tensor::detach() const { return Tensor(shape(), storage()); }

// ---- recording ------------------------------------------------------------------

namespace {
thread_local bool g_grad_enabled = true;
}

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

SavedTensor::SavedTensor(const Tensor& tensor) {
    if (!tensor.defined()) return;
    shape_ = tensor.shape();
    storage_ = tensor.storage();
    version_ = storage_->version;
}

Tensor SavedTensor::get() const {
    PF_CHECK(storage_ != nullptr, "backward: a saved tensor was never set");
    PF_CHECK(storage_->version == version_,
             "backward: a tensor of shape {} saved for backward was modified in place "
             "afterwards (version {} now, {} when saved); compute the gradient first or "
             "write to a copy",
             shape_str(shape_), storage_->version, version_);
    return Tensor(shape_, storage_);
}

Tensor record(const char* op_name, Tensor output, const std::vector<Tensor>& inputs,
              BackwardFn backward) {
    if (!g_grad_enabled) return output;
    bool any = std::any_of(inputs.begin(), inputs.end(),
                           [](const Tensor& t) { return t.requires_grad(); });
    if (!any) return output;
    TensorImpl& impl = output.impl();
    PF_CHECK(impl.node == nullptr, "{}: output already has a history", op_name);
    impl.node = std::make_shared<Node>(impl.shape);
    Node& node = *impl.node;
    auto fn = std::make_unique<GradFn>();
    fn->op_name = op_name;
    fn->backward = std::move(backward);
    for (const Tensor& t : inputs)
        fn->inputs.push_back(t.requires_grad() ? t.node() : nullptr);
    node.grad_fn = std::move(fn);
    node.requires_grad = true;
    return output;
}

Tensor record(const char* op_name, Tensor output, std::initializer_list<Tensor> inputs,
              BackwardFn backward) {
    return record(op_name, std::move(output), std::vector<Tensor>(inputs), std::move(backward));
}

namespace {
struct RecordingOn {  // NoGradGuard's opposite, for recompute's backward
    bool previous = g_grad_enabled;
    RecordingOn() { g_grad_enabled = true; }
    ~RecordingOn() { g_grad_enabled = previous; }
};
}  // namespace

Tensor recompute(const TensorFunction& f, const std::vector<Tensor>& inputs) {
    Tensor output;
    {
        NoGradGuard keep_nothing;
        output = f(inputs).detach();  // detached: f may return an input (or a view of one)
    }
    std::vector<SavedTensor> saved(inputs.begin(), inputs.end());
    std::vector<bool> needs_grad;
    for (const Tensor& x : inputs) needs_grad.push_back(x.requires_grad());
    return record("recompute", output, inputs, [f, saved, needs_grad](const Tensor& g) {
        std::vector<Tensor> leaves;
        for (size_t i = 0; i < saved.size(); ++i) {
            Tensor x = saved[i].defined() ? saved[i].get() : Tensor();
            if (needs_grad[i]) x.requires_grad_();
            leaves.push_back(x);
        }
        Tensor y;
        {
            RecordingOn inside_backward;  // backward turned recording off
            y = f(leaves);
        }
        if (y.requires_grad()) y.backward(g);
        Grads grads;
        for (size_t i = 0; i < leaves.size(); ++i)
            grads.push_back(needs_grad[i] ? leaves[i].grad() : Tensor());
        return grads;
    });
}

// ---- backward -------------------------------------------------------------------

namespace {

// Every node reachable from `root` through inputs that need gradients, each once,
// every node after all of its inputs. Iterative depth-first search: a stack entry
// is a node and the index of the next input to look at.
std::vector<std::shared_ptr<Node>> topological_order(const std::shared_ptr<Node>& root) {
    std::vector<std::shared_ptr<Node>> order;
    std::unordered_set<Node*> visited{root.get()};
    std::vector<std::pair<std::shared_ptr<Node>, size_t>> stack{{root, 0}};
    while (!stack.empty()) {
        Node* node = stack.back().first.get();
        size_t next = stack.back().second;
        if (node->grad_fn && next < node->grad_fn->inputs.size()) {
            ++stack.back().second;
            const std::shared_ptr<Node>& input = node->grad_fn->inputs[next];
            if (input && visited.insert(input.get()).second) stack.emplace_back(input, 0);
        } else {
            order.push_back(std::move(stack.back().first));
            stack.pop_back();
        }
    }
    return order;
}

// Two gradients of one shape added into a new tensor, as add() would, neither one
// written (a gradient may be held twice: add's backward hands g to both inputs).
Tensor sum_of(const Tensor& a, const Tensor& b) {
    return kernels::map(a, b, [](float p, float q) { return p + q; });
}

Tensor copy_of(const Tensor& t) {
    Tensor c = Tensor::empty(t.shape());
    std::copy_n(t.data(), t.numel(), c.mutable_data());
    return c;
}

}  // namespace

void Tensor::backward() const {
    PF_CHECK(defined() && numel() == 1,
             "backward: needs a one-element tensor (a loss), got shape {}; pass a gradient "
             "to backward(grad) for other shapes", defined() ? shape_str(shape()) : "undefined");
    backward(Tensor::ones(shape()));
}

void Tensor::backward(const Tensor& grad_output) const {
    PF_CHECK(requires_grad(), "backward: this tensor does not require grad (no input of its "
                              "ops required grad, or it was computed under NoGradGuard)");
    PF_CHECK(grad_output.shape() == shape(), "backward: gradient of shape {} for a tensor of "
             "shape {}", shape_str(grad_output.shape()), shape_str(shape()));
    NoGradGuard no_recording;  // backward computes with ops, but records nothing

    const std::shared_ptr<Node>& root = node();
    std::vector<std::shared_ptr<Node>> order = topological_order(root);
    if (root->grad.defined())
        root->grad = sum_of(root->grad, grad_output);
    else
        root->grad = root->grad_fn ? grad_output : copy_of(grad_output);  // a leaf owns its gradient

    // From the output back to the leaves: each node's gradient is complete when it is
    // reached, because every node that uses it comes later in `order`.
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
        std::shared_ptr<Node> node = std::move(*it);  // released at the end of this step
        PF_CHECK(!node->history_released, "backward: through a graph a second time; its "
                 "saved tensors were freed by the first backward (recompute the forward)");
        if (!node->grad_fn) continue;                  // a leaf keeps its gradient
        Tensor grad = std::move(node->grad);           // an inner node's gradient is not kept
        node->grad = Tensor();
        std::unique_ptr<GradFn> fn = std::move(node->grad_fn);  // freed (with what it saved) below
        node->history_released = true;
        if (!grad.defined()) continue;  // nothing flowed here
        Grads input_grads = fn->backward(grad);
        PF_CHECK(input_grads.size() == fn->inputs.size(),
                 "{} backward: returned {} gradients for {} inputs", fn->op_name,
                 input_grads.size(), fn->inputs.size());
        for (size_t i = 0; i < fn->inputs.size(); ++i) {
            Node* input = fn->inputs[i].get();
            const Tensor& g = input_grads[i];
            if (!input || !g.defined()) continue;
            PF_CHECK(g.shape() == input->shape, "{} backward: gradient of shape {} for input {} "
                     "of shape {}", fn->op_name, shape_str(g.shape()), i, shape_str(input->shape));
            if (input->grad.defined())
                input->grad = sum_of(input->grad, g);  // used twice: gradients add up
            else
                input->grad = input->grad_fn ? g : copy_of(g);  // a leaf owns its gradient
        }
    }
}

}  // namespace pf
