// allocator.h — where tensor memory comes from: a cache of freed buffers, by size.
//
// On this kind of machine the kernel hands out fresh memory a page at a time, with
// a page fault per 4 KiB: about 1 ms per MiB, several times the cost of writing the
// memory. A training step frees and allocates the same large buffers every step, so
// freed buffers of 64 KiB and more are kept, keyed by their exact size, and the next
// request of that size takes one (PyTorch's caching allocator works the same way).
// Small buffers go straight to malloc, which already reuses them well.
//
// The cache holds at most a quarter of the machine's memory; beyond that, buffers
// are returned to the system. Programs that move between very different sizes
// (benchmarks sweeping the sequence length) call release_cached_buffers() between.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>

namespace pf {

void* allocate_buffer(size_t bytes);             // 64-byte aligned; throws pf::Error if out of memory
void free_buffer(void* buffer, size_t bytes);    // bytes as given to allocate_buffer
void release_cached_buffers();                   // give every cached buffer back to the system
int64_t cached_buffer_bytes();

// Scratch space for a kernel: `count` uninitialised T from the same cache, given back
// when it goes out of scope. Kernels that need megabytes of partial sums each call
// (blas.cpp's K slices, causal attention's chunk states) would otherwise pay the page
// faults of fresh memory every step.
template <typename T>
class ScratchBuffer {
public:
    explicit ScratchBuffer(size_t count)
        : bytes_(std::max<size_t>(count, 1) * sizeof(T)), data_(static_cast<T*>(allocate_buffer(bytes_))) {}
    ScratchBuffer(ScratchBuffer&& other) noexcept
        : bytes_(other.bytes_), data_(std::exchange(other.data_, nullptr)) {}
    ScratchBuffer(const ScratchBuffer&) = delete;
    ScratchBuffer& operator=(const ScratchBuffer&) = delete;
    ScratchBuffer& operator=(ScratchBuffer&&) = delete;
    ~ScratchBuffer() {
        if (data_) free_buffer(data_, bytes_);
    }
    T* get() const { return data_; }
    T& operator[](size_t i) const { return data_[i]; }

private:
    size_t bytes_;
    T* data_;
};

}  // namespace pf
