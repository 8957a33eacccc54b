// tensor.cpp — storage, tensor creation and access. The autograd engine (nodes,
// gradients, recording, backward) is in autograd.cpp.
#include "engine/tensor.h"

#include "engine/allocator.h"
#include "engine/random.h"
#include "engine/thread_pool.h"

#include <algorithm>
#include <atomic>

namespace pf {

int64_t numel(const Shape& shape) {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    return n;
}

// ---- storage ----------------------------------------------------------------

namespace {
std::atomic<int64_t> g_live_bytes{0};
std::atomic<int64_t> g_peak_bytes{0};
}  // namespace

Storage::Storage(int64_t n) : size(n) {
    PF_CHECK(n >= 0, "tensor: negative size {}", n);
    data = static_cast<float*>(allocate_buffer(size_t(n) * sizeof(float)));
    int64_t live = g_live_bytes += int64_t(n * sizeof(float));
    int64_t peak = g_peak_bytes.load();
    while (live > peak && !g_peak_bytes.compare_exchange_weak(peak, live)) {
    }
}

Storage::~Storage() {
    free_buffer(data, size_t(size) * sizeof(float));
    g_live_bytes -= int64_t(size * sizeof(float));
}

int64_t Storage::live_bytes() { return g_live_bytes; }
int64_t Storage::peak_bytes() { return g_peak_bytes; }
void Storage::reset_peak() { g_peak_bytes = g_live_bytes.load(); }

// ---- creation -------------------------------------------------------------------

Tensor::Tensor(Shape shape, std::shared_ptr<Storage> storage)
    : impl_(std::make_shared<TensorImpl>(TensorImpl{std::move(shape), std::move(storage), nullptr})) {}

Tensor Tensor::empty(const Shape& shape) {
    for (int64_t s : shape) PF_CHECK(s >= 0, "tensor: negative size in shape {}", shape_str(shape));
    return Tensor(shape, std::make_shared<Storage>(pf::numel(shape)));
}

Tensor Tensor::full(const Shape& shape, float value) {
    Tensor t = empty(shape);
    std::fill_n(t.mutable_data(), t.numel(), value);
    return t;
}

Tensor Tensor::zeros(const Shape& shape) { return full(shape, 0.0f); }
Tensor Tensor::ones(const Shape& shape) { return full(shape, 1.0f); }

Tensor Tensor::arange(int64_t n) {
    Tensor t = empty({n});
    float* p = t.mutable_data();
    for (int64_t i = 0; i < n; ++i) p[i] = float(i);
    return t;
}

Tensor Tensor::from_data(const Shape& shape, const std::vector<float>& values) {
    PF_CHECK(int64_t(values.size()) == pf::numel(shape),
             "from_data: {} values for shape {} ({} elements)", values.size(), shape_str(shape),
             pf::numel(shape));
    Tensor t = empty(shape);
    std::copy(values.begin(), values.end(), t.mutable_data());
    return t;
}

Tensor Tensor::randn(const Shape& shape, Generator& gen, float mean, float stddev) {
    Tensor t = empty(shape);
    float* p = t.mutable_data();
    uint64_t first = gen.advance(uint64_t(t.numel()));
    parallel_for(t.numel(), 1 << 14, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) p[i] = mean + stddev * gen.normal_at(first + i);
    });
    return t;
}

Tensor Tensor::rand(const Shape& shape, Generator& gen, float low, float high) {
    Tensor t = empty(shape);
    float* p = t.mutable_data();
    uint64_t first = gen.advance(uint64_t(t.numel()));
    parallel_for(t.numel(), 1 << 14, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i)
            p[i] = low + (high - low) * gen.uniform_at(first + i);
    });
    return t;
}

// ---- access ---------------------------------------------------------------------

namespace {
TensorImpl& checked(const std::shared_ptr<TensorImpl>& impl) {
    PF_CHECK(impl != nullptr, "tensor: use of an undefined tensor");
    return *impl;
}

int64_t flat_index(const Shape& shape, std::initializer_list<int64_t> index) {
    PF_CHECK(index.size() == shape.size(), "at: {} indices for a tensor of shape {}",
             index.size(), shape_str(shape));
    int64_t flat = 0, axis = 0;
    for (int64_t i : index) {
        PF_CHECK(i >= 0 && i < shape[axis], "at: index {} out of range for axis {} of shape {}",
                 i, axis, shape_str(shape));
        flat = flat * shape[axis] + i;
        ++axis;
    }
    return flat;
}
}  // namespace

const Shape& Tensor::shape() const { return checked(impl_).shape; }

int64_t Tensor::size(int64_t axis) const {
    int64_t d = dim();
    PF_CHECK(axis >= -d && axis < d, "size: axis {} out of range for shape {}", axis,
             shape_str(shape()));
    return shape()[axis < 0 ? axis + d : axis];
}

int64_t Tensor::numel() const { return pf::numel(shape()); }
const float* Tensor::data() const { return checked(impl_).storage->data; }
const std::shared_ptr<Storage>& Tensor::storage() const { return checked(impl_).storage; }

float* Tensor::mutable_data() {
    Storage& storage = *checked(impl_).storage;
    ++storage.version;
    return storage.data;
}

float Tensor::item() const {
    PF_CHECK(numel() == 1, "item: tensor of shape {} has {} elements, not 1", shape_str(shape()),
             numel());
    return data()[0];
}

float Tensor::at(std::initializer_list<int64_t> index) const {
    return data()[flat_index(shape(), index)];
}

void Tensor::set(std::initializer_list<int64_t> index, float value) {
    int64_t i = flat_index(shape(), index);
    mutable_data()[i] = value;
}

std::vector<float> Tensor::to_vector() const { return {data(), data() + numel()}; }

TensorImpl& Tensor::impl() const { return checked(impl_); }

}  // namespace pf
