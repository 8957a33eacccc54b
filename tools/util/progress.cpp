// progress.cpp — when to draw the bar, and what one line of it says (see progress.h).
#include "tools/util/progress.h"

#include "engine/error.h"
#include "tools/util/format.h"
#include "tools/util/timing.h"

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <limits>

namespace pf {

namespace {

constexpr int kBarWidth = 20;                  // characters between the brackets
constexpr double kTerminalRedrawSeconds = 0.1;  // at most ten redraws a second
constexpr double kLogLineSeconds = 30;          // Lines mode: a line at least this often

// The file descriptor behind one of the standard streams, or -1 for any other stream.
int standard_stream_fd(const std::ostream& out) {
    if (&out == &std::cout) return STDOUT_FILENO;
    if (&out == &std::cerr || &out == &std::clog) return STDERR_FILENO;
    return -1;
}

int terminal_columns(int fd) {
    winsize size{};
    if (fd >= 0 && ioctl(fd, TIOCGWINSZ, &size) == 0) return size.ws_col;
    return 0;
}

}  // namespace

ProgressBar::ProgressBar(int64_t total_steps, std::string label, std::ostream& out,
                         Display display, Clock clock)
    : total_steps_(total_steps), label_(std::move(label)), out_(out),
      clock_(clock ? std::move(clock) : Clock(now_seconds)) {
    PF_CHECK(total_steps > 0, "progress bar '{}': total steps must be positive, got {}", label_,
             total_steps);
    int fd = standard_stream_fd(out);
    terminal_ = display == Display::Terminal ||
                (display == Display::Auto && fd >= 0 && isatty(fd));
    if (terminal_) terminal_columns_ = terminal_columns(fd);
    start_time_ = clock_();
}

ProgressBar::~ProgressBar() {
    if (finished_ || !terminal_ || last_line_length_ == 0) return;
    try {
        out_ << '\n' << std::flush;  // leave the cursor on a fresh line for what comes next
    } catch (...) {
    }
}

void ProgressBar::update(int64_t step, const Values& values) {
    if (finished_) return;
    step_ = std::clamp<int64_t>(step, 0, total_steps_);
    values_ = values;
    undrawn_update_ = true;

    double now = clock_();
    int64_t tenth = step_ * 10 / total_steps_;
    bool due = terminal_ ? now - last_draw_time_ >= kTerminalRedrawSeconds
                         : tenth > last_drawn_tenth_ || now - last_draw_time_ >= kLogLineSeconds;
    if (due || step_ == total_steps_) draw(now);
}

void ProgressBar::message(const std::string& text) {
    if (terminal_ && last_line_length_ > 0) {
        std::string padded = text;
        if (padded.size() < last_line_length_)
            padded.append(last_line_length_ - padded.size(), ' ');
        out_ << '\r' << padded << '\n';
        last_line_length_ = 0;
        if (!finished_) draw(clock_());
    } else {
        out_ << text << '\n' << std::flush;
    }
}

void ProgressBar::finish() {
    if (finished_) return;
    if (undrawn_update_) draw(clock_());
    if (terminal_ && last_line_length_ > 0) out_ << '\n' << std::flush;
    finished_ = true;
}

void ProgressBar::draw(double now) {
    std::string text = line(step_, values_, now - start_time_);
    if (terminal_) {
        // A line wider than the terminal would wrap, and '\r' would then only go back
        // to the start of its last row; cut it instead.
        if (terminal_columns_ > 1 && text.size() >= size_t(terminal_columns_))
            text.resize(terminal_columns_ - 1);
        size_t length = text.size();
        if (length < last_line_length_) text.append(last_line_length_ - length, ' ');
        out_ << '\r' << text << std::flush;
        last_line_length_ = length;
    } else {
        out_ << text << '\n' << std::flush;
    }
    last_draw_time_ = now;
    last_drawn_tenth_ = step_ * 10 / total_steps_;
    undrawn_update_ = false;
}

std::string ProgressBar::line(int64_t step, const Values& values, double elapsed_seconds) const {
    std::string text = label_;
    if (terminal_) {
        int64_t filled = step * kBarWidth / total_steps_;
        text +=
            fmt::format(" [{}{}]", std::string(filled, '#'), std::string(kBarWidth - filled, '.'));
    }
    text += fmt::format(" {}/{} {}%", step, total_steps_, step * 100 / total_steps_);
    for (const auto& [name, value] : values)
        text += fmt::format(" {} {}", name, format_compact(value));
    text += " elapsed " + format_duration(elapsed_seconds);
    if (step < total_steps_) {
        int64_t done_here = step - first_step_;
        double remaining = done_here > 0
                               ? elapsed_seconds / double(done_here) * double(total_steps_ - step)
                                    : std::numeric_limits<double>::quiet_NaN();
        text += " ETA " + format_duration(remaining);
    }
    if (label_.empty()) text.erase(0, 1);  // the space before the first part
    return text;
}

}  // namespace pf
