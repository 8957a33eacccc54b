// blas_kernel.cpp — the choice of OpenBLAS's kernels (see blas_kernel.h).
#include "tools/util/blas_kernel.h"

#include "engine/blas.h"
#include "engine/cpu_features.h"

#include <fmt/format.h>

#include <unistd.h>

#include <cstdlib>

namespace pf {
namespace {

// Set in the re-executed program: the kernel set OpenBLAS had picked by itself.
constexpr const char* kPickedVariable = "PF_OPENBLAS_PICKED";

// OpenBLAS's version, from its configuration line "OpenBLAS 0.3.21 DYNAMIC_ARCH ...".
std::string library_version() {
    const std::string config = blas::library_config();
    return config.substr(0, config.find(' ', config.find(' ') + 1));
}

}  // namespace

void use_matching_blas_kernel(char** argv) {
    if (std::getenv("OPENBLAS_CORETYPE")) return;  // the user's choice, or ours already
    const std::string running = blas::core_name();
    const std::string wanted = blas::kernel_to_force(cpu_features(), running);
    if (wanted.empty()) return;
    setenv("OPENBLAS_CORETYPE", wanted.c_str(), 1);
    setenv(kPickedVariable, running.c_str(), 1);
    execv("/proc/self/exe", argv);
    // Only reached if the program could not be started again.
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv(kPickedVariable);
}

std::string blas_kernel_line() {
    const CpuFeatures cpu = cpu_features();
    const std::string running = blas::core_name(), version = library_version();
    std::string why;
    const char* user_value = std::getenv("OPENBLAS_CORETYPE");
    if (const char* picked = std::getenv(kPickedVariable); picked && user_value && running == user_value)
        why = fmt::format(" (chosen for this CPU: {} picked {})", version, picked);
    else if (user_value)
        why = fmt::format(" (OPENBLAS_CORETYPE={})", user_value);
    const std::string wanted = blas::kernel_to_force(cpu, running);
    if (!wanted.empty())
        why += fmt::format("; narrower than this CPU, which could run {}", wanted);
    return fmt::format("OpenBLAS kernels: {}{}; CPU: {}", running, why, describe(cpu));
}

}  // namespace pf
