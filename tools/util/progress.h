// progress.h — a progress bar for long loops: training, evaluation, benchmarks.
//
//   ProgressBar bar(total_steps, "train");
//   for (int64_t step = 1; step <= total_steps; ++step) {
//       ...
//       bar.update(step, {{"loss", loss}, {"tok/s", tokens_per_second}});
//   }
//   bar.finish();
//
// On a terminal it redraws one line in place ('\r'), at most ten times a second and
// always for the last step:
//   train [##..................] 120/1000 12% loss 2.310 tok/s 12.3k elapsed 0:42 ETA 5:12
// Anywhere else (a log file, a pipe, CI) redraws would be noise, so it prints plain
// lines instead: for the first update, whenever the step enters a new tenth of the
// work, when 30 seconds have passed since the last line, and at the end:
//   train 120/1000 12% loss 2.310 tok/s 12.3k elapsed 0:42 ETA 5:12
// The ETA assumes the average rate since the bar was made holds for the rest.
#pragma once

#include <cstdint>
#include <functional>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

namespace pf {

class ProgressBar {
public:
    // Auto: Terminal if the stream is std::cerr/std::clog/std::cout and its file
    // descriptor is a terminal, else Lines. Tests force one or the other.
    enum class Display { Auto, Terminal, Lines };
    using Values = std::vector<std::pair<std::string, double>>;  // name, value, in order
    using Clock = std::function<double()>;                       // seconds; tests fake it

    ProgressBar(int64_t total_steps, std::string label, std::ostream& out = std::cerr,
                Display display = Display::Auto, Clock clock = nullptr);
    ~ProgressBar();  // ends a terminal line left open; prints nothing more
    ProgressBar(const ProgressBar&) = delete;
    ProgressBar& operator=(const ProgressBar&) = delete;

    // Records that `step` of total_steps are done, with the figures to show beside it.
    // Draws only when the rules above say so; updates in between are cheap.
    void update(int64_t step, const Values& values = {});

    // For a loop resumed partway (e.g. a training run from its checkpoint): steps up to
    // `step` were done before this bar was made, so the ETA counts only the steps after.
    void resume_from(int64_t step) { first_step_ = step; }

    // Prints a line of text (e.g. an evaluation result) without garbling the bar:
    // on a terminal the bar is cleared, the text printed, and the bar drawn again below.
    void message(const std::string& text);

    // Draws the last state if it was not drawn yet, and ends the line. Safe to call twice.
    void finish();

    bool is_terminal() const { return terminal_; }

private:
    void draw(double now);
    // The text of one line for `step` (without '\r' or newline).
    std::string line(int64_t step, const Values& values, double elapsed_seconds) const;

    int64_t total_steps_;
    std::string label_;
    std::ostream& out_;
    bool terminal_;
    Clock clock_;
    int terminal_columns_ = 0;  // 0: unknown, lines are not cut

    double start_time_;
    int64_t first_step_ = 0;  // steps done before the bar was made
    int64_t step_ = 0;
    Values values_;
    bool undrawn_update_ = false;  // the latest update has not been shown yet
    bool finished_ = false;

    double last_draw_time_ = -1e300;
    int64_t last_drawn_tenth_ = -1;  // Lines mode: the tenth of the work last printed
    size_t last_line_length_ = 0;    // Terminal mode: to blank out a longer previous line
};

}  // namespace pf
