// csv.h — tables as CSV files: training logs, benchmark and approximation results.
//
//   CsvWriter log("runs/austen/log.csv", {"step", "loss", "lr"});
//   log.row({1, 2.5, 3e-4});                    // numbers, every digit kept
//   log.row({"eval", "1.93", ""});              // or text; "" is an empty cell
//
//   CsvTable table = read_csv("runs/austen/log.csv");
//   std::vector<double> loss = table.numbers("loss");   // for plots and tests
//
// The writer creates the parent directories and writes every row at once, so a run
// that crashes keeps every row written before; it never writes through a symbolic link
// (engine/files.h: the header is written atomically, rows appended). In Append mode (resumed training) an
// existing file is kept if its header is the same, and rows go on after its last
// complete line; a different header is an error rather than a mixed-up table.
// Fields holding a comma, a quote or a line break are quoted as RFC 4180 says
// ("say ""hi"", then go"); read_csv undoes that.
#pragma once

#include "engine/files.h"

#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace pf {

class CsvWriter {
public:
    enum class Mode { Overwrite, Append };

    CsvWriter(std::string path, std::vector<std::string> header, Mode mode = Mode::Overwrite);

    // One row with as many fields as the header. Numbers are written with
    // format_exact (shortest text that reads back the same; NaN as "nan").
    void row(const std::vector<double>& values);
    void row(const std::vector<std::string>& fields);
    // Braced lists land here: with only the vector overloads, row({2.5}) and
    // row({"a", "b"}) would be ambiguous (vector's size and iterator-pair constructors).
    void row(std::initializer_list<double> values) { row(std::vector<double>(values)); }
    void row(std::initializer_list<std::string> fields) { row(std::vector<std::string>(fields)); }

    const std::string& path() const { return path_; }
    const std::vector<std::string>& header() const { return header_; }

private:
    void write_record(const std::vector<std::string>& fields);

    std::string path_;
    std::vector<std::string> header_;
    std::unique_ptr<AppendFile> out_;
};

struct CsvTable {
    std::string path;  // where it was read from, for error messages
    std::vector<std::string> header;
    std::vector<std::vector<std::string>> rows;
    std::vector<int> lines;  // the file line where each row starts, for error messages

    // Index of a header column; pf::Error naming the file and the column if absent.
    size_t column(const std::string& name) const;

    // A column as numbers, empty cells (and "nan") as NaN; pf::Error on other text,
    // as "FILE:LINE: column 'NAME': 'TEXT' is not a number".
    std::vector<double> numbers(const std::string& name) const;
    // One cell as a number: the same rule and the same error as numbers().
    double number(size_t row, size_t column) const;
};

// Reads a CSV file written by CsvWriter (or any RFC 4180 file with a header line).
// Throws pf::Error naming the file for a missing file, an empty one, an unterminated
// quote, or a row whose field count differs from the header's (with its line number).
CsvTable read_csv(const std::string& path);

// The same for CSV text already read; `path` names it in errors.
CsvTable parse_csv(const std::string& text, const std::string& path);

// One field as it is written to a CSV line, quoted if it needs to be.
std::string csv_field(const std::string& text);
// One record as a line, "\n" included (a lone empty field is quoted: a blank line would
// be skipped by readers).
std::string csv_line(const std::vector<std::string>& fields);

}  // namespace pf
