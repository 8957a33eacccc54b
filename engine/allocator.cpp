// allocator.cpp — the buffer cache: exact-size free lists under one mutex.
#include "engine/allocator.h"

#include "engine/error.h"

#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace pf {
namespace {

constexpr size_t kSmallest = 64 << 10;  // smaller buffers are not cached

struct BufferCache {
    std::mutex mutex;
    std::unordered_map<size_t, std::vector<void*>> free_buffers;  // by size in bytes
    size_t cached = 0;
    size_t limit = [] {
        long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
        return pages > 0 && page > 0 ? size_t(pages) * size_t(page) / 4 : size_t(1) << 30;
    }();

    void release_all() {  // caller holds the mutex
        for (auto& [bytes, buffers] : free_buffers)
            for (void* b : buffers) std::free(b);
        free_buffers.clear();
        cached = 0;
    }
};

BufferCache& cache() {
    static BufferCache* instance = new BufferCache;  // never destroyed: tensors may outlive main()
    return *instance;
}

size_t rounded(size_t bytes) { return std::max<size_t>(64, (bytes + 63) / 64 * 64); }

}  // namespace

void* allocate_buffer(size_t bytes) {
    bytes = rounded(bytes);
    BufferCache& c = cache();
    if (bytes >= kSmallest) {
        std::lock_guard<std::mutex> lock(c.mutex);
        auto it = c.free_buffers.find(bytes);
        if (it != c.free_buffers.end() && !it->second.empty()) {
            void* buffer = it->second.back();
            it->second.pop_back();
            c.cached -= bytes;
            return buffer;
        }
    }
    void* buffer = std::aligned_alloc(64, bytes);
    if (!buffer && bytes >= kSmallest) {  // the cache may be holding the memory we need
        {
            std::lock_guard<std::mutex> lock(c.mutex);
            c.release_all();
        }
        buffer = std::aligned_alloc(64, bytes);
    }
    PF_CHECK(buffer != nullptr, "tensor: out of memory allocating {} MiB", bytes >> 20);
    return buffer;
}

void free_buffer(void* buffer, size_t bytes) {
    bytes = rounded(bytes);
    BufferCache& c = cache();
    if (bytes >= kSmallest) {
        std::lock_guard<std::mutex> lock(c.mutex);
        if (c.cached + bytes <= c.limit) {
            c.free_buffers[bytes].push_back(buffer);
            c.cached += bytes;
            return;
        }
    }
    std::free(buffer);
}

void release_cached_buffers() {
    std::lock_guard<std::mutex> lock(cache().mutex);
    cache().release_all();
}

int64_t cached_buffer_bytes() {
    std::lock_guard<std::mutex> lock(cache().mutex);
    return int64_t(cache().cached);
}

}  // namespace pf
