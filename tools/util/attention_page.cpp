// attention_page.cpp — the page of build/explore (see attention_page.h): the HTML, CSS
// and script below, with the data put in its place.
#include "tools/util/attention_page.h"

#include <string_view>

namespace pf {

namespace {

// The page; the data goes where @DATA@ stands.
constexpr std::string_view kPage = R"page(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Attention explorer — performer.cpp</title>
<script>
// Errors first: anything thrown or logged as an error is kept and shown.
window.caughtErrors = [];
window.addEventListener('error', e => window.caughtErrors.push(String(e.message)));
(function () {
  const original = console.error.bind(console);
  console.error = (...args) => { window.caughtErrors.push(args.map(String).join(' ')); original(...args); };
})();
</script>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 16px; color: #222; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; }
.info { color: #555; margin-bottom: 10px; }
.controls { display: flex; gap: 18px; align-items: center; margin: 8px 0 12px; }
.controls label { font-weight: 600; }
.panels { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 16px; }
.panel { border: 1px solid #ccc; border-radius: 6px; padding: 8px; }
.panel h2 { font-size: 15px; margin: 0 0 2px; }
.panel .sub { color: #666; font-size: 12px; min-height: 32px; }
canvas.heat { width: 100%; aspect-ratio: 1; image-rendering: pixelated; border: 1px solid #999;
              cursor: crosshair; display: block; }
.strip { font-family: ui-monospace, monospace; font-size: 13px; margin-top: 8px; line-height: 1.9;
         word-break: break-all; }
.strip span { padding: 1px 0; border-radius: 2px; }
.strip span.row { outline: 2px solid #e07000; }
.strip span.future { color: #bbb; }
.rowline { margin-top: 6px; font-size: 13px; }
.missing { color: #888; font-style: italic; padding: 24px 8px; }
#hover { margin: 12px 0; padding: 6px 8px; background: #f6f6f6; border-radius: 4px; }
table { border-collapse: collapse; font-size: 12px; margin-top: 6px; }
th, td { padding: 1px 6px; text-align: right; }
th { background: #eee; position: sticky; top: 0; }
tr.row td { background: #ffe2c0; }
.tablewrap { max-height: 360px; overflow-y: auto; border: 1px solid #ddd; display: inline-block; }
.bar { display: inline-block; height: 9px; background: #c0392b; vertical-align: middle; }
.legend { margin-top: 14px; color: #333; max-width: 1100px; }
#errors { color: #b00; white-space: pre-wrap; }
</style>
</head>
<body>
<h1>Attention explorer: exact softmax and FAVOR+</h1>
<div class="info" id="info"></div>
<div class="controls">
  <span><label for="layer">layer</label> <select id="layer"></select></span>
  <span><label for="head">head</label> <select id="head"></select></span>
  <span><label for="m">fresh draw, m =</label> <select id="m"></select></span>
</div>
<div class="panels">
  <div class="panel" id="panel-softmax"><h2>exact softmax</h2>
    <div class="sub">softmax(q k<sup>T</sup> / &radic;d) of the model's own queries and keys</div>
    <canvas class="heat"></canvas><div class="rowline"></div><div class="strip"></div></div>
  <div class="panel" id="panel-model"><h2>FAVOR+, the model's features</h2>
    <div class="sub"></div>
    <canvas class="heat"></canvas><div class="rowline"></div><div class="strip"></div></div>
  <div class="panel" id="panel-fresh"><h2>FAVOR+, a fresh draw</h2>
    <div class="sub"></div>
    <canvas class="heat"></canvas><div class="rowline"></div><div class="strip"></div></div>
</div>
<div id="hover"></div>
<div class="tablewrap"><table id="rows"></table></div>
<div class="legend" id="legend"></div>
<div id="status" data-state="loading"></div>
<div id="errors"></div>
<script type="application/json" id="attention-data">@DATA@</script>
<script>
'use strict';
const data = JSON.parse(document.getElementById('attention-data').textContent);
const L = data.tokens.length;
const state = { layer: 0, head: 0, m: 0, row: L - 1 };  // m: an index into data.fresh_features
const $ = id => document.getElementById(id);
const fmt = (v, n = 3) => (v === null || v === undefined) ? '—' : Number(v).toFixed(n);

// The hash picks what is shown first: #layer=1&head=2&m=256&row=40.
function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  const pick = (name, count) => {
    const v = parseInt(params.get(name), 10);
    return Number.isInteger(v) && v >= 0 && v < count ? v : null;
  };
  state.layer = pick('layer', data.layers.length) ?? 0;
  state.head = pick('head', data.layers[0].length) ?? 0;
  const m = data.fresh_features.indexOf(parseInt(params.get('m'), 10));
  state.m = m >= 0 ? m : Math.max(0, data.fresh_features.indexOf(data.features));
  state.row = pick('row', L) ?? L - 1;
}
function writeHash() {
  const hash = `#layer=${state.layer}&head=${state.head}&m=${data.fresh_features[state.m]}&row=${state.row}`;
  history.replaceState(null, '', hash);
}

function option(select, value, text) {
  const o = document.createElement('option');
  o.value = value; o.textContent = text; select.appendChild(o);
}

// The three panels' matrices and per-row total variation for the current pick.
function current() {
  const h = data.layers[state.layer][state.head];
  return {
    head: h,
    panels: {
      softmax: { a: h.softmax, tv: null },
      model: { a: h.model, tv: h.model_tv },
      fresh: { a: h.fresh[state.m], tv: h.fresh_tv[state.m] },
    },
  };
}

// A heatmap, one pixel per entry: white 0 to dark blue 1, by sqrt(a) so that small
// weights show; the hovered row in orange. Returns the ink painted (sum of 255 - red).
function drawHeat(canvas, a) {
  canvas.width = L; canvas.height = L;
  const ctx = canvas.getContext('2d');
  const image = ctx.createImageData(L, L);
  for (let i = 0; i < L; ++i)
    for (let j = 0; j < L; ++j) {
      const t = Math.sqrt(Math.max(0, Math.min(1, a[i][j])));
      const p = 4 * (i * L + j);
      const rowColour = i === state.row;
      image.data[p] = Math.round(255 - t * (rowColour ? 30 : 235));
      image.data[p + 1] = Math.round(255 - t * (rowColour ? 140 : 200));
      image.data[p + 2] = Math.round(255 - t * (rowColour ? 255 : 80));
      image.data[p + 3] = 255;
    }
  ctx.putImageData(image, 0, 0);
  const back = ctx.getImageData(0, 0, L, L).data;
  let ink = 0;
  for (let p = 0; p < back.length; p += 4) ink += 255 - back[p];
  return ink;
}

// A strip of the tokens, each shaded by its weight in the hovered row (relative to the
// row's largest weight); the hovered token outlined, tokens after it grey when causal.
function drawStrip(strip, a) {
  strip.textContent = '';
  const row = a[state.row];
  const top = Math.max(...row) || 1;
  let shaded = 0;
  data.tokens.forEach((token, j) => {
    const span = document.createElement('span');
    span.textContent = token;
    span.title = `${j}: ${fmt(row[j], 4)}`;
    span.dataset.index = j;
    if (row[j] > 0) { span.style.background = `rgba(30, 80, 200, ${(row[j] / top).toFixed(3)})`; ++shaded; }
    if (row[j] / top > 0.55) span.style.color = '#fff';
    if (j === state.row) span.className = 'row';
    else if (data.causal && j > state.row) span.className = 'future';
    span.addEventListener('mouseenter', () => setRow(j));
    strip.appendChild(span);
  });
  return shaded;
}

function setRow(i) {
  if (i === state.row) return;
  state.row = i;
  render();
}

function renderTable(c) {
  const h = c.head, m = data.fresh_features[state.m];
  const table = $('rows');
  table.textContent = '';
  const header = table.insertRow();
  for (const text of ['i', 'token', 'TV model vs exact', `TV fresh m=${m} vs exact`,
                      '|x_i|²', '|y_i|²', 'mean |x_i + y_j|²']) {
    const th = document.createElement('th'); th.textContent = text; header.appendChild(th);
  }
  const bar = v => v === null || v === undefined ? '—'
    : `<span class="bar" style="width:${Math.round(60 * v)}px"></span> ${fmt(v)}`;
  for (let i = 0; i < L; ++i) {
    const tr = table.insertRow();
    if (i === state.row) tr.className = 'row';
    const cells = [i, data.tokens[i], bar(h.model_tv ? h.model_tv[i] : null),
                   bar(h.fresh_tv[state.m][i]), fmt(h.query_norm2[i], 2), fmt(h.key_norm2[i], 2),
                   fmt(h.sum_norm2[i], 2)];
    cells.forEach((v, k) => {
      const td = tr.insertCell();
      if (k === 2 || k === 3) td.innerHTML = v; else td.textContent = v;
    });
    tr.addEventListener('mouseenter', () => setRow(i));
  }
}

function render() {
  const c = current();
  const m = data.fresh_features[state.m];
  const status = $('status');
  const ink = {}, shaded = {};
  for (const [name, p] of Object.entries(c.panels)) {
    const panel = $('panel-' + name);
    const canvas = panel.querySelector('canvas'), strip = panel.querySelector('.strip');
    const line = panel.querySelector('.rowline');
    if (!p.a) {
      canvas.style.display = 'none';
      strip.innerHTML = '<div class="missing">This model was trained with ' + data.mechanism +
        ' attention: it has no random features of its own.</div>';
      line.textContent = '';
      ink[name] = 'none'; shaded[name] = 0;
      continue;
    }
    ink[name] = drawHeat(canvas, p.a);
    shaded[name] = drawStrip(strip, p.a);
    line.textContent = `row ${state.row} "${data.tokens[state.row]}"` +
      (p.tv ? `: total variation from exact ${fmt(p.tv[state.row])}` : '');
  }
  $('panel-model').querySelector('.sub').textContent = data.layers[0][0].model
    ? `phi(q) phi(k)^T row-normalised, with the m = ${data.features} features W the model was trained with`
    : 'no features: not a FAVOR+ model';
  $('panel-fresh').querySelector('.sub').textContent =
    `the same with W drawn anew (seed ${data.seed}) at m = ${m}`;
  const h = c.head, i = state.row;
  $('hover').textContent = `Row ${i} ("${data.tokens[i]}"): |x_i|² = ${fmt(h.query_norm2[i], 2)}, ` +
    `|y_i|² = ${fmt(h.key_norm2[i], 2)}, mean |x_i + y_j|² over the keys it attends = ` +
    `${fmt(h.sum_norm2[i], 2)}; total variation from exact: model's features ` +
    `${fmt(h.model_tv ? h.model_tv[i] : null)}, fresh m = ${m} ${fmt(h.fresh_tv[state.m][i])}.`;
  renderTable(c);
  $('layer').value = state.layer; $('head').value = state.head; $('m').value = state.m;
  Object.assign(status.dataset, {
    layer: state.layer, head: state.head, m, row: state.row,
    inkSoftmax: ink.softmax, inkModel: ink.model, inkFresh: ink.fresh,
    shaded: `${shaded.softmax},${shaded.model},${shaded.fresh}`,
  });
  writeHash();
}

function setup() {
  $('info').textContent = `${data.checkpoint}: ${data.task} model, ${data.mechanism} attention` +
    (data.mechanism === 'favor' ? ` (m = ${data.features})` : '') + `, step ${data.step}, ` +
    `${data.layers.length} layers x ${data.layers[0].length} heads, ${L} positions` +
    (data.causal ? ', causal (row i attends j ≤ i)' : ', bidirectional') + '.';
  data.layers.forEach((_, l) => option($('layer'), l, l));
  data.layers[0].forEach((_, h) => option($('head'), h, h));
  data.fresh_features.forEach((m, k) => option($('m'), k, m));
  $('layer').addEventListener('change', e => { state.layer = +e.target.value; render(); });
  $('head').addEventListener('change', e => { state.head = +e.target.value; render(); });
  $('m').addEventListener('change', e => { state.m = +e.target.value; render(); });
  for (const name of ['softmax', 'model', 'fresh']) {
    const canvas = $('panel-' + name).querySelector('canvas');
    canvas.addEventListener('mousemove', e => {
      const r = canvas.getBoundingClientRect();
      setRow(Math.min(L - 1, Math.max(0, Math.floor((e.clientY - r.top) / r.height * L))));
    });
  }
  $('legend').innerHTML =
    '<b>Reading the page.</b> Each heatmap is an attention matrix: row i (a query) gives the ' +
    'weights over keys j, each row summing to 1; shade is √weight, white 0, dark 1; the hovered ' +
    'row in orange. <i>Exact softmax</i> is what softmax attention would compute from this ' +
    'layer\'s queries and keys; <i>FAVOR+, the model\'s features</i> is what the model computes; ' +
    '<i>a fresh draw</i> replaces W by a new draw of m features. Hover a token, a row of a ' +
    'heatmap or of the table: the strips shade the keys that query attends to. Total variation ' +
    '(TV) is ½ Σ_j |a_ij − b_ij|: 0 the same weights, 1 disjoint. x = q d<sup>−1/4</sup>, ' +
    'y = k d<sup>−1/4</sup>: by Lemma 2 the relative error of one entry grows like ' +
    '√((e<sup>|x+y|²</sup> − 1) / m), so rows with long queries and keys are where FAVOR+ departs ' +
    'from softmax. All numbers were computed by build/explore (nn/feature_error.h); see ' +
    `<a href="${data.favor_doc}">docs/favor.md</a> and docs/approximation.md.`;
}

try {
  setup();
  readHash();
  render();
  window.addEventListener('hashchange', () => { readHash(); render(); });
} catch (e) {
  window.caughtErrors.push(String(e && e.stack || e));
}
const statusElement = $('status');
statusElement.dataset.errors = window.caughtErrors.length;
statusElement.dataset.state = window.caughtErrors.length ? 'error' : 'ready';
$('errors').textContent = window.caughtErrors.join('\n');
</script>
</body>
</html>
)page";

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
