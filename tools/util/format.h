// format.h — how the tools turn numbers and durations into text.
//
// Two needs pull in opposite directions, so there are two kinds of function:
//   - files that programs read back (CSV logs, JSON summaries) want every digit:
//     format_exact(2.5e-4) == "0.00025";
//   - people watching a progress bar want a few steady digits:
//     format_compact(12345.0) == "12.3k", format_duration(3723) == "1:02:03".
#pragma once

#include <string>

namespace pf {

// The shortest text that reads back to the same value. A value that is a float32
// widened to double is written as the float would be (2.31f gives "2.31", not
// "2.309999942779541"), since the engine computes in float32. Whole numbers are written
// without a decimal point ("1000"); NaN and infinities as "nan", "inf", "-inf".
std::string format_exact(double value);

// Three or four significant digits, with k/M/G/T for thousands and up:
// 2.31 -> "2.310", 0.5 -> "0.5000", 1234 -> "1234", 12345 -> "12.3k",
// 4.56e6 -> "4.56M", 3e-4 -> "3.00e-04".
std::string format_compact(double value);

// Elapsed or remaining time: "0:42", "5:12", "1:02:03" (hours are not wrapped into
// days). Negative, non-finite or absurd (over a million hours) durations, such as an
// ETA not known yet, give "--:--".
std::string format_duration(double seconds);

}  // namespace pf
