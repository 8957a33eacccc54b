// settings.h — one description of each setting of a run, from which the programs'
// flags, a checkpoint's metadata and the checks of both are made.
//
//   Settings<ModelConfig> settings;
//   settings.integer("model.layers", "--layers", "Transformer blocks",
//                    [](auto& c) -> auto& { return c.layers; }, 1);
//
//   settings.write(config, checkpoint.config);         // {"model.layers": "4", ...}
//   settings.read(checkpoint.config, where, config);   // each value checked, or pf::Error
//   settings.check(config);                            // a config built in code
//   add_flags(app, settings, config);                  // --layers N (tools/util/cli.h)
//
// A setting names where its value lives with an accessor, a generic lambda returning a
// reference, so that one line serves both reading and writing. Every value has one text
// form, on the command line and in a checkpoint alike: integers in decimal, numbers as
// fmt writes them (the shortest text that reads back exactly), a choice by its name, a
// switch as 1 or 0.
#pragma once

#include "engine/error.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace pf::models {

// Integer settings lie strictly between -kLargestSettingInteger and it: programs refuse
// larger flags up front (a seed of 2^63 would not survive a round trip through JSON).
inline constexpr int64_t kLargestSettingInteger = 9'000'000'000'000'000;

using SettingsMap = std::map<std::string, std::string>;  // key → value text

// What a setting is, whatever options it belongs to.
struct SettingInfo {
    enum class Type { Integer, Number, Text, Choice, Switch };
    std::string key;    // in a checkpoint: "model.layers"
    std::string flag;   // on the command line: "--layers"; empty: set by the program only
    std::string help;
    Type type = Type::Text;
    double least = -HUGE_VAL, most = HUGE_VAL;  // Integer, Number: the range [least, most]
    bool positive = false;                      // Number: (0, most] instead
    bool in_float = false;                      // Number: kept in a float (1e39 refused)
    std::vector<std::string> choices;           // Choice: the names, in the enum's order
    // Settings added after checkpoints were first written: what an older checkpoint,
    // which lacks the key, means (the default); empty: the key is required.
    std::string value_if_missing;

    // "" if `text` is a value of this setting, else what is wrong with it, e.g.
    // "-3 is outside 1 .. 8999999999999999" or "'performer' is not one of softmax, ...".
    std::string problem(const std::string& text) const;
    // The values it takes, for --help: "INT >= 1", "NUMBER 0 .. 0.99", "softmax|favor|...".
    std::string values() const;
};

// "1 .. 0.99"-style text of a range, whole numbers in full (also used by cli.cpp).
std::string range_text(double least, double most);

template <class Options>
struct Setting : SettingInfo {
    std::function<std::string(const Options&)> get;          // the value as text
    std::function<void(Options&, const std::string&)> set;    // from text without a problem
};

template <class Options>
class Settings {
public:
    template <class Access>
    Settings& integer(std::string key, std::string flag, std::string help, Access access,
                      int64_t least, int64_t most = kLargestSettingInteger - 1) {
        Setting<Options> s = described(key, flag, help, SettingInfo::Type::Integer);
        s.least = double(least), s.most = double(most);
        s.get = [access](const Options& o) { return std::to_string(access(o)); };
        s.set = [access](Options& o, const std::string& text) {
            access(o) = std::remove_reference_t<decltype(access(o))>(std::stoll(text));
        };
        return add(std::move(s));
    }
    // A number in [least, most]; positive_only refuses 0 too (least 0: the range (0, most]).
    template <class Access>
    Settings& number(std::string key, std::string flag, std::string help, Access access,
                     double least, double most, bool positive_only = false) {
        Setting<Options> s = described(key, flag, help, SettingInfo::Type::Number);
        s.least = least, s.most = most;
        s.positive = positive_only;
        s.in_float = std::is_same_v<std::remove_cvref_t<decltype(access(std::declval<Options&>()))>,
                                    float>;
        s.get = [access](const Options& o) { return fmt::format("{}", access(o)); };
        s.set = [access](Options& o, const std::string& text) {
            access(o) = std::remove_reference_t<decltype(access(o))>(std::stod(text));
        };
        return add(std::move(s));
    }
    template <class Access>
    Settings& text(std::string key, std::string flag, std::string help, Access access) {
        Setting<Options> s = described(key, flag, help, SettingInfo::Type::Text);
        s.get = [access](const Options& o) { return std::string(access(o)); };
        s.set = [access](Options& o, const std::string& text) { access(o) = text; };
        return add(std::move(s));
    }
    // An enum (or a bool: names {false's, true's}) stored by name; names[i] is value i.
    template <class Access>
    Settings& choice(std::string key, std::string flag, std::string help, Access access,
                     std::vector<std::string> names) {
        Setting<Options> s = described(key, flag, help, SettingInfo::Type::Choice);
        s.choices = names;
        s.get = [access, names](const Options& o) { return names.at(size_t(access(o))); };
        s.set = [access, names](Options& o, const std::string& text) {
            size_t index = size_t(std::find(names.begin(), names.end(), text) - names.begin());
            access(o) = std::remove_reference_t<decltype(access(o))>(index);
        };
        return add(std::move(s));
    }
    // A bool that a flag without a value turns on.
    template <class Access>
    Settings& on_off(std::string key, std::string flag, std::string help, Access access) {
        Setting<Options> s = described(key, flag, help, SettingInfo::Type::Switch);
        s.get = [access](const Options& o) { return std::string(access(o) ? "1" : "0"); };
        s.set = [access](Options& o, const std::string& text) { access(o) = text == "1"; };
        return add(std::move(s));
    }

    // Marks the setting added last as newer than some checkpoints: one without its key
    // reads as the setting's default (the value in a default-constructed Options).
    Settings& missing_means_default() {
        settings_.back().value_if_missing = settings_.back().get(Options());
        return *this;
    }

    const std::vector<Setting<Options>>& all() const { return settings_; }
    const Setting<Options>* find_flag(const std::string& flag) const {
        for (const Setting<Options>& s : settings_)
            if (!s.flag.empty() && s.flag == flag) return &s;
        return nullptr;
    }

    void write(const Options& options, SettingsMap& map) const {
        for (const Setting<Options>& s : settings_) map[s.key] = s.get(options);
    }
    // Reads every setting from `map`, each checked; pf::Error names `where` and the key.
    void read(const SettingsMap& map, const std::string& where, Options& options) const {
        for (const Setting<Options>& s : settings_) {
            auto found = map.find(s.key);
            PF_CHECK(found != map.end() || !s.value_if_missing.empty(),
                     "{}: the configuration has no '{}'", where, s.key);
            const std::string& text = found != map.end() ? found->second : s.value_if_missing;
            std::string problem = s.problem(text);
            PF_CHECK(problem.empty(), "{}: '{}': {}", where, s.key, problem);
            s.set(options, text);
        }
    }
    // pf::Error naming the setting whose value is out of its range (options built in code).
    void check(const Options& options) const {
        for (const Setting<Options>& s : settings_) {
            std::string problem = s.problem(s.get(options));
            PF_CHECK(problem.empty(), "{}: {}", s.key, problem);
        }
    }

private:
    static Setting<Options> described(std::string& key, std::string& flag, std::string& help,
                                      SettingInfo::Type type) {
        Setting<Options> s;
        s.key = std::move(key), s.flag = std::move(flag), s.help = std::move(help), s.type = type;
        return s;
    }
    Settings& add(Setting<Options> s) {
        settings_.push_back(std::move(s));
        return *this;
    }
    std::vector<Setting<Options>> settings_;
};

}  // namespace pf::models
