// json.h — a small JSON writer for run summaries (summary.json and the like).
//
//   JsonObject model;
//   model.set("layers", 2).set("attention", "favor");
//   JsonObject summary;
//   summary.set("bits_per_byte", 1.93).set("steps", int64_t(1000)).set("model", model);
//   summary.write("runs/austen/summary.json");   // summary.dump(2) plus a newline
//
// gives
//   {
//     "bits_per_byte": 1.93,
//     "steps": 1000,
//     "model": {
//       "layers": 2,
//       "attention": "favor"
//     }
//   }
// Keys keep the order they were first set in; setting a key again replaces its value in
// place. Numbers are written so that they read back the same (format_exact); JSON has
// no NaN or infinity, so those are written as null. Strings are escaped as JSON
// requires and otherwise passed through byte for byte (UTF-8 stays UTF-8).
// Only writing: nothing in the project needs to parse JSON.
#pragma once

#include <concepts>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace pf {

class JsonObject {
public:
    JsonObject& set(const std::string& key, double value);
    JsonObject& set(const std::string& key, bool value);
    JsonObject& set(const std::string& key, const std::string& value);
    JsonObject& set(const std::string& key, const char* value);  // else "text" would pick bool
    JsonObject& set(const std::string& key, const JsonObject& value);  // a copy, taken now
    // Any integer type (int, int64_t, size_t, ...) is written as an integer.
    template <std::integral Integer>
        requires(!std::same_as<Integer, bool>)
    JsonObject& set(const std::string& key, Integer value) {
        return set_integer(key, value);
    }

    bool empty() const { return entries_.empty(); }
    size_t size() const { return entries_.size(); }

    // The JSON text. indent > 0: one member per line, nested objects indented by that
    // many more spaces; indent <= 0: all on one line, {"a": 1, "b": "x"}.
    std::string dump(int indent = 2) const;

    // dump(2) and a newline to the file, creating its directories; pf::Error on failure.
    void write(const std::string& path) const;

private:
    using Value = std::variant<bool, int64_t, uint64_t, double, std::string,
                               std::shared_ptr<const JsonObject>>;

    template <std::integral Integer>
    JsonObject& set_integer(const std::string& key, Integer value) {
        if constexpr (std::is_signed_v<Integer>) return set_value(key, int64_t(value));
        else return set_value(key, uint64_t(value));
    }
    JsonObject& set_value(const std::string& key, Value value);
    void dump_to(std::string& out, int indent, int depth) const;

    std::vector<std::pair<std::string, Value>> entries_;
};

// A JSON string literal, quotes included: "say \"hi\"\n".
std::string json_quote(const std::string& text);

// The number stored under "key" in JSON text written by JsonObject (the first such
// key at any depth), or NaN if there is none. Enough to read back our own summaries;
// not a JSON parser.
double json_number(const std::string& json, const std::string& key);

}  // namespace pf
