// cpu_features.h — what this CPU can run, read with the cpuid instruction: the vector
// instruction sets that matter for matrix products, each counted only when the
// operating system also saves its registers (xgetbv). engine/blas uses it to tell
// whether OpenBLAS's kernels are as wide as the CPU; the programs print it.
#pragma once

#include <string>

namespace pf {

struct CpuFeatures {
    std::string vendor;  // "GenuineIntel", "AuthenticAMD", ...
    int family = 0, model = 0;
    bool sse4_2 = false;
    bool avx = false;                // 256-bit vectors (Sandy Bridge, 2011)
    bool avx2_fma = false;           // AVX2 and FMA3 (Haswell, 2013; AMD Zen)
    bool avx512 = false;             // AVX-512 F, CD, BW, DQ and VL (Skylake-SP, 2017; AMD Zen 4)
};

CpuFeatures cpu_features();  // this machine's

// "GenuineIntel family 6 model 207, AVX-512" (the widest set, or "SSE4.2", "no SSE4.2").
std::string describe(const CpuFeatures& cpu);

}  // namespace pf
