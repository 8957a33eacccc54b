// attention_page.h — the HTML page of build/explore: exact softmax attention beside FAVOR+
// with the model's features and with a fresh draw, for a layer and head picked on the page.
//
//   write_file("results/attention.html", attention_page(data.dump()));
//
// One self-contained file: HTML, CSS and a small script, the data embedded as JSON in a
// <script type="application/json"> element. The script only draws the numbers it is
// given (tools/explore.cpp says what they are); it computes no attention. The URL's
// hash picks what is shown first, e.g. attention.html#layer=1&head=2&m=256&row=40.
//
// What a browser test reads back (tests/test_explore.cpp): after drawing, the element
// #status carries data-state="ready" (or "error"), the layer, head and m shown, each
// panel's painted ink (data-ink-softmax, data-ink-model, data-ink-fresh: the sum of
// 255 - red over its heatmap's pixels, read back from the canvas), the hovered row, how
// many tokens of each strip are shaded (data-shaded) and the number of errors caught
// (data-errors; each error's text in #errors): uncaught exceptions and console.error.
#pragma once

#include <string>

namespace pf {

// The page with `data_json` embedded (any "</" in it escaped as "<\/", so that no text
// of the data can end the script element early).
std::string attention_page(const std::string& data_json);

}  // namespace pf
