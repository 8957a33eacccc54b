// tensor.h — the Tensor handle, its storage, and reverse-mode autodiff.
//
// A Tensor is a cheap handle (a shared pointer) to a TensorImpl: a shape, a Storage
// (contiguous row-major float32 data) and, once gradients are involved, a Node — the
// tensor's autograd record: its gradient once backward has reached it and, if an op
// produced it while recording, a GradFn (the op's name, its inputs' Nodes and a
// closure computing their gradients). The graph links Nodes, never data: a result
// nobody holds or saved is freed at once, while its Node stays in the graph.
//
//   Tensor w = Tensor::randn({3, 2}, gen).requires_grad_();   // a leaf
//   Tensor y = sum(exp(matmul(x, w)));                         // ops record GradFns
//   y.backward();                                              // fills w.grad()
//
// backward() sorts the recorded graph iteratively (no recursion), visits every node
// once, accumulates gradients of nodes used several times, and releases each op's
// saved tensors as soon as its backward has run. The ops live in ops.h.
//
// Defined in two files: tensor.cpp (storage, creation, access) and autograd.cpp (nodes,
// gradients, recording, recompute, backward).
#pragma once

#include "engine/error.h"

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace pf {

class Generator;
struct Node;
struct TensorImpl;

int64_t numel(const Shape& shape);

// A float buffer, 64-byte aligned. `version` counts in-place writes, so that a
// tensor saved for backward can tell it was modified afterwards.
class Storage {
public:
    explicit Storage(int64_t size);  // uninitialised
    ~Storage();
    Storage(const Storage&) = delete;
    Storage& operator=(const Storage&) = delete;

    float* data;
    int64_t size;
    uint64_t version = 0;

    // Bytes held by all live storages, and the most held at once since reset_peak().
    static int64_t live_bytes();
    static int64_t peak_bytes();
    static void reset_peak();
};

class Tensor {
public:
    Tensor() = default;  // an undefined tensor; defined() is false
    // A new tensor (no history) viewing `storage` with `shape`.
    Tensor(Shape shape, std::shared_ptr<Storage> storage);

    // ---- creation ----------------------------------------------------------
    static Tensor empty(const Shape& shape);  // uninitialised, for ops to fill
    static Tensor zeros(const Shape& shape);
    static Tensor ones(const Shape& shape);
    static Tensor full(const Shape& shape, float value);
    static Tensor arange(int64_t n);  // 0, 1, ..., n-1
    static Tensor from_data(const Shape& shape, const std::vector<float>& values);
    static Tensor randn(const Shape& shape, Generator& gen, float mean = 0, float stddev = 1);
    static Tensor rand(const Shape& shape, Generator& gen, float low = 0, float high = 1);
    static Tensor scalar(float value) { return full({}, value); }

    // ---- shape and data ----------------------------------------------------
    bool defined() const { return impl_ != nullptr; }
    const Shape& shape() const;
    int64_t dim() const { return int64_t(shape().size()); }
    int64_t size(int64_t axis) const;  // negative axes count from the end
    int64_t numel() const;
    const float* data() const;
    // Write access. Bumps the storage version: a tensor saved for backward that is
    // written afterwards makes that backward throw instead of computing garbage.
    float* mutable_data();
    float item() const;  // the single element of a one-element tensor
    float at(std::initializer_list<int64_t> index) const;
    void set(std::initializer_list<int64_t> index, float value);  // in place
    std::vector<float> to_vector() const;
    const std::shared_ptr<Storage>& storage() const;

    // ---- autograd ----------------------------------------------------------
    bool requires_grad() const;
    Tensor& requires_grad_(bool value = true);  // leaves only
    bool is_leaf() const;                        // not produced by a recorded op
    Tensor grad() const;                         // undefined until backward reached it
    void zero_grad();                            // forget the gradient (set it undefined)
    void set_grad(const Tensor& grad);           // used by optimizers' tests and clipping
    void backward() const;                       // this must hold one element; seeds 1
    void backward(const Tensor& grad_output) const;
    Tensor detach() const;                       // same storage, no history
    std::string op_name() const;                 // the recording op's name, "" for leaves

    const std::shared_ptr<Node>& node() const;  // null if no gradient is involved
    TensorImpl& impl() const;                    // for the autograd engine (record, backward)

    // Number of live autograd nodes, for tests that check the graph is released.
    static int64_t live_nodes();

private:
    std::shared_ptr<TensorImpl> impl_;
};

using Grads = std::vector<Tensor>;                          // one per op input
using BackwardFn = std::function<Grads(const Tensor& grad_output)>;

// The recorded op that produced a node: its inputs and its backward.
struct GradFn {
    const char* op_name;
    std::vector<std::shared_ptr<Node>> inputs;
    BackwardFn backward;
};

// The autograd record of a tensor. Lives as long as a tensor or the graph refers to it.
struct Node {
    explicit Node(Shape shape);
    ~Node();  // releases long chains iteratively, never recursively
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;

    Shape shape;  // of the tensor, and so of its gradient
    Tensor grad;
    bool requires_grad = false;
    std::unique_ptr<GradFn> grad_fn;
    bool history_released = false;  // backward ran through it and freed its GradFn
};

struct TensorImpl {
    Shape shape;
    std::shared_ptr<Storage> storage;
    std::shared_ptr<Node> node;
};

// A tensor saved by an op's forward for its backward. It keeps the storage, not the
// node (so an op may save its own output without a reference cycle), and it checks
// on use that nobody wrote to the storage in between.
class SavedTensor {
public:
    SavedTensor() = default;
    SavedTensor(const Tensor& tensor);  // NOLINT: implicit on purpose, `SavedTensor s = x;`
    Tensor get() const;                 // a fresh no-history tensor over the saved data
    bool defined() const { return storage_ != nullptr; }

private:
    Shape shape_;
    std::shared_ptr<Storage> storage_;
    uint64_t version_ = 0;
};

// Attach an op's backward to its output, if recording is on and any input needs a
// gradient; otherwise return the output untouched. Every op ends with this.
Tensor record(const char* op_name, Tensor output, std::initializer_list<Tensor> inputs,
              BackwardFn backward);
Tensor record(const char* op_name, Tensor output, const std::vector<Tensor>& inputs,
              BackwardFn backward);

// recompute(f, inputs): y = f(inputs), keeping none of f's intermediates for backward,
// only the inputs. Backward runs f again with recording on, over fresh leaves holding
// the inputs' values, and backpropagates the gradient through that new graph: the
// memory of f's intermediates traded for a second forward (gradient checkpointing,
// Chen et al. 2016). f must compute the same numbers each time (no random draws), and
// every tensor it uses that needs a gradient must come in through `inputs` (undefined
// entries are allowed and passed through).
using TensorFunction = std::function<Tensor(const std::vector<Tensor>& inputs)>;
Tensor recompute(const TensorFunction& f, const std::vector<Tensor>& inputs);

// Recording switch (per thread). `NoGradGuard g;` turns recording off in its scope,
// e.g. for evaluation, sampling and optimizer updates.
bool grad_enabled();
class NoGradGuard {
public:
    NoGradGuard();
    ~NoGradGuard();
    NoGradGuard(const NoGradGuard&) = delete;
    NoGradGuard& operator=(const NoGradGuard&) = delete;

private:
    bool previous_;
};

}  // namespace pf
