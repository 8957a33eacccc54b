// random.h — one seeded, counter-based random number generator (Philox4x32-10).
//
// Philox turns (key = seed, counter) into four random 32-bit words by ten rounds of
// multiply-and-xor. Number i of a fill uses counter `offset + i`, so a fill is
// computed in parallel with the same result on any number of threads, and the
// whole state is two integers (seed, offset) that a checkpoint can store.
//
//   Generator gen(42);
//   Tensor w = Tensor::randn({4, 4}, gen);   // same numbers on every run
#pragma once

#include "engine/error.h"

#include <array>
#include <cstdint>

namespace pf {

// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", 2011).
std::array<uint32_t, 4> philox4x32(uint64_t counter, uint64_t key);

class Generator {
public:
    explicit Generator(uint64_t seed = 0) : seed_(seed) {}

    uint64_t seed() const { return seed_; }
    uint64_t offset() const { return offset_; }
    void set_state(uint64_t seed, uint64_t offset) { seed_ = seed, offset_ = offset; }

    // Reserve n counters; the caller draws number i from counter (returned + i).
    uint64_t advance(uint64_t n) {
        PF_CHECK(n % uint64_t(slice_.rows) == 0, "Generator: a fill of {} numbers is not {} rows",
                 n, slice_.rows);
        const uint64_t per_row = n / uint64_t(slice_.rows);
        const uint64_t first = offset_ + uint64_t(slice_.first) * per_row;
        offset_ += uint64_t(slice_.total) * per_row;
        return first;
    }

    // Drawing for a slice of a batch. With {first, rows, total} set, a fill of n numbers
    // is taken as rows [first, first + rows) of a fill of `total` rows: advance(n) returns
    // the counter that row `first` would have had, and moves past all `total` rows. So a
    // micro-batch, or one process of several, draws for its rows exactly what the whole
    // batch would have drawn there (dropout masks do not depend on how a batch is split),
    // and every part ends at the same offset. {0, 1, 1}, the default: no slice.
    struct RowSlice {
        int64_t first = 0, rows = 1, total = 1;
    };
    void set_row_slice(const RowSlice& slice) { slice_ = slice; }

    // Draws for counter c, usable from any thread.
    float uniform_at(uint64_t counter) const;  // in [0, 1)
    float normal_at(uint64_t counter) const;   // standard normal (Box-Muller)
    uint32_t bits_at(uint64_t counter) const;

    // Sequential conveniences: each uses (and consumes) one counter.
    float uniform() { return uniform_at(advance(1)); }
    float normal() { return normal_at(advance(1)); }
    // Uniform integer in [0, n), n > 0, else pf::Error (64-bit draw, so the bias is negligible).
    uint64_t below(uint64_t n);

private:
    uint64_t seed_;
    uint64_t offset_ = 0;
    RowSlice slice_;
};

}  // namespace pf
