// random.h — one seeded, counter-based random number generator (Philox4x32-10).
//
// Philox turns (key = seed, counter) into four random 32-bit words by ten rounds of
// multiply-and-xor. Number i of a fill uses counter `offset + i`, so a fill is
// computed in parallel with the same result on any number of threads, and the
// whole state is two integers (seed, offset) that a checkpoint can store. advance(n)
// reserves the next n counters; an op that must draw at chosen counters takes the first
// one explicitly (dropout, engine/ops.h).
//
//   Generator gen(42);
//   Tensor w = Tensor::randn({4, 4}, gen);   // same numbers on every run
#pragma once

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
        const uint64_t first = offset_;
        offset_ += n;
        return first;
    }

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
};

}  // namespace pf
