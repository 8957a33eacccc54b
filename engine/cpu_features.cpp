// cpu_features.cpp — cpuid and xgetbv, read once per call (a few hundred cycles).
#include "engine/cpu_features.h"

#include <fmt/format.h>

#include <cpuid.h>

#include <cstdint>
#include <cstring>

namespace pf {

CpuFeatures cpu_features() {
    CpuFeatures cpu;
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return cpu;
    const unsigned max_leaf = a;
    char vendor[13] = {};
    std::memcpy(vendor, &b, 4);
    std::memcpy(vendor + 4, &d, 4);
    std::memcpy(vendor + 8, &c, 4);
    cpu.vendor = vendor;
    if (max_leaf < 1) return cpu;
    __get_cpuid(1, &a, &b, &c, &d);
    const int base_family = int(a >> 8) & 0xf, base_model = int(a >> 4) & 0xf;
    cpu.family = base_family == 0xf ? base_family + int(a >> 20 & 0xff) : base_family;
    cpu.model = base_family == 0x6 || base_family == 0xf ? base_model | int(a >> 16 & 0xf) << 4
                                                         : base_model;
    cpu.sse4_2 = c >> 20 & 1;
    const bool fma = c >> 12 & 1, osxsave = c >> 27 & 1, avx = c >> 28 & 1;
    // Which registers the OS saves on a context switch (XCR0): SSE and AVX state
    // (bits 1, 2), and AVX-512's opmask and upper ZMM state (bits 5, 6, 7).
    uint64_t xcr0 = 0;
    if (osxsave) {
        uint32_t low = 0, high = 0;
        __asm__ volatile("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
        xcr0 = uint64_t(high) << 32 | low;
    }
    const bool os_ymm = (xcr0 & 0x6) == 0x6, os_zmm = (xcr0 & 0xe6) == 0xe6;
    cpu.avx = avx && os_ymm;
    if (max_leaf < 7) return cpu;
    __get_cpuid_count(7, 0, &a, &b, &c, &d);
    cpu.avx2_fma = cpu.avx && fma && (b >> 5 & 1);
    const bool f = b >> 16 & 1, dq = b >> 17 & 1, cd = b >> 28 & 1, bw = b >> 30 & 1, vl = b >> 31 & 1;
    cpu.avx512 = cpu.avx2_fma && os_zmm && f && dq && cd && bw && vl;
    return cpu;
}

std::string describe(const CpuFeatures& cpu) {
    const char* widest = cpu.avx512 ? "AVX-512" : cpu.avx2_fma ? "AVX2 + FMA" : cpu.avx ? "AVX"
                       : cpu.sse4_2 ? "SSE4.2" : "no SSE4.2";
    return fmt::format("{} family {} model {}, {}", cpu.vendor.empty() ? "unknown CPU" : cpu.vendor,
                       cpu.family, cpu.model, widest);
}

}  // namespace pf
