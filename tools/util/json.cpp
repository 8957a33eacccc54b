// json.cpp — escaping, number formatting and indentation for JsonObject (see json.h).
#include "tools/util/json.h"

#include "engine/files.h"
#include "tools/util/format.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>

namespace pf {

std::string json_quote(const std::string& text) {
    std::string quoted = "\"";
    for (char c : text) {
        switch (c) {
            case '"': quoted += "\\\""; break;
            case '\\': quoted += "\\\\"; break;
            case '\b': quoted += "\\b"; break;
            case '\f': quoted += "\\f"; break;
            case '\n': quoted += "\\n"; break;
            case '\r': quoted += "\\r"; break;
            case '\t': quoted += "\\t"; break;
            default:
                // Other control characters have no short form; bytes >= 0x80 (UTF-8) pass.
                if (static_cast<unsigned char>(c) < 0x20)
                    quoted += fmt::format("\\u{:04x}", int(c));
                else quoted += c;
        }
    }
    return quoted + "\"";
}

JsonObject& JsonObject::set(const std::string& key, double value) { return set_value(key, value); }
JsonObject& JsonObject::set(const std::string& key, bool value) { return set_value(key, value); }
JsonObject& JsonObject::set(const std::string& key, const std::string& value) {
    return set_value(key, value);
}
JsonObject& JsonObject::set(const std::string& key, const char* value) {
    return set_value(key, std::string(value));
}
JsonObject& JsonObject::set(const std::string& key, const JsonObject& value) {
    return set_value(key, std::make_shared<const JsonObject>(value));
}

JsonObject& JsonObject::set_value(const std::string& key, Value value) {
    for (auto& [existing_key, existing_value] : entries_)
        if (existing_key == key) {
            existing_value = std::move(value);
            return *this;
        }
    entries_.emplace_back(key, std::move(value));
    return *this;
}

std::string JsonObject::dump(int indent) const {
    std::string out;
    dump_to(out, indent, 0);
    return out;
}

void JsonObject::dump_to(std::string& out, int indent, int depth) const {
    if (entries_.empty()) {
        out += "{}";
        return;
    }
    bool multiline = indent > 0;
    auto new_line = [&](int level) {
        out += '\n';
        out.append(size_t(indent) * level, ' ');
    };
    out += '{';
    for (size_t i = 0; i < entries_.size(); ++i) {
        const auto& [key, value] = entries_[i];
        if (i > 0) out += multiline ? "," : ", ";
        if (multiline) new_line(depth + 1);
        out += json_quote(key);
        out += ": ";
        std::visit(
            [&](const auto& v) {
                using T = std::decay_t<decltype(v)>;
                if constexpr (std::is_same_v<T, bool>) out += v ? "true" : "false";
                else if constexpr (std::is_same_v<T, double>)
                    out += std::isfinite(v) ? format_exact(v) : "null";
                else if constexpr (std::is_same_v<T, std::string>) out += json_quote(v);
                else if constexpr (std::is_same_v<T, std::shared_ptr<const JsonObject>>)
                    v->dump_to(out, indent, depth + 1);
                else out += fmt::format("{}", v);  // int64_t, uint64_t
            },
            value);
    }
    if (multiline) new_line(depth);
    out += '}';
}

void JsonObject::write(const std::string& path) const { write_file(path, dump(2) + "\n"); }

double json_number(const std::string& json, const std::string& key) {
    std::string quoted = json_quote(key) + ":";
    size_t at = json.find(quoted);
    if (at == std::string::npos) return NAN;
    const char* start = json.c_str() + at + quoted.size();
    char* end = nullptr;
    double value = std::strtod(start, &end);
    return end == start ? NAN : value;
}

}  // namespace pf
