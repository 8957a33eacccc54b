// timing.h — wall-clock timing and memory readings for benchmarks.
//
// The machine is shared and noisy, so benchmarks take the median of several runs
// and report ratios of things measured in the same run.
#pragma once

#include <functional>

namespace pf {

double now_seconds();  // a monotonic clock

// Runs fn once to warm up, then `reps` times; returns the median duration in seconds.
double median_seconds(int reps, const std::function<void()>& fn);

// Peak resident memory of this process in MiB (VmHWM), and a reset of that peak
// (Linux: "5" written to /proc/self/clear_refs), so one phase can be measured alone.
double peak_rss_mib();
double current_rss_mib();
void reset_peak_rss();

// The machine's memory in MiB (MemTotal in /proc/meminfo; 0 if unknown).
double memory_total_mib();

}  // namespace pf
