// test_util.cpp — the programs' helpers: number formatting, progress bar, CSV, result
// lines, files and gnuplot plots. Files go to a TempDir removed at the end.
#include <catch2/catch.hpp>

#include "programs.h"

#include "engine/error.h"
#include "models/run.h"
#include "tools/util/cli.h"
#include "tools/util/csv.h"
#include "engine/files.h"
#include "tools/util/format.h"
#include "tools/util/plot.h"
#include "tools/util/progress.h"
#include "tools/util/result.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <sstream>

using namespace pf;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

std::vector<std::string> split(const std::string& text, char separator) {
    std::vector<std::string> parts;
    std::string part;
    std::istringstream in(text);
    while (std::getline(in, part, separator)) parts.push_back(part);
    return parts;
}

// A clock the test moves by hand.
struct FakeClock {
    double seconds = 0;
    ProgressBar::Clock function() {
        return [this] { return seconds; };
    }
};

}  // namespace

// ---- format ---------------------------------------------------------------------------

TEST_CASE("format_exact writes the shortest text that reads back the same", "[util]") {
    CHECK(format_exact(1.0) == "1");
    CHECK(format_exact(1000.0) == "1000");
    CHECK(format_exact(-2.5) == "-2.5");
    CHECK(format_exact(3e-4) == "0.0003");
    CHECK(format_exact(0.1 + 0.2) == "0.30000000000000004");
    CHECK(format_exact(1e20) == "1e+20");
    CHECK(format_exact(double(2.31f)) == "2.31");  // a float32 loss, not 2.309999942779541
    CHECK(format_exact(kNaN) == "nan");
    CHECK(format_exact(-std::numeric_limits<double>::infinity()) == "-inf");
    // Doubles read back as the same double; floats widened to double as the same float.
    for (double value : {1.0 / 3, std::sqrt(2.0), 6.02214076e23, -1.25e-300, 123456.789}) {
        INFO(value);
        CHECK(std::strtod(format_exact(value).c_str(), nullptr) == value);
    }
    for (float value : {1.0f / 3, 3.14159f, 1e-7f, 65504.5f}) {
        INFO(value);
        CHECK(std::strtof(format_exact(value).c_str(), nullptr) == value);
    }
}

TEST_CASE("format_compact keeps three or four digits and uses k/M/G", "[util]") {
    CHECK(format_compact(2.31) == "2.310");
    CHECK(format_compact(0.5) == "0.5000");
    CHECK(format_compact(12.345) == "12.35");
    CHECK(format_compact(1234) == "1234");
    CHECK(format_compact(12345) == "12.3k");
    CHECK(format_compact(123456) == "123k");
    CHECK(format_compact(-12345) == "-12.3k");
    CHECK(format_compact(4.56e6) == "4.56M");
    CHECK(format_compact(999960) == "1.00M");  // rounds up into the next suffix
    CHECK(format_compact(2.5e9) == "2.50G");
    CHECK(format_compact(3e-4) == "3.00e-04");
    CHECK(format_compact(0) == "0");
    CHECK(format_compact(kNaN) == "nan");
}

TEST_CASE("format_duration gives m:ss, and h:mm:ss from an hour on", "[util]") {
    CHECK(format_duration(0) == "0:00");
    CHECK(format_duration(42) == "0:42");
    CHECK(format_duration(312) == "5:12");
    CHECK(format_duration(59.6) == "1:00");
    CHECK(format_duration(3723) == "1:02:03");
    CHECK(format_duration(100 * 3600) == "100:00:00");
    CHECK(format_duration(-1) == "--:--");
    CHECK(format_duration(kNaN) == "--:--");
}

// ---- progress bar -----------------------------------------------------------------------

TEST_CASE("progress bar in a log prints the first step, each tenth and the end", "[util]") {
    std::ostringstream out;
    FakeClock clock;  // standing still: only the tenths decide
    ProgressBar bar(1000, "train", out, ProgressBar::Display::Auto, clock.function());
    REQUIRE_FALSE(bar.is_terminal());  // a string stream is never a terminal
    for (int64_t step = 1; step <= 1000; ++step)
        bar.update(step, {{"loss", 2.31}, {"tok/s", 12345.0}});
    bar.finish();

    std::string text = out.str();
    CHECK(text.find('\r') == std::string::npos);
    std::vector<std::string> lines = split(text, '\n');
    REQUIRE(lines.size() == 11);  // step 1, 100, 200, ..., 900, and 1000
    CHECK_THAT(lines[0], StartsWith("train 1/1000 0% loss 2.310 tok/s 12.3k elapsed 0:00 ETA"));
    CHECK_THAT(lines[1], StartsWith("train 100/1000 10% "));
    CHECK_THAT(lines[9], StartsWith("train 900/1000 90% "));
    CHECK(lines[10] == "train 1000/1000 100% loss 2.310 tok/s 12.3k elapsed 0:00");
}

TEST_CASE("progress bar in a log prints every 30 seconds, with an ETA from the mean rate",
          "[util]") {
    std::ostringstream out;
    FakeClock clock;
    ProgressBar bar(1000, "eval", out, ProgressBar::Display::Lines, clock.function());
    for (int64_t step = 1; step <= 5; ++step) {
        clock.seconds += 31;
        bar.update(step);
    }
    clock.seconds += 1;
    bar.update(6);  // same tenth, 1 s after the last line: nothing
    std::vector<std::string> lines = split(out.str(), '\n');
    REQUIRE(lines.size() == 5);
    // After step 1 at 31 s: 999 steps to go at 31 s each = 30969 s.
    CHECK(lines[0] == "eval 1/1000 0% elapsed 0:31 ETA 8:36:09");
    CHECK(lines[4] == "eval 5/1000 0% elapsed 2:35 ETA 8:34:05");
    bar.finish();  // step 6 was not shown: the final line shows it
    lines = split(out.str(), '\n');
    REQUIRE(lines.size() == 6);
    CHECK_THAT(lines[5], StartsWith("eval 6/1000 0% elapsed 2:36"));
}

TEST_CASE("progress bar resumed partway counts only its own steps in the ETA", "[util]") {
    std::ostringstream out;
    FakeClock clock;
    ProgressBar bar(1000, "train", out, ProgressBar::Display::Lines, clock.function());
    bar.resume_from(600);  // 600 steps were done by an earlier run
    clock.seconds += 10;
    bar.update(610);  // 10 steps in 10 s here: 390 to go at 1 s each
    CHECK(split(out.str(), '\n')[0] == "train 610/1000 61% elapsed 0:10 ETA 6:30");
}

TEST_CASE("progress bar on a terminal redraws one line and fills proportionally", "[util]") {
    std::ostringstream out;
    FakeClock clock;
    ProgressBar bar(10, "train", out, ProgressBar::Display::Terminal, clock.function());
    REQUIRE(bar.is_terminal());
    for (int64_t step = 1; step <= 10; ++step) {
        clock.seconds += 1;
        bar.update(step, {{"loss", 1.5}});
    }
    bar.finish();

    std::string text = out.str();
    REQUIRE(text.back() == '\n');  // finish moves off the bar's line
    REQUIRE(std::count(text.begin(), text.end(), '\n') == 1);
    std::vector<std::string> frames = split(text.substr(1, text.size() - 2), '\r');
    REQUIRE(frames.size() == 10);
    for (int64_t step = 1; step <= 10; ++step) {
        const std::string& frame = frames[step - 1];
        INFO(frame);
        std::string bar_part = frame.substr(frame.find('[') + 1, 20);
        CHECK(std::count(bar_part.begin(), bar_part.end(), '#') == 2 * step);
        CHECK(std::count(bar_part.begin(), bar_part.end(), '.') == 20 - 2 * step);
        CHECK_THAT(frame, Contains(fmt::format(" {}/10 {}% loss 1.500", step, step * 10)));
    }
    CHECK_THAT(frames[4], Contains("elapsed 0:05 ETA 0:05"));
    // The last line lost its ETA; spaces blank out what is left of the longer one before.
    CHECK(frames[9].size() == frames[8].size());
    CHECK(frames[9].substr(0, frames[9].find_last_not_of(' ') + 1) ==
          "train [####################] 10/10 100% loss 1.500 elapsed 0:10");
}

TEST_CASE("progress bar on a terminal redraws at most ten times a second, and the last step",
          "[util]") {
    SECTION("time standing still: the first and the last step only") {
        std::ostringstream out;
        FakeClock clock;
        ProgressBar bar(1000, "x", out, ProgressBar::Display::Terminal, clock.function());
        for (int64_t step = 1; step <= 1000; ++step) bar.update(step);
        bar.finish();
        std::string text = out.str();
        CHECK(std::count(text.begin(), text.end(), '\r') == 2);
        CHECK_THAT(text, Contains("x [....................] 1/1000 0%"));
        CHECK_THAT(text, Contains("x [####################] 1000/1000 100%"));
    }
    SECTION("1/64 s per step: 15.6 s of work, about ten redraws per second") {
        std::ostringstream out;
        FakeClock clock;
        ProgressBar bar(1000, "x", out, ProgressBar::Display::Terminal, clock.function());
        for (int64_t step = 1; step <= 1000; ++step) {
            clock.seconds += 1.0 / 64;
            bar.update(step);
        }
        std::string text = out.str();
        auto redraws = std::count(text.begin(), text.end(), '\r');
        CHECK(redraws >= 140);
        CHECK(redraws <= 158);
        CHECK_THAT(text.substr(text.rfind('\r')),
                   StartsWith("\rx [####################] 1000/1000 100%"));
    }
}

TEST_CASE("progress bar messages and shorter lines do not garble the terminal line", "[util]") {
    std::ostringstream out;
    FakeClock clock;
    {
        ProgressBar bar(100, "train", out, ProgressBar::Display::Terminal, clock.function());
        bar.update(1, {{"loss", 12345.0}});
        clock.seconds += 1;
        bar.update(2, {{"loss", 1.0}});  // a shorter line: blanked to the old length
        bar.message("eval loss 1.5");
        // destroyed without finish(): ends the open line, prints no final state
    }
    std::vector<std::string> frames = split(out.str(), '\r');
    REQUIRE(frames.size() == 5);  // "", step 1, step 2, message, step 2 again
    CHECK(frames[2].size() == frames[1].size());
    CHECK_THAT(frames[2],
               StartsWith("train [....................] 2/100 2% loss 1.000 elapsed 0:01"));
    CHECK_THAT(frames[3], StartsWith("eval loss 1.5   "));
    CHECK(frames[3].back() == '\n');
    CHECK_THAT(frames[4], StartsWith("train [....................] 2/100 2% loss 1.000"));
    CHECK(frames[4].back() == '\n');

    std::ostringstream log;
    ProgressBar lines(100, "train", log, ProgressBar::Display::Lines, clock.function());
    lines.message("eval loss 1.5");
    CHECK(log.str() == "eval loss 1.5\n");
}

TEST_CASE("progress bar rejects a non-positive total", "[util]") {
    std::ostringstream out;
    CHECK_THROWS_AS(ProgressBar(0, "train", out), Error);
}

// ---- files --------------------------------------------------------------------------

TEST_CASE("read_file, write_file and TempDir", "[util]") {
    std::filesystem::path kept;
    {
        TempDir scratch("pf-test");
        kept = scratch.path();
        REQUIRE(std::filesystem::is_directory(kept));
        std::string path = scratch.file("a/b/data.bin");
        std::string bytes("x\0y\nz", 5);
        write_file(path, bytes);  // creates a/b
        CHECK(read_file(path) == bytes);

        std::string missing = scratch.file("missing.txt");
        CHECK_THROWS_WITH(read_file(missing), Contains(missing) && Contains("cannot open"));
        CHECK_THROWS_WITH(read_file(scratch.file("a")), Contains("is a directory"));
    }
    CHECK_FALSE(std::filesystem::exists(kept));  // removed with its contents
}

// ---- CSV ----------------------------------------------------------------------------

TEST_CASE("CsvWriter writes numbers exactly and reads back", "[util]") {
    TempDir scratch("pf-test");
    std::string path = scratch.file("runs/one/log.csv");  // the directories do not exist yet
    {
        CsvWriter csv(path, {"step", "loss", "lr"});
        csv.row({1.0, 2.5, 3e-4});
        csv.row({2, double(2.31f), 1.0 / 3});
        csv.row({"eval", "", "x"});
        // Flushed after every row: the file is complete while the writer is still open.
        CHECK(read_file(path) ==
              "step,loss,lr\n1,2.5,0.0003\n2,2.31,0.3333333333333333\neval,,x\n");
    }
    CsvTable table = read_csv(path);
    CHECK(table.header == std::vector<std::string>{"step", "loss", "lr"});
    REQUIRE(table.rows.size() == 3);
    CHECK(table.rows[1] == std::vector<std::string>{"2", "2.31", "0.3333333333333333"});
    CHECK(std::strtod(table.rows[1][2].c_str(), nullptr) == 1.0 / 3);  // every digit kept
    std::vector<double> loss = table.numbers("loss");
    REQUIRE(loss.size() == 3);
    CHECK(loss[0] == 2.5);
    CHECK(loss[1] == Approx(2.31));
    CHECK(std::isnan(loss[2]));  // an empty cell
    CHECK_THROWS_WITH(table.numbers("lr"), Contains("'x' is not a number"));
    CHECK_THROWS_WITH(table.column("accuracy"), Contains(path) && Contains("no column 'accuracy'"));
}

TEST_CASE("CSV fields with commas, quotes and line breaks are quoted and read back", "[util]") {
    TempDir scratch("pf-test");
    std::string path = scratch.file("quoted.csv");
    std::vector<std::string> tricky = {"a,b", "say \"hi\"", "two\nlines", "plain"};
    {
        CsvWriter csv(path, {"w", "x", "y", "z"});
        csv.row(tricky);
    }
    CHECK(read_file(path) == "w,x,y,z\n\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",plain\n");
    CsvTable table = read_csv(path);
    REQUIRE(table.rows.size() == 1);
    CHECK(table.rows[0] == tricky);

    // A one-column table with an empty cell must not turn into a skipped blank line.
    std::string single = scratch.file("single.csv");
    {
        CsvWriter csv(single, {"note"});
        csv.row(std::vector<std::string>{""});
    }
    CHECK(read_csv(single).rows == std::vector<std::vector<std::string>>{{""}});
}

TEST_CASE("read_csv accepts CRLF and blank lines, and names the file in errors", "[util]") {
    TempDir scratch("pf-test");
    std::string path = scratch.file("t.csv");
    write_file(path, "a,b\r\n1,2\r\n\r\n3,\r\n");
    CsvTable table = read_csv(path);
    CHECK(table.rows == std::vector<std::vector<std::string>>{{"1", "2"}, {"3", ""}});

    write_file(path, "a,b\n1,2\n3\n");
    CHECK_THROWS_WITH(read_csv(path), Contains(path + ":3: 1 fields, but the header has 2"));
    write_file(path, "a,b\n\"1,2\n");
    CHECK_THROWS_WITH(read_csv(path), Contains(path + ":2: a quoted field is never closed"));
    write_file(path, "");
    CHECK_THROWS_WITH(read_csv(path), Contains(path) && Contains("empty"));
    CHECK_THROWS_WITH(read_csv(scratch.file("none.csv")), Contains("none.csv"));
}

TEST_CASE("CsvWriter checks row lengths", "[util]") {
    TempDir scratch("pf-test");
    std::string path = scratch.file("t.csv");
    CsvWriter csv(path, {"step", "loss"});
    CHECK_THROWS_AS(csv.row({1.0}), Error);
    CHECK_THROWS_WITH(csv.row({"1", "2", "3"}), Contains("3 fields for 2 columns"));
    CHECK_THROWS_AS(csv.row(std::vector<double>{1, 2, 3}), Error);
    csv.row({"1", "2"});  // the right length: written; the bad rows were not
    CHECK(read_file(path) == "step,loss\n1,2\n");
}

TEST_CASE("CsvWriter append mode keeps a matching file and refuses a different header", "[util]") {
    TempDir scratch("pf-test");
    std::string path = scratch.file("log.csv");
    {
        CsvWriter csv(path, {"step", "loss"}, CsvWriter::Mode::Append);  // no file yet: new
        csv.row({1, 2.5});
    }
    {
        CsvWriter csv(path, {"step", "loss"}, CsvWriter::Mode::Append);  // resumed run
        csv.row({2, 2.25});
    }
    CHECK(read_file(path) == "step,loss\n1,2.5\n2,2.25\n");

    CHECK_THROWS_WITH(CsvWriter(path, {"step", "lr"}, CsvWriter::Mode::Append),
                      Contains(path) && Contains("step,loss") && Contains("step,lr"));
    CHECK(read_file(path) == "step,loss\n1,2.5\n2,2.25\n");  // untouched

    // A crash in the middle of a row: the partial line is dropped on resume.
    write_file(path, "step,loss\n1,2.5\n2,2.2");
    {
        CsvWriter csv(path, {"step", "loss"}, CsvWriter::Mode::Append);
        csv.row({2, 2.25});
    }
    CHECK(read_file(path) == "step,loss\n1,2.5\n2,2.25\n");

    // Overwrite mode (the default) starts afresh.
    {
        CsvWriter csv(path, {"step", "lr"});
        csv.row({1, 0.001});
    }
    CHECK(read_file(path) == "step,lr\n1,0.001\n");
}

// ---- result line --------------------------------------------------------------------

TEST_CASE("ResultLine formats numbers, integers and words", "[util]") {
    ResultLine result;
    result.add("tokens_per_s", 12345.6)
        .add("mfu", 0.71)
        .add("steps", 1000)
        .add("attention", "favor");
    CHECK(result.str() == "result: tokens_per_s=12345.6 mfu=0.71 steps=1000 attention=favor");

    CHECK(format_result_number(3.0) == "3");
    CHECK(format_result_number(1.0 / 3) == "0.333333");
    CHECK(format_result_number(1234567.8) == "1234568");
    CHECK(format_result_number(1.5e-7) == "1.5e-07");
    CHECK(format_result_number(kNaN) == "nan");

    ResultLine quoted;
    quoted.add("file", "my data.txt").add("empty", "").add("ok", true);
    CHECK(quoted.str() == "result: file=\"my data.txt\" empty=\"\" ok=true");

    CHECK_THROWS_AS(result.add("mfu", 0.5), Error);          // twice
    CHECK_THROWS_AS(result.add("two words", 1.0), Error);    // would break the line apart
    CHECK_THROWS_AS(result.add("a=b", 1.0), Error);
    CHECK_THROWS_AS(result.add("text", "line\nbreak"), Error);
}

TEST_CASE("parse_result_line (tests/programs.h) reads the last result line back", "[util]") {
    using pf::testing::parse_result_line;
    ResultLine result;
    result.add("bits_per_byte", 1.93).add("path", "a \"b\" \\c").add("tokens", int64_t(123456789));
    std::string output = "loading\nresult: old=1\nsome output\n" + result.str() + "\n";
    std::map<std::string, std::string> pairs = parse_result_line(output);
    CHECK(pairs == std::map<std::string, std::string>{{"bits_per_byte", "1.93"},
                                                      {"path", "a \"b\" \\c"},
                                                      {"tokens", "123456789"}});
    CHECK_THROWS_WITH(parse_result_line("no results here\n"), Contains("no line starting with"));
    CHECK_THROWS_AS(parse_result_line("result: a=1 broken"), Error);
    CHECK_THROWS_AS(parse_result_line("result: a=\"open"), Error);
}

// ---- plots --------------------------------------------------------------------------

namespace {

PlotSpec time_panel() {
    PlotSpec plot{"Forward+backward time", "sequence length L", "seconds"};
    plot.log_x = plot.log_y = true;
    plot.series.push_back({"softmax", {256, 512, 1024, 2048}, {0.01, 0.04, 0.16, kNaN}});
    plot.series.push_back({"FAVOR+", {256, 512, 1024, 2048}, {0.02, 0.04, 0.08, 0.16}});
    return plot;
}

struct PngSize {
    uint32_t width, height;
};

// Checks the PNG signature and reads the size from the IHDR chunk that must follow it.
PngSize read_png_size(const std::string& path) {
    std::string bytes = read_file(path);
    REQUIRE(bytes.size() > 24);
    REQUIRE(bytes.substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
    REQUIRE(bytes.substr(12, 4) == "IHDR");
    auto big_endian = [&](size_t at) {
        uint32_t value = 0;
        for (size_t i = 0; i < 4; ++i)
            value = value << 8 | static_cast<unsigned char>(bytes[at + i]);
        return value;
    };
    return {big_endian(16), big_endian(20)};
}

}  // namespace

TEST_CASE("gnuplot script leaves out missing points and picks log bases", "[util]") {
    PlotSpec time = time_panel();
    PlotSpec loss{"Training loss", "step", "loss 'nats'"};
    Series curve{"train", {}, {}};
    for (int step = 0; step < 100; ++step)
        curve.x.push_back(step), curve.y.push_back(3.0 - step * 0.01);
    loss.series.push_back(curve);
    loss.log_y = true;

    std::string script = gnuplot_script("out/plot.png", {time, loss});
    // The NaN point of softmax is gone; the other points are there.
    CHECK_THAT(script, Contains("$data_0_0 << EOD\n256 0.01\n512 0.04\n1024 0.16\nEOD\n"));
    CHECK_THAT(script,
               Contains("$data_0_1 << EOD\n256 0.02\n512 0.04\n1024 0.08\n2048 0.16\nEOD\n"));
    CHECK_THAT(script, Contains("set logscale x 2\n"));    // lengths: powers of two
    CHECK_THAT(script, Contains("set logscale y 10\n"));
    CHECK_THAT(script, Contains("set multiplot layout 1,2"));
    CHECK_THAT(script, Contains("size 1800,600"));
    CHECK_THAT(script, Contains("set ylabel 'loss ''nats'''"));  // quote doubled for gnuplot
    CHECK_THAT(script, Contains("$data_0_0 using 1:2 with linespoints"));
    CHECK_THAT(script, Contains("$data_1_0 using 1:2 with lines lw"));  // 100 points: no dots
    CHECK_THAT(script, !Contains("dashtype") && !Contains("linecolor"));  // only when asked
}

TEST_CASE("gnuplot script: a dashed series in the colour of another", "[util]") {
    PlotSpec plot = time_panel();
    plot.series[0].color = 1;
    Series predicted{"softmax, predicted", {256, 512}, {0.02, 0.08}};
    predicted.dashed = true, predicted.color = 1;
    plot.series.push_back(predicted);
    std::string script = gnuplot_script("out/plot.png", {plot});
    CHECK_THAT(script, Contains("$data_0_0 using 1:2 with linespoints pt 7 ps 0.8 lw 2 linecolor 1 "
                                "title 'softmax'"));
    CHECK_THAT(script, Contains("$data_0_1 using 1:2 with linespoints pt 7 ps 0.8 lw 2 title"));
    CHECK_THAT(script, Contains("$data_0_2 using 1:2 with linespoints pt 6 ps 1 lw 2 dashtype 2 "
                                "linecolor 1 title 'softmax, predicted'"));
}

TEST_CASE("plots reject bad input before running gnuplot", "[util]") {
    PlotSpec plot = time_panel();
    plot.series[1].y.pop_back();
    CHECK_THROWS_WITH(plot_png("unused.png", plot),
                      Contains("series 'FAVOR+' has 4 x values but 3 y values"));

    PlotSpec nothing{"empty", "x", "y"};
    nothing.log_y = true;
    nothing.series.push_back({"all missing or negative", {1, 2, 3}, {kNaN, -1, 0}});
    CHECK_THROWS_WITH(plot_png("unused.png", nothing), Contains("no points to draw"));
    CHECK_THROWS_AS(plot_png_panels("unused.png", {}), Error);
    PlotSpec tiny = time_panel();
    tiny.width = 0;
    CHECK_THROWS_AS(plot_png("unused.png", tiny), Error);
    CHECK_FALSE(std::filesystem::exists("unused.png"));
}

TEST_CASE("plot_png writes a PNG of the requested size", "[util]") {
    if (!gnuplot_available()) {
        WARN("gnuplot is not installed (apt-get install gnuplot-nox): PNG plots not tested");
        return;
    }
    TempDir scratch("pf-test");
    std::string one = scratch.file("plots/time.png");  // the directory is created
    plot_png(one, time_panel());
    PngSize size = read_png_size(one);
    CHECK(size.width == 900);
    CHECK(size.height == 600);

    PlotSpec memory{"Peak memory", "L", "MiB"};
    memory.series.push_back({"softmax", {256, 512}, {10, 40}});
    memory.width = 700;
    memory.height = 500;
    PlotSpec time = time_panel();
    time.height = 400;
    std::string two = scratch.file("plots/both.png");
    plot_png_panels(two, {time, memory});
    size = read_png_size(two);
    CHECK(size.width == 1600);
    CHECK(size.height == 500);
}

TEST_CASE("plot_png without gnuplot says to install gnuplot-nox", "[util]") {
    TempDir scratch("pf-test");
    const char* old_path = std::getenv("PATH");
    std::string saved = old_path ? old_path : "";
    setenv("PATH", scratch.path().c_str(), 1);  // an empty directory: no gnuplot anywhere
    bool available = gnuplot_available();
    std::string message;
    try {
        plot_png(scratch.file("x.png"), time_panel());
    } catch (const Error& e) {
        message = e.what();
    }
    setenv("PATH", saved.c_str(), 1);
    CHECK_FALSE(available);
    CHECK_THAT(message, Contains("gnuplot-nox"));
    CHECK_FALSE(std::filesystem::exists(scratch.file("x.png")));
}

TEST_CASE("flags are made from the settings table: values, defaults, checks", "[util][settings]") {
    auto parse = [](std::vector<std::string> words, models::ModelConfig& config) {
        CLI::App app{"test", "test"};
        add_flags(app, models::model_settings(), config);
        std::vector<char*> argv{const_cast<char*>("test")};
        for (std::string& word : words) argv.push_back(word.data());
        app.parse(int(argv.size()), argv.data());
        return app.help();
    };
    models::ModelConfig config;
    std::string help = parse({"--attention", "trig", "--feature-kind", "iid", "--dim", "020",
                              "--dropout", "0.25"}, config);
    REQUIRE(config.attention.mechanism == nn::Mechanism::Trig);
    REQUIRE(config.attention.feature_kind == nn::FeatureKind::Iid);
    REQUIRE(config.attention.dim == 20);  // decimal, not octal
    REQUIRE(config.dropout == 0.25f);
    REQUIRE(config.layers == models::ModelConfig().layers);  // not given: the default
    // The help lists the choices in one place and shows the defaults.
    REQUIRE_THAT(help, Catch::Contains("softmax|favor|trig|relu|identity") &&
                           Catch::Contains("[default: favor]"));
    // Every flag of a table is checked by its setting, as a checkpoint's value would be.
    for (std::vector<std::string> bad : std::vector<std::vector<std::string>>{
             {"--attention", "performer"}, {"--dim", "0x10"}, {"--dim", "0"},
             {"--dropout", "nan"}, {"--dropout", "1"}, {"--feature-kind", "1"}}) {
        INFO(bad[0] << " " << bad[1]);
        models::ModelConfig untouched;
        REQUIRE_THROWS_AS(parse(bad, untouched), CLI::ValidationError);
    }
}
