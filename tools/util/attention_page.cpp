// attention_page.cpp — the page of build/explore (see attention_page.h): the HTML, CSS
// and script of attention_page.html, with the data put in its place.
#include "tools/util/attention_page.h"

#include <string_view>

namespace pf {

namespace {

// The page, tools/util/attention_page.html, which the Makefile wraps in R"page( ... )page"
// as build/gen/attention_page.inc; the data goes where @DATA@ stands.
constexpr std::string_view kPage =
#include "attention_page.inc"
    ;

}  // namespace

std::string attention_page(const std::string& data_json) {
    std::string escaped;
    escaped.reserve(data_json.size());
    for (size_t i = 0; i < data_json.size(); ++i) {
        if (data_json[i] == '<' && i + 1 < data_json.size() && data_json[i + 1] == '/') {
            escaped += "<\\/";
            ++i;
        } else {
            escaped += data_json[i];
        }
    }
    const std::string_view marker = "@DATA@";
    const size_t at = kPage.find(marker);
    return std::string(kPage.substr(0, at)) + escaped + std::string(kPage.substr(at + marker.size()));
}

}  // namespace pf
