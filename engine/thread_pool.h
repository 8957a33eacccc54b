// thread_pool.h — the one place that creates threads.
//
//   parallel_for(rows, /*grain=*/64, [&](int64_t begin, int64_t end) {
//       for (int64_t r = begin; r < end; ++r) ...   // write only rows [begin, end)
//   });
//
// The range [0, n) is cut into one contiguous piece per thread (fewer if a piece
// would hold less than `grain` items); the calling thread runs the first piece and
// sleeping workers the others. Work of at most `grain` items, and any call made
// from inside a parallel_for, runs on the calling thread. Each piece must write
// disjoint outputs; results then do not depend on the number of threads.
//
// The thread count comes from set_num_threads(), else the environment variable
// PF_THREADS, else the number of cores. It is at most kMaxThreads: far more than the
// cores only slows the work down, and asking the system for 100000 threads fails. OpenBLAS is kept single-threaded (see
// blas.h): matmuls are split over these same threads, so the cores have one owner.
#pragma once

#include <cstdint>
#include <functional>
#include <source_location>
#include <vector>

namespace pf {

constexpr int kMaxThreads = 256;

int num_threads();
void set_num_threads(int n);  // 1 <= n <= kMaxThreads (else pf::Error); restarts the workers
// PF_THREADS if set, else the number of cores (at most kMaxThreads). pf::Error naming
// PF_THREADS if it is not a whole number in 1..kMaxThreads.
int default_num_threads();

// True inside a parallel_for / parallel_pieces body (on any thread, also when it ran
// inline). Work started there runs on the calling thread.
bool inside_parallel_region();

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn,
                  std::source_location where = std::source_location::current());

// Run fn(piece) for piece in [0, pieces) — one task each, spread over the threads.
// Used where the number of pieces must not depend on the thread count.
void parallel_pieces(int64_t pieces, const std::function<void(int64_t)>& fn,
                     std::source_location where = std::source_location::current());

// A record of the parallel calls a piece of code makes, for the scaling benchmark
// (build/bench --model): while a log is set, every outermost parallel_for or
// parallel_pieces appends where it was called from, the pieces it offers (parallel_for:
// n / grain, the most threads it could use) and its wall time. Amdahl's law then predicts
// the speedup on T threads from one run: each call's time shrinks by min(T, pieces).
struct ParallelCall {
    std::source_location where;
    int64_t pieces = 0;
    double seconds = 0;
};
void set_parallel_log(std::vector<ParallelCall>* log);  // nullptr: stop logging

}  // namespace pf
