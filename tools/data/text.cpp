// text.cpp — loading text corpora.
#include "tools/data/text.h"

#include "engine/error.h"
#include "engine/files.h"

#include <algorithm>
#include <filesystem>
#include <vector>

namespace pf::data {

namespace {

constexpr double kHeldOutFraction = 0.1;  // of a single file, used as valid

std::string read_text(const std::string& path) {
    std::string text = read_file(path);
    PF_CHECK(!text.empty(), "{}: file is empty", path);
    return text;
}

std::string human_size(size_t bytes) {
    if (bytes < 1024) return fmt::format("{} bytes", bytes);
    if (bytes < 1024 * 1024) return fmt::format("{:.1f} KiB", double(bytes) / 1024);
    return fmt::format("{:.2f} MiB", double(bytes) / (1024 * 1024));
}

std::vector<std::string> split_on_commas(const std::string& list) {
    std::vector<std::string> parts;
    size_t begin = 0;
    while (true) {
        size_t comma = list.find(',', begin);
        parts.push_back(list.substr(begin, comma - begin));
        if (comma == std::string::npos) return parts;
        begin = comma + 1;
    }
}

// The first line start at or after 90% of the text; if no line starts there, the last
// line start before it; if the text is one line, exactly 90%.
size_t held_out_start(const std::string& text) {
    size_t target = size_t(double(text.size()) * (1 - kHeldOutFraction));
    target = std::max<size_t>(target, 1);
    size_t newline = text.find('\n', target - 1);
    if (newline != std::string::npos && newline + 1 < text.size()) return newline + 1;
    newline = text.rfind('\n', target - 1);
    if (newline != std::string::npos && newline + 1 < text.size()) return newline + 1;
    return target;
}

}  // namespace

TextCorpus load_text_corpus(const std::string& path) {
    namespace fs = std::filesystem;
    TextCorpus corpus;
    if (path.find(',') != std::string::npos) {
        std::vector<std::string> files = split_on_commas(path);
        for (size_t i = 0; i + 1 < files.size(); ++i) {
            PF_CHECK(!files[i].empty(), "{}: empty file name in the comma-separated list", path);
            std::string text = read_text(files[i]);
            // Keep files from running into each other mid-line.
            if (!corpus.train.empty() && corpus.train.back() != '\n') corpus.train += '\n';
            corpus.train += text;
        }
        PF_CHECK(!files.back().empty(), "{}: empty file name in the comma-separated list", path);
        corpus.valid = read_text(files.back());
        corpus.description = fmt::format("train: {} files, {}; valid: {}, {}", files.size() - 1,
                                         human_size(corpus.train.size()), files.back(),
                                         human_size(corpus.valid.size()));
    } else if (fs::is_directory(path)) {
        std::string train_path = (fs::path(path) / "train.txt").string();
        std::string valid_path = (fs::path(path) / "valid.txt").string();
        PF_CHECK(fs::exists(train_path) && fs::exists(valid_path),
                 "{}: a corpus directory needs train.txt and valid.txt (run `make data`)", path);
        corpus.train = read_text(train_path);
        corpus.valid = read_text(valid_path);
        corpus.description =
            fmt::format("train: {}, {}; valid: {}, {}", train_path, human_size(corpus.train.size()),
                        valid_path, human_size(corpus.valid.size()));
    } else {
        std::string text = read_text(path);
        PF_CHECK(text.size() >= 2, "{}: too short to hold out a validation part ({} byte)", path,
                 text.size());
        size_t cut = held_out_start(text);
        corpus.train = text.substr(0, cut);
        corpus.valid = text.substr(cut);
        corpus.description =
            fmt::format("{}: train {} (first {:.0f}%), valid {} (the rest)", path,
                        human_size(corpus.train.size()), 100.0 * double(cut) / double(text.size()),
                        human_size(corpus.valid.size()));
    }
    return corpus;
}

}  // namespace pf::data
