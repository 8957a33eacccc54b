// plot.h — line plots as PNG files, drawn by gnuplot.
//
//   PlotSpec time{"Forward+backward time", "sequence length L", "seconds"};
//   time.log_x = time.log_y = true;
//   time.series.push_back({"softmax", lengths, softmax_seconds});
//   time.series.push_back({"FAVOR+", lengths, favor_seconds});
//   plot_png("results/bench.png", time);                      // one panel
//   plot_png_panels("results/bench.png", {time, memory});     // side by side
//
// Each series is drawn as a line (with a dot per point when it has at most 60
// points), with a legend below, a grid, and log scales if asked: base 2 for an axis
// whose values are all powers of two (sequence lengths, feature counts), else base 10.
// A NaN in x or y is a missing point (e.g. softmax attention out of memory at long L)
// and is left out, as are values <= 0 on a log axis.
//
// The script and its data go to a temp directory and gnuplot turns them into the PNG
// (the pngcairo terminal if gnuplot has it, else png). gnuplot is an optional tool:
// when it is missing plot_png throws a pf::Error saying to install gnuplot-nox, and
// programs catch it and print a warning instead of failing a finished run.
#pragma once

#include <string>
#include <vector>

namespace pf {

struct Series {
    std::string title{};
    std::vector<double> x{}, y{};  // the same length
    std::string style{};           // more gnuplot style, e.g. "lc 3 dt 2" (colour 3, dashed)
};

struct PlotSpec {
    // Every member has a default, so PlotSpec{"title", "x label", "y label"} leaves the
    // rest at their defaults without -Wmissing-field-initializers warnings.
    std::string title{}, xlabel{}, ylabel{};
    bool log_x = false, log_y = false;
    std::vector<Series> series{};
    int width = 900, height = 600;  // pixels
};

void plot_png(const std::string& png_path, const PlotSpec& plot);

// Panels left to right in one image, as wide as their widths added and as tall as
// the tallest; gnuplot gives each an equal share of the width.
void plot_png_panels(const std::string& png_path, const std::vector<PlotSpec>& panels);

// Whether a gnuplot executable is on the PATH.
bool gnuplot_available();

// The gnuplot script plot_png_panels runs, data included. Checks the panels (equal
// x and y lengths, something to draw, sane sizes) and throws pf::Error if they are bad.
std::string gnuplot_script(const std::string& png_path, const std::vector<PlotSpec>& panels);

}  // namespace pf
