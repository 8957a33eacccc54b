// test_build.cpp — canaries for the compiler: patterns that a wrong build flag turns
// into wrong numbers.
//
// Debian 12's GCC 12.2 at -O2 or -O3 with an AVX-512 target (-march=native on such a
// CPU, or -march=x86-64-v4) vectorises the initializer below into a broadcast of its
// first value: eight ones. The Makefile targets x86-64-v3 for that reason; if a flag
// change brings AVX-512 back, this test fails on the first machine that has it.
#include <catch2/catch.hpp>

#include <vector>

namespace {
// Out of line, so that the compiler cannot fold the checks into the initializer.
[[gnu::noinline]] std::vector<float> mask_of_four_ones() {
    const std::vector<float> mask = {1, 1, 1, 1, 0, 0, 0, 0};
    return mask;
}
}  // namespace

TEST_CASE("vector initializers keep every value (GCC 12.2 AVX-512 miscompilation)", "[build]") {
    std::vector<float> mask = mask_of_four_ones();
    REQUIRE(mask.size() == 8);
    for (size_t i = 0; i < mask.size(); ++i) {
        INFO("mask[" << i << "]");
        CHECK(mask[i] == (i < 4 ? 1.0f : 0.0f));
    }
}
