// test_layering.cpp — the include graph of the sources keeps its shape: layers include
// only lower layers (engine <- nn <- models <- tools), no two modules include each
// other, and the readers of formats (tools/data) know nothing of models.
//
// A module is a .h and its .cpp (engine/tensor.h and engine/tensor.cpp are the module
// engine/tensor); a module includes another if any of its files has #include "..." of
// one of the other's. Two modules that include each other are one tangle: what they
// share belongs in one of them or beneath both. The tests read the sources, found from
// the folder the suite runs in or one above it (make sanitize runs it in build/sanitize).
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

// The layers, lowest first: each may include only itself and the ones before it.
const std::vector<std::string> kLayers = {"engine", "nn", "models", "tools"};

// The repository root: the nearest of the current folder and its parents holding engine/.
fs::path source_root() {
    for (fs::path dir = fs::current_path();; dir = dir.parent_path()) {
        if (fs::exists(dir / "engine" / "tensor.h")) return dir;
        if (dir == dir.parent_path()) return {};
    }
}

// "nn/attention.h" → 1; -1 for a path outside the layers.
int layer_of(const std::string& path) {
    const std::string top = path.substr(0, path.find('/'));
    for (size_t i = 0; i < kLayers.size(); ++i)
        if (top == kLayers[i]) return int(i);
    return -1;
}

// "nn/attention.cpp" → "nn/attention".
std::string module_of(const std::string& path) { return fs::path(path).replace_extension().string(); }

struct Include {
    std::string file, included;  // paths from the root, as #include writes them
};

// Every #include "..." of every .h and .cpp under the layers' folders.
std::vector<Include> quoted_includes(const fs::path& root) {
    static const std::regex include_line(R"(^\s*#\s*include\s*"([^"]+)\")");
    std::vector<Include> includes;
    for (const std::string& layer : kLayers) {
        for (const auto& entry : fs::recursive_directory_iterator(root / layer)) {
            const std::string ext = entry.path().extension().string();
            if (!entry.is_regular_file() || (ext != ".h" && ext != ".cpp")) continue;
            const std::string file = fs::relative(entry.path(), root).generic_string();
            std::ifstream in(entry.path());
            std::smatch match;
            for (std::string line; std::getline(in, line);)
                if (std::regex_search(line, match, include_line)) includes.push_back({file, match[1]});
        }
    }
    return includes;
}

std::vector<Include> sources_includes() {
    const fs::path root = source_root();
    REQUIRE_FALSE(root.empty());  // run the suite from the repository (or below it)
    std::vector<Include> includes = quoted_includes(root);
    REQUIRE(includes.size() > 100);  // the sources were found and read
    return includes;
}

// The module pairs {a, b}, a < b, of which each includes the other, as "a <-> b".
std::vector<std::string> mutual_includes(const std::vector<Include>& includes) {
    std::set<std::pair<std::string, std::string>> edges;
    for (const Include& i : includes) {
        const std::string from = module_of(i.file), to = module_of(i.included);
        if (from != to) edges.insert({from, to});
    }
    std::vector<std::string> pairs;
    for (const auto& [from, to] : edges)
        if (from < to && edges.count({to, from})) pairs.push_back(from + " <-> " + to);
    return pairs;
}

}  // namespace

TEST_CASE("layering: no two modules include each other", "[layering]") {
    const std::vector<Include> includes = sources_includes();
    for (const std::string& pair : mutual_includes(includes)) FAIL_CHECK("include each other: " << pair);

    // The check itself: a cycle written into a copy of the graph is found and named.
    std::vector<Include> with_cycle = includes;
    with_cycle.push_back({"engine/ops.h", "engine/thread_pool.h"});
    with_cycle.push_back({"engine/thread_pool.cpp", "engine/ops.h"});
    const std::vector<std::string> found = mutual_includes(with_cycle);
    CHECK(std::count(found.begin(), found.end(), "engine/ops <-> engine/thread_pool") == 1);
}

TEST_CASE("layering: no file includes from a higher layer", "[layering]") {
    // engine must not include nn, models or tools; nn not models or tools; models not tools.
    for (const Include& i : sources_includes()) {
        const int from = layer_of(i.file), to = layer_of(i.included);
        if (to > from)
            FAIL_CHECK(i.file << " (" << kLayers[from] << ") includes " << i.included << " ("
                              << kLayers[to] << ", a higher layer)");
    }
}

TEST_CASE("layering: the readers of tools/data include nothing from models", "[layering]") {
    // Readers of formats return bytes and strings; what turns them into inputs and targets
    // (shifts, masks, start tokens) is the model's objective (models/objective.h).
    for (const Include& i : sources_includes())
        if (i.file.rfind("tools/data/", 0) == 0 && layer_of(i.included) == 2)
            FAIL_CHECK(i.file << " includes " << i.included << ": a reader of a format depends "
                              << "on a model");
}
