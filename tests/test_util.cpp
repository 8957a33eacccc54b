// test_util.cpp — the programs' helpers: number formatting, progress bar, CSV, JSON,
// result lines, files and gnuplot plots. Files go to a TempDir removed at the end.
#include <catch2/catch.hpp>

#include "engine/error.h"
#include "tools/util/files.h"
#include "tools/util/format.h"

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

