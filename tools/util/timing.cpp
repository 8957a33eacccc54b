// timing.cpp — clocks, medians and /proc/self readings.
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
double status_field_mib(const std::string& field) {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1)) / 1024.0;
    return 0;  // not on Linux
}
}  // namespace

double peak_rss_mib() { return status_field_mib("VmHWM"); }
double current_rss_mib() { return status_field_mib("VmRSS"); }

void reset_peak_rss() {
    std::ofstream clear("/proc/self/clear_refs");
    clear << "5";
}

}  // namespace pf
