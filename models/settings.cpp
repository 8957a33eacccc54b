// settings.cpp — the checks and descriptions of settings' values.
#include "models/settings.h"

#include <cfloat>
#include <charconv>

namespace pf::models {

namespace {

// A limit as people write it: 1, 0.99, 8999999999999999 (whole numbers in full).
std::string limit_text(double limit) {
    bool whole = limit == std::floor(limit) && std::fabs(limit) < 1e16;
    return whole ? fmt::format("{:.0f}", limit) : fmt::format("{:.6g}", limit);
}

std::string outside(const std::string& text, double least, double most) {
    return fmt::format("{} is outside {}", text, range_text(least, most));
}

}  // namespace

std::string range_text(double least, double most) {
    return fmt::format("{} .. {}", limit_text(least), limit_text(most));
}

std::string SettingInfo::problem(const std::string& text) const {
    switch (type) {
        case Type::Integer: {
            // Decimal digits with an optional sign: no "0x10", no "1e3", no spaces.
            size_t first_digit = !text.empty() && (text[0] == '-' || text[0] == '+') ? 1 : 0;
            if (first_digit == text.size() ||
                text.find_first_not_of("0123456789", first_digit) != std::string::npos)
                return fmt::format("'{}' is not a whole decimal number", text);
            int64_t value = 0;
            const char* begin = text.data() + (text[0] == '+' ? 1 : 0);
            auto [end, error] = std::from_chars(begin, text.data() + text.size(), value);
            if (error != std::errc() || double(value) < least || double(value) > most)
                return outside(text, least, most);
            return "";
        }
        case Type::Number: {
            size_t used = 0;
            double value = NAN;
            try {
                value = std::stod(text, &used);
            } catch (const std::exception&) {
                used = 0;
            }
            if (text.empty() || used != text.size() || !std::isfinite(value))
                return fmt::format("'{}' is not a finite number", text);
            if (in_float && std::fabs(value) > double(FLT_MAX))
                return fmt::format("{} is too large: a float holds at most {:g}", text,
                                   double(FLT_MAX));
            if (in_float && value != 0 && float(value) == 0)
                return fmt::format("{} is too small: a float would hold it as 0", text);
            if (positive && value <= 0) return fmt::format("{} is not positive", text);
            return value >= least && value <= most ? "" : outside(text, least, most);
        }
        case Type::Choice:
            if (std::find(choices.begin(), choices.end(), text) != choices.end()) return "";
            return fmt::format("'{}' is not one of {}", text, fmt::join(choices, ", "));
        case Type::Switch:
            return text == "0" || text == "1" ? "" : fmt::format("'{}' is neither 1 nor 0", text);
        case Type::Text:
            return "";
    }
    return "unknown type";
}

std::string SettingInfo::values() const {
    switch (type) {
        case Type::Integer:
            return most >= double(kLargestSettingInteger - 1) ? fmt::format("INT >= {}", least)
                                                               : "INT " + range_text(least, most);
        case Type::Number:
            if (most == HUGE_VAL) return fmt::format("NUMBER {} {}", positive ? ">" : ">=", least);
            return positive ? fmt::format("NUMBER > 0, <= {}", most) : "NUMBER " + range_text(least, most);
        case Type::Choice: return fmt::format("{}", fmt::join(choices, "|"));
        case Type::Switch: return "";
        case Type::Text: return "TEXT";
    }
    return "";
}

}  // namespace pf::models
