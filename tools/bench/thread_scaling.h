// thread_scaling.h — how a training step's speed grows with threads: measured over a
// list of thread counts, and predicted for any count from one run on one thread.
//
// The prediction is Amdahl's law, op by op. A step is serial work (autograd's
// bookkeeping, allocation, whatever runs outside the pool) plus parallel calls, each
// offering some number of independent pieces (engine/thread_pool.h logs them). On T
// threads a call with p pieces of equal size takes ceil(p / T) / p of its one-thread time,
// the serial part all of its time:
//
//   t(T) = serial + sum over calls of seconds x ceil(p / T) / p,   speedup(T) = t(2) / t(T)
//
// It ignores what threads share (memory bandwidth, caches, turbo clocks), so it is an
// upper bound that a bigger machine confirms or refutes (docs/speed.md).
#pragma once

#include "engine/thread_pool.h"

#include <functional>
#include <string>
#include <vector>

namespace pf::bench {

// The parallel calls of one step made on one thread, and the step's time.
struct PiecesProfile {
    std::vector<ParallelCall> calls;
    double step_seconds = 0;
    int threads = 1;  // the pool's count while profiled
    double serial_seconds() const;
    double predicted_seconds(int threads) const;  // t(T) above
};

// Runs `step` once on `threads` threads to warm up, then once with the pool's log on.
PiecesProfile profile_pieces(const std::function<void()>& step, int threads = 1);

// The profile by call site, largest share first: calls per step, pieces offered (the
// fewest of any call), share of the one-thread step, the share Amdahl's law leaves it at
// 64 threads, and how much faster it ran on `many` (the same step profiled on more
// threads: what the prediction misses, such as memory bandwidth, shows here). Sites
// offering fewer than 64 pieces are marked.
void print_pieces_table(const PiecesProfile& one, const PiecesProfile& many, int rows);

// "1,2,4,16" → {1, 2, 4, 16}; empty → 1, 2, 4, ... up to the cores (or PF_THREADS), and that.
std::vector<int> thread_counts(const std::string& list);

// Seconds a step takes on each thread count (the pool resized; one warm-up step, then
// the mean of `steps`); restores the thread count it found.
std::vector<double> time_over_threads(const std::function<void()>& step,
                                      const std::vector<int>& counts, int steps);

}  // namespace pf::bench
