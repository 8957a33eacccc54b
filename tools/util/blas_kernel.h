// blas_kernel.h — every program runs the OpenBLAS kernels its CPU deserves, and says which.
//
// OpenBLAS picks its kernel set once, when it loads, from the CPU's model number. A
// library older than the CPU (Debian 12's 0.3.21 on a 2023 Xeon) does not know the model
// and falls back to Prescott's SSE3 kernels: matrix products 3-6x slower, and nothing
// says so. It reads OPENBLAS_CORETYPE when it loads, so the one way to correct it from
// inside a program is to set the variable and start the program again.
#pragma once

#include <string>

namespace pf {

// At the start of main, before any work: if the kernel set OpenBLAS loaded is narrower
// than this CPU's (engine/blas.h, kernel_to_force) and the user did not set
// OPENBLAS_CORETYPE (to anything, even empty), set it to the matching set and re-execute
// the program with the same arguments, once. Never overrides a value the user set; if
// the re-execution fails, carries on with the kernels it has.
void use_matching_blas_kernel(char** argv);

// One line for a program's header: "OpenBLAS kernels: SkylakeX (chosen for this CPU:
// OpenBLAS 0.3.21 picked Prescott); CPU: GenuineIntel family 6 model 207, AVX-512".
std::string blas_kernel_line();

}  // namespace pf
