// plot.cpp — a gnuplot script from PlotSpecs, and running gnuplot on it (see plot.h).
#include "tools/util/plot.h"

#include "engine/error.h"
#include "engine/files.h"
#include "tools/util/format.h"

#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>

namespace pf {

namespace {

constexpr size_t kMaxPointsWithDots = 60;  // beyond this, dots would merge into a smear

// A gnuplot single-quoted string: no escapes inside except '' for one quote.
std::string gnuplot_quote(const std::string& text) {
    std::string quoted = "'";
    for (char c : text) {
        if (c == '\'') quoted += "''";
        else if (c == '\n') quoted += ' ';  // titles and labels are one line
        else quoted += c;
    }
    return quoted + "'";
}

// A POSIX shell single-quoted word.
std::string shell_quote(const std::string& text) {
    std::string quoted = "'";
    for (char c : text) {
        if (c == '\'') quoted += "'\\''";  // close, an escaped quote, reopen
        else quoted += c;
    }
    return quoted + "'";
}

bool drawable(const PlotSpec& plot, double x, double y) {
    return std::isfinite(x) && std::isfinite(y) && !(plot.log_x && x <= 0) &&
           !(plot.log_y && y <= 0);
}

bool is_power_of_two(double value) {
    int exponent = 0;
    return value > 0 && std::frexp(value, &exponent) == 0.5;
}

// "set logscale x 2" when every drawable x is a power of two, else base 10.
std::string logscale_command(const PlotSpec& plot, char axis) {
    bool powers_of_two = true;
    for (const Series& series : plot.series)
        for (size_t i = 0; i < series.x.size(); ++i)
            if (drawable(plot, series.x[i], series.y[i]))
                powers_of_two &= is_power_of_two(axis == 'x' ? series.x[i] : series.y[i]);
    return fmt::format("set logscale {} {}\n", axis, powers_of_two ? 2 : 10);
}

// "linespoints pt 7 ps 0.8 lw 2" and the like: dots (open circles if dashed) up to
// kMaxPointsWithDots points, a dash type and a colour if the series asks.
std::string curve_style(const Series& series, size_t points) {
    std::string style = points > kMaxPointsWithDots ? "lines lw 1.5"
                        : series.dashed            ? "linespoints pt 6 ps 1 lw 2"
                                                   : "linespoints pt 7 ps 0.8 lw 2";
    if (series.dashed) style += " dashtype 2";
    if (series.color > 0) style += fmt::format(" linecolor {}", series.color);
    return style;
}

void check_panel(const PlotSpec& plot) {
    PF_CHECK(plot.width > 0 && plot.height > 0 && plot.width <= 20000 && plot.height <= 20000,
             "plot '{}': size {}x{} pixels is not sensible", plot.title, plot.width, plot.height);
    size_t drawable_points = 0;
    for (const Series& series : plot.series) {
        PF_CHECK(series.x.size() == series.y.size(),
                 "plot '{}': series '{}' has {} x values but {} y values", plot.title, series.title,
                 series.x.size(), series.y.size());
        for (size_t i = 0; i < series.x.size(); ++i)
            drawable_points += drawable(plot, series.x[i], series.y[i]);
    }
    PF_CHECK(drawable_points > 0, "plot '{}': no points to draw (all missing{})", plot.title,
             plot.log_x || plot.log_y ? ", or <= 0 on a log axis" : "");
}

}  // namespace

std::string gnuplot_script(const std::string& png_path, const std::vector<PlotSpec>& panels) {
    PF_CHECK(!panels.empty(), "{}: a plot needs at least one panel", png_path);
    int width = 0, height = 0;
    for (const PlotSpec& plot : panels) {
        check_panel(plot);
        width += plot.width;
        height = std::max(height, plot.height);
    }

    std::string script = "# written by performer.cpp (tools/util/plot.cpp)\n";
    // The data, one datablock per series, drawable points only.
    for (size_t p = 0; p < panels.size(); ++p)
        for (size_t s = 0; s < panels[p].series.size(); ++s) {
            const Series& series = panels[p].series[s];
            script += fmt::format("$data_{}_{} << EOD\n", p, s);
            for (size_t i = 0; i < series.x.size(); ++i)
                if (drawable(panels[p], series.x[i], series.y[i]))
                    script += format_exact(series.x[i]) + " " + format_exact(series.y[i]) + "\n";
            script += "EOD\n";
        }

    // noenhanced: show "tokens_per_s" as typed, not with a subscript.
    script += fmt::format(
        "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {{\n"
        "    set terminal pngcairo size {0},{1} noenhanced font 'sans,10'\n"
        "}} else {{\n"
        "    set terminal png size {0},{1} noenhanced\n"
        "}}\n"
        "set output {2}\n",
        width, height, gnuplot_quote(png_path));
    if (panels.size() > 1) script += fmt::format("set multiplot layout 1,{}\n", panels.size());

    for (size_t p = 0; p < panels.size(); ++p) {
        const PlotSpec& plot = panels[p];
        // Settings carry over between multiplot panels, so each panel sets them all.
        script +=
            fmt::format("set title {}\nset xlabel {}\nset ylabel {}\n", gnuplot_quote(plot.title),
                        gnuplot_quote(plot.xlabel), gnuplot_quote(plot.ylabel));
        script += "set grid\nset key below\nset format x '%g'\nset format y '%g'\nunset logscale\n";
        if (plot.log_x) script += logscale_command(plot, 'x');
        if (plot.log_y) script += logscale_command(plot, 'y');
        std::vector<std::string> curves;
        for (size_t s = 0; s < plot.series.size(); ++s) {
            const Series& series = plot.series[s];
            size_t points = 0;
            for (size_t i = 0; i < series.x.size(); ++i)
                points += drawable(plot, series.x[i], series.y[i]);
            if (points == 0) continue;  // nothing of it to draw; gnuplot would complain
            curves.push_back(fmt::format("$data_{}_{} using 1:2 with {} title {}", p, s,
                                         curve_style(series, points),
                                         gnuplot_quote(series.title)));
        }
        script += fmt::format("plot {}\n", fmt::join(curves, ", \\\n     "));
    }
    if (panels.size() > 1) script += "unset multiplot\n";
    script += "set output\n";  // closes the PNG file
    return script;
}

bool gnuplot_available() {
    const char* path = std::getenv("PATH");
    std::string directories = path ? path : "";
    size_t start = 0;
    while (start <= directories.size()) {
        size_t end = std::min(directories.find(':', start), directories.size());
        std::string directory = directories.substr(start, end - start);
        std::string candidate = (directory.empty() ? std::string(".") : directory) + "/gnuplot";
        if (access(candidate.c_str(), X_OK) == 0) return true;
        start = end + 1;
    }
    return false;
}

void plot_png(const std::string& png_path, const PlotSpec& plot) {
    plot_png_panels(png_path, {plot});
}

void plot_png_panels(const std::string& png_path, const std::vector<PlotSpec>& panels) {
    check_output_path(png_path, "plot");
    PF_CHECK(!panels.empty(), "{}: a plot needs at least one panel", png_path);
    // gnuplot draws into a scratch folder; the image then replaces png_path atomically
    // (engine/files.h), so a plot never writes through a link planted under its name.
    TempDir scratch("pf-plot");
    const std::string drawn_path = scratch.file("plot.png");
    std::string script = gnuplot_script(drawn_path, panels);  // bad input fails before anything runs
    PF_CHECK(gnuplot_available(), "{}: cannot draw the plot: gnuplot is not installed "
             "(on Debian: apt-get install gnuplot-nox)", png_path);
    std::string script_path = scratch.file("plot.gp"), errors_path = scratch.file("errors.txt");
    write_file(script_path, script);
    std::string command =
        fmt::format("gnuplot {} 2> {}", shell_quote(script_path), shell_quote(errors_path));
    int status = std::system(command.c_str());
    bool succeeded = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!succeeded) {
        std::string errors = read_file(errors_path);
        if (errors.size() > 2000) errors = errors.substr(0, 2000) + "...";
        throw Error(fmt::format("{}: gnuplot failed (status {}): {}", png_path, status, errors));
    }
    std::error_code error;
    PF_CHECK(std::filesystem::file_size(drawn_path, error) > 0 && !error,
             "{}: gnuplot succeeded but wrote no image", png_path);
    write_file(png_path, read_file(drawn_path));
}

}  // namespace pf
