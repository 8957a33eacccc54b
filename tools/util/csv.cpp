// csv.cpp — RFC 4180 writing and reading (see csv.h).
#include "tools/util/csv.h"

#include "engine/error.h"
#include "tools/util/format.h"

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

namespace pf {

namespace fs = std::filesystem;

namespace {

struct Record {
    int line;  // where the record starts, 1-based
    std::vector<std::string> fields;
};

// Splits CSV text into records, at most max_records of them. Quoted fields may hold
// commas, doubled quotes and line breaks; lines may end in \n, \r\n or \r; blank
// lines are skipped. (text[text.size()] is '\0', so peeking one past the end is safe.)
std::vector<Record> parse_records(const std::string& text, const std::string& path,
                                  size_t max_records = std::numeric_limits<size_t>::max()) {
    std::vector<Record> records;
    size_t i = 0;
    int line = 1;
    auto at_line_end = [&] { return i >= text.size() || text[i] == '\n' || text[i] == '\r'; };
    auto skip_line_end = [&] {
        if (i < text.size() && text[i] == '\r') ++i;
        if (i < text.size() && text[i] == '\n') ++i;
        ++line;
    };
    while (i < text.size() && records.size() < max_records) {
        if (at_line_end()) {  // a blank line
            skip_line_end();
            continue;
        }
        Record record{line, {}};
        while (true) {  // one field per pass
            std::string field;
            if (text[i] == '"') {
                int opening_line = line;
                ++i;
                while (true) {
                    PF_CHECK(i < text.size(), "{}:{}: a quoted field is never closed", path,
                             opening_line);
                    char c = text[i++];
                    if (c == '"' && i < text.size() && text[i] == '"') {
                        field += '"';  // "" inside quotes is one quote
                        ++i;
                    } else if (c == '"') {
                        break;
                    } else {
                        if (c == '\n') ++line;
                        field += c;
                    }
                }
                PF_CHECK(at_line_end() || text[i] == ',', "{}:{}: text after a closing quote", path,
                         line);
            } else {
                while (!at_line_end() && text[i] != ',') field += text[i++];
            }
            record.fields.push_back(std::move(field));
            if (at_line_end()) break;
            ++i;  // the comma; another field follows, perhaps an empty one
        }
        skip_line_end();
        records.push_back(std::move(record));
    }
    return records;
}

std::string join_fields(const std::vector<std::string>& fields) {
    std::string text;
    for (size_t i = 0; i < fields.size(); ++i) {
        if (i > 0) text += ',';
        text += csv_field(fields[i]);
    }
    return text;
}

}  // namespace

std::string csv_line(const std::vector<std::string>& fields) {
    return (fields.size() == 1 && fields[0].empty() ? "\"\"" : join_fields(fields)) + "\n";
}

std::string csv_field(const std::string& text) {
    if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
    std::string quoted = "\"";
    for (char c : text) {
        if (c == '"') quoted += '"';  // a quote inside quotes is doubled
        quoted += c;
    }
    return quoted + "\"";
}

CsvWriter::CsvWriter(std::string path, std::vector<std::string> header, Mode mode)
    : path_(std::move(path)), header_(std::move(header)) {
    PF_CHECK(!header_.empty(), "{}: a CSV file needs at least one column", path_);
    std::error_code error;
    bool keep_existing = mode == Mode::Append && fs::exists(path_, error);
    if (keep_existing) {
        std::string text = read_file(path_);  // refuses what is not a regular file
        // A crash in the middle of a row leaves a partial last line: drop it. With no
        // complete line at all, not even the header made it, so start afresh.
        size_t last_newline = text.rfind('\n');
        size_t complete = last_newline == std::string::npos ? 0 : last_newline + 1;
        std::vector<Record> first = parse_records(text.substr(0, complete), path_, 1);
        keep_existing = !first.empty();
        if (keep_existing) {
            PF_CHECK(first[0].fields == header_,
                     "{}: the file has the columns {} but this run writes {}; write to a new "
                     "file or delete this one",
                     path_, join_fields(first[0].fields), join_fields(header_));
            if (complete < text.size()) write_file(path_, text.substr(0, complete));
        }
    }
    if (!keep_existing) write_file(path_, csv_line(header_));
    out_ = std::make_unique<AppendFile>(path_);
}

void CsvWriter::row(const std::vector<double>& values) {
    std::vector<std::string> fields;
    fields.reserve(values.size());
    for (double value : values) fields.push_back(format_exact(value));
    row(fields);
}

void CsvWriter::row(const std::vector<std::string>& fields) {
    PF_CHECK(fields.size() == header_.size(), "{}: a row of {} fields for {} columns ({})", path_,
             fields.size(), header_.size(), join_fields(header_));
    write_record(fields);
}

void CsvWriter::write_record(const std::vector<std::string>& fields) {
    out_->write(csv_line(fields));  // at once, so a crash keeps every finished row
}

size_t CsvTable::column(const std::string& name) const {
    for (size_t i = 0; i < header.size(); ++i)
        if (header[i] == name) return i;
    throw Error(fmt::format("{}: no column '{}' (columns: {})", path, name, join_fields(header)));
}

std::vector<double> CsvTable::numbers(const std::string& name) const {
    size_t index = column(name);
    std::vector<double> values;
    values.reserve(rows.size());
    for (size_t r = 0; r < rows.size(); ++r) values.push_back(number(r, index));
    return values;
}

double CsvTable::number(size_t row, size_t column) const {
    const std::string& text = rows[row][column];
    if (text.empty()) return std::numeric_limits<double>::quiet_NaN();
    // from_chars, unlike strtod, ignores the C locale: "2.5" is 2.5 everywhere.
    double value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    PF_CHECK(error == std::errc() && end == text.data() + text.size(),
             "{}:{}: column '{}': '{}' is not a number", path, lines[row], header[column], text);
    return value;
}

CsvTable read_csv(const std::string& path) { return parse_csv(read_file(path), path); }

CsvTable parse_csv(const std::string& text, const std::string& path) {
    std::vector<Record> records = parse_records(text, path);
    PF_CHECK(!records.empty(), "{}: empty file, expected a header line", path);
    CsvTable table{path, std::move(records[0].fields), {}, {}};
    for (size_t r = 1; r < records.size(); ++r) {
        PF_CHECK(records[r].fields.size() == table.header.size(),
                 "{}:{}: {} fields, but the header has {}", path, records[r].line,
                 records[r].fields.size(), table.header.size());
        table.rows.push_back(std::move(records[r].fields));
        table.lines.push_back(records[r].line);
    }
    return table;
}

}  // namespace pf
