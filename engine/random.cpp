// random.cpp — Philox4x32-10 and the draws built on it.
#include "engine/random.h"

#include "engine/error.h"

#include <cmath>

namespace pf {

std::array<uint32_t, 4> philox4x32(uint64_t counter, uint64_t key) {
    // Constants from the paper: two multipliers and the Weyl increments of the key.
    constexpr uint32_t M0 = 0xD2511F53, M1 = 0xCD9E8D57;
    constexpr uint32_t W0 = 0x9E3779B9, W1 = 0xBB67AE85;
    uint32_t c0 = uint32_t(counter), c1 = uint32_t(counter >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = uint32_t(key), k1 = uint32_t(key >> 32);
    for (int round = 0; round < 10; ++round) {
        uint64_t p0 = uint64_t(M0) * c0;
        uint64_t p1 = uint64_t(M1) * c2;
        uint32_t hi0 = uint32_t(p0 >> 32), lo0 = uint32_t(p0);
        uint32_t hi1 = uint32_t(p1 >> 32), lo1 = uint32_t(p1);
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += W0;
        k1 += W1;
    }
    return {c0, c1, c2, c3};
}

// 24 random bits → a float in [0, 1) with every value exactly representable.
static float to_unit(uint32_t bits) { return float(bits >> 8) * (1.0f / 16777216.0f); }

float Generator::uniform_at(uint64_t counter) const {
    return to_unit(philox4x32(counter, seed_)[0]);
}

uint32_t Generator::bits_at(uint64_t counter) const { return philox4x32(counter, seed_)[0]; }

float Generator::normal_at(uint64_t counter) const {
    // Box-Muller on two words of the same draw: u1 in (0, 1] so log(u1) is finite.
    auto words = philox4x32(counter, seed_);
    double u1 = (double(words[0] >> 8) + 1.0) / 16777216.0;
    double u2 = double(words[1] >> 8) / 16777216.0;
    return float(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2));
}

uint64_t Generator::below(uint64_t n) {
    PF_CHECK(n > 0, "Generator::below(0): no integer lies in [0, 0)");
    auto words = philox4x32(advance(1), seed_);
    uint64_t bits = (uint64_t(words[0]) << 32) | words[1];
    return bits % n;
}

}  // namespace pf
