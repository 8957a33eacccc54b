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

#include <cstddef>
#include <cstdint>

namespace pf {

void* allocate_buffer(size_t bytes);             // 64-byte aligned; throws pf::Error if out of memory
void free_buffer(void* buffer, size_t bytes);    // bytes as given to allocate_buffer
void release_cached_buffers();                   // give every cached buffer back to the system
int64_t cached_buffer_bytes();

}  // namespace pf
