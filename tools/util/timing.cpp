// timing.cpp — clocks, medians and /proc readings.
#include "tools/util/timing.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <string>
#include <vector>

namespace pf {

double now_seconds() {
    using clock = std::chrono::steady_clock;
    return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

double median_seconds(int reps, const std::function<void()>& fn) {
    fn();
    std::vector<double> times;
    for (int i = 0; i < std::max(reps, 1); ++i) {
        double start = now_seconds();
        fn();
        times.push_back(now_seconds() - start);
    }
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}

namespace {
// A "Field:   123 kB" line of a /proc file, in MiB.
double proc_field_mib(const char* file, const std::string& field) {
    std::ifstream status(file);
    std::string line;
    while (std::getline(status, line))
        if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1)) / 1024.0;
    return 0;  // not on Linux
}
}  // namespace

double peak_rss_mib() { return proc_field_mib("/proc/self/status", "VmHWM"); }
double current_rss_mib() { return proc_field_mib("/proc/self/status", "VmRSS"); }
double memory_total_mib() { return proc_field_mib("/proc/meminfo", "MemTotal"); }

void reset_peak_rss() {
    std::ofstream clear("/proc/self/clear_refs");
    clear << "5";
}

}  // namespace pf
