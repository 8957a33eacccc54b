// ops_nn.cpp — fused ops that neural networks use on every step: softmax,
// log_softmax, layer_norm, cross_entropy, embedding, dropout, cumsum and cummax.
//
// Each could be composed from primitives; fused, it reads its input once per pass,
// is numerically stable (max subtraction) and saves little for backward. Row-wise
// ops give each thread whole rows; column sums over rows (layer_norm's weight and
// bias gradients) add fixed blocks of rows in order, so results never depend on the
// thread count.
#include "engine/kernels.h"
#include "engine/ops.h"
#include "engine/random.h"

#include <cmath>
#include <limits>

namespace pf {

using kernels::AxisView;
using kernels::fast_exp;
using kernels::around_axis;
using kernels::row_grain;

namespace {
// Rows of the last axis: (rows, D).
std::pair<int64_t, int64_t> rows_of(const Tensor& x, const char* op_name) {
    PF_CHECK(x.dim() >= 1, "{}: needs at least one axis, got shape {}", op_name,
             shape_str(x.shape()));
    int64_t D = x.shape().back();
    return {D == 0 ? 0 : x.numel() / D, D};
}
}  // namespace

// softmax over the last axis (columns j < n_r, all of them unless causal):
//   y_j = e^(s x_j - m) / sum_{k < n_r} e^(s x_k - m),  m = max_k s x_k;   y_j = 0 for j >= n_r
//   dx_j = s y_j (g_j - sum_k g_k y_k)
Tensor softmax(const Tensor& x, float scale, bool causal) {
    auto [rows, D] = rows_of(x, "softmax");
    PF_CHECK(!causal || x.dim() >= 2, "softmax: causal needs at least 2 axes, got {}",
             shape_str(x.shape()));
    int64_t matrix_rows = causal ? x.shape()[x.dim() - 2] : 1;
    // Columns row r may see: all, or up to its row index in its matrix.
    auto visible = [=](int64_t r) { return causal ? std::min(D, r % matrix_rows + 1) : D; };
    Tensor y = Tensor::empty(x.shape());
    const float* in = x.data();
    float* out = y.mutable_data();
    parallel_for(rows, row_grain(D), [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
            const float* xr = in + r * D;
            float* yr = out + r * D;
            int64_t n = visible(r);
            float m = -std::numeric_limits<float>::infinity();
            for (int64_t j = 0; j < n; ++j) m = std::max(m, scale * xr[j]);
            for (int64_t j = 0; j < n; ++j) yr[j] = fast_exp(scale * xr[j] - m);
            double total = 0;
            for (int64_t j = 0; j < n; ++j) total += yr[j];
            float inverse = float(1.0 / total);
            for (int64_t j = 0; j < n; ++j) yr[j] *= inverse;
            std::fill(yr + n, yr + D, 0.0f);
        }
    });
    return record("softmax", y, {x}, [rows, D, scale, visible, sy = SavedTensor(y)](const Tensor& g) {
        Tensor y = sy.get(), dx = Tensor::empty(y.shape());
        const float* yd = y.data();
        const float* gd = g.data();
        float* d = dx.mutable_data();
        parallel_for(rows, row_grain(D), [&](int64_t begin, int64_t end) {
            for (int64_t r = begin; r < end; ++r) {
                const float *yr = yd + r * D, *gr = gd + r * D;
                int64_t n = visible(r);
                double dot = 0;
                for (int64_t j = 0; j < n; ++j) dot += gr[j] * yr[j];
                for (int64_t j = 0; j < n; ++j) d[r * D + j] = scale * yr[j] * (gr[j] - float(dot));
                std::fill(d + r * D + n, d + (r + 1) * D, 0.0f);
            }
        });
        return Grads{dx};
    });
}

// log_softmax over the last axis:  y_j = x_j - m - log sum_k e^(x_k - m)
//   dx_j = g_j - e^(y_j) sum_k g_k
Tensor log_softmax(const Tensor& x) {
    auto [rows, D] = rows_of(x, "log_softmax");
    Tensor y = Tensor::empty(x.shape());
    const float* in = x.data();
    float* out = y.mutable_data();
    parallel_for(rows, row_grain(D), [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
            const float* xr = in + r * D;
            float m = -std::numeric_limits<float>::infinity();
            for (int64_t j = 0; j < D; ++j) m = std::max(m, xr[j]);
            float* yr = out + r * D;
            for (int64_t j = 0; j < D; ++j) yr[j] = fast_exp(xr[j] - m);  // scratch
            double total = 0;
            for (int64_t j = 0; j < D; ++j) total += yr[j];
            float log_total = m + float(std::log(total));
            for (int64_t j = 0; j < D; ++j) yr[j] = xr[j] - log_total;
        }
    });
    return record("log_softmax", y, {x}, [rows, D, sy = SavedTensor(y)](const Tensor& g) {
        Tensor y = sy.get(), dx = Tensor::empty(y.shape());
        const float* yd = y.data();
        const float* gd = g.data();
        float* d = dx.mutable_data();
        parallel_for(rows, row_grain(D), [&](int64_t begin, int64_t end) {
            for (int64_t r = begin; r < end; ++r) {
                double total = 0;
                for (int64_t j = 0; j < D; ++j) total += gd[r * D + j];
                for (int64_t j = 0; j < D; ++j)
                    d[r * D + j] = gd[r * D + j] - fast_exp(yd[r * D + j]) * float(total);
            }
        });
        return Grads{dx};
    });
}

// layer_norm over the last axis (D), per row:
//   mu = mean(x),  rstd = 1 / sqrt(var(x) + eps),  xhat = (x - mu) rstd,  y = xhat w + b
//   with h = g w:  dx = rstd (h - mean(h) - xhat mean(h xhat)),
//                  dw = sum over rows of g xhat,  db = sum over rows of g
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) {
    auto [rows, D] = rows_of(x, "layer_norm");
    PF_CHECK(!weight.defined() || weight.shape() == Shape{D},
             "layer_norm: weight of shape {} for input {} (want ({}))",
             shape_str(weight.shape()), shape_str(x.shape()), D);
    PF_CHECK(!bias.defined() || bias.shape() == Shape{D},
             "layer_norm: bias of shape {} for input {} (want ({}))", shape_str(bias.shape()),
             shape_str(x.shape()), D);
    Tensor y = Tensor::empty(x.shape());
    auto mean = std::make_shared<std::vector<float>>(rows);
    auto rstd = std::make_shared<std::vector<float>>(rows);
    const float* in = x.data();
    const float* w = weight.defined() ? weight.data() : nullptr;
    const float* b = bias.defined() ? bias.data() : nullptr;
    float* out = y.mutable_data();
    parallel_for(rows, row_grain(D), [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
            const float* xr = in + r * D;
            double s = 0, ss = 0;
            for (int64_t j = 0; j < D; ++j) s += xr[j];
            float mu = float(s / D);
            for (int64_t j = 0; j < D; ++j) ss += double(xr[j] - mu) * (xr[j] - mu);
            float rs = float(1.0 / std::sqrt(ss / D + eps));
            (*mean)[r] = mu;
            (*rstd)[r] = rs;
            float* yr = out + r * D;
            for (int64_t j = 0; j < D; ++j) {
                float xhat = (xr[j] - mu) * rs;
                yr[j] = (w ? xhat * w[j] : xhat) + (b ? b[j] : 0.0f);
            }
        }
    });
    std::vector<Tensor> inputs{x};
    if (weight.defined()) inputs.push_back(weight);
    if (bias.defined()) inputs.push_back(bias);
    bool has_w = weight.defined(), has_b = bias.defined();
    return record("layer_norm", y, inputs, [=, sx = SavedTensor(x), sw = SavedTensor(weight)](
                                                const Tensor& g) {
        Tensor x = sx.get(), dx = Tensor::empty(x.shape());
        const float* xd = x.data();
        const float* gd = g.data();
        const float* wd = has_w ? sw.get().data() : nullptr;
        float* d = dx.mutable_data();
        // Fixed blocks of rows, each with its own partial dw, db; added in order below.
        constexpr int64_t kBlock = 64;
        int64_t blocks = (rows + kBlock - 1) / kBlock;
        std::vector<double> partial_w(has_w ? blocks * D : 0), partial_b(has_b ? blocks * D : 0);
        parallel_pieces(blocks, [&](int64_t block) {
            std::vector<float> h(D);
            for (int64_t r = block * kBlock; r < std::min(rows, (block + 1) * kBlock); ++r) {
                const float* xr = xd + r * D;
                const float* gr = gd + r * D;
                float mu = (*mean)[r], rs = (*rstd)[r];
                double h_mean = 0, hx_mean = 0;
                for (int64_t j = 0; j < D; ++j) {
                    float xhat = (xr[j] - mu) * rs;
                    h[j] = wd ? gr[j] * wd[j] : gr[j];
                    h_mean += h[j];
                    hx_mean += h[j] * xhat;
                    if (has_w) partial_w[block * D + j] += gr[j] * xhat;
                    if (has_b) partial_b[block * D + j] += gr[j];
                }
                h_mean /= D;
                hx_mean /= D;
                for (int64_t j = 0; j < D; ++j) {
                    float xhat = (xr[j] - mu) * rs;
                    d[r * D + j] = rs * (h[j] - float(h_mean) - xhat * float(hx_mean));
                }
            }
        });
        auto column_sums = [&](const std::vector<double>& partial) {
            Tensor out = Tensor::empty({D});
            float* o = out.mutable_data();
            for (int64_t j = 0; j < D; ++j) {
                double s = 0;
                for (int64_t block = 0; block < blocks; ++block) s += partial[block * D + j];
                o[j] = float(s);
            }
            return out;
        };
        Grads grads{dx};
        if (has_w) grads.push_back(column_sums(partial_w));
        if (has_b) grads.push_back(column_sums(partial_b));
        return grads;
    });
}

// cross_entropy, for rows i with t_i != ignore (n of them):
//   loss = (1/n) sum_i [ log sum_j e^(x_ij) - x_{i,t_i} ]
//   dx_ij = g/n (softmax(x_i)_j - [j = t_i]) for those rows, 0 for ignored rows.
// With every row ignored the loss is 0 (and so is the gradient).
Tensor cross_entropy(const Tensor& logits, const std::vector<int32_t>& targets,
                     int32_t ignore_index) {
    PF_CHECK(logits.dim() == 2, "cross_entropy: logits must be (N, C), got {}",
             shape_str(logits.shape()));
    int64_t N = logits.shape()[0], C = logits.shape()[1];
    PF_CHECK(int64_t(targets.size()) == N, "cross_entropy: {} targets for logits {}",
             targets.size(), shape_str(logits.shape()));
    int64_t count = 0;
    for (int64_t i = 0; i < N; ++i) {
        int32_t t = targets[i];
        if (t == ignore_index) continue;
        PF_CHECK(t >= 0 && t < C, "cross_entropy: target {} at row {} out of range [0, {}) for "
                 "logits {}", t, i, C, shape_str(logits.shape()));
        ++count;
    }
    auto log_total = std::make_shared<std::vector<float>>(N);  // log sum_j e^(x_ij)
    std::vector<double> row_loss(N, 0.0);
    const float* x = logits.data();
    parallel_for(N, row_grain(C), [&](int64_t begin, int64_t end) {
        std::vector<float> e(C);
        for (int64_t i = begin; i < end; ++i) {
            const float* xr = x + i * C;
            float m = -std::numeric_limits<float>::infinity();
            for (int64_t j = 0; j < C; ++j) m = std::max(m, xr[j]);
            for (int64_t j = 0; j < C; ++j) e[j] = fast_exp(xr[j] - m);
            double total = 0;
            for (int64_t j = 0; j < C; ++j) total += e[j];
            (*log_total)[i] = m + float(std::log(total));
            if (targets[i] != ignore_index) row_loss[i] = (*log_total)[i] - xr[targets[i]];
        }
    });
    double loss = 0;
    for (double l : row_loss) loss += l;
    Tensor y = Tensor::scalar(count ? float(loss / count) : 0.0f);
    return record("cross_entropy", y, {logits}, [=, sx = SavedTensor(logits)](const Tensor& g) {
        Tensor x = sx.get(), dx = Tensor::empty(x.shape());
        const float* xd = x.data();
        float* d = dx.mutable_data();
        float scale = count ? g.item() / float(count) : 0.0f;
        parallel_for(N, row_grain(C), [&](int64_t begin, int64_t end) {
            for (int64_t i = begin; i < end; ++i) {
                if (targets[i] == ignore_index) {
                    std::fill_n(d + i * C, C, 0.0f);
                    continue;
                }
                for (int64_t j = 0; j < C; ++j)
                    d[i * C + j] = scale * fast_exp(xd[i * C + j] - (*log_total)[i]);
                d[i * C + targets[i]] -= scale;
            }
        });
        return Grads{dx};
    });
}

// embedding:  y[n] = W[ids[n]]                 dW[v] = sum over n with ids[n] = v of g[n]
Tensor embedding(const Tensor& weight, const std::vector<int32_t>& ids) {
    PF_CHECK(weight.dim() == 2, "embedding: weight must be (V, D), got {}",
             shape_str(weight.shape()));
    int64_t V = weight.shape()[0], D = weight.shape()[1], N = int64_t(ids.size());
    for (int64_t n = 0; n < N; ++n)
        PF_CHECK(ids[n] >= 0 && ids[n] < V, "embedding: id {} at position {} out of range [0, {}) "
                 "for weight {}", ids[n], n, V, shape_str(weight.shape()));
    Tensor y = Tensor::empty({N, D});
    const float* w = weight.data();
    float* out = y.mutable_data();
    parallel_for(N, row_grain(D), [&](int64_t begin, int64_t end) {
        for (int64_t n = begin; n < end; ++n)
            std::copy_n(w + int64_t(ids[n]) * D, D, out + n * D);
    });
    return record("embedding", y, {weight}, [ids, V, D](const Tensor& g) {
        // Scatter-add in position order on one thread: ids repeat, so rows collide.
        Tensor dW = Tensor::zeros({V, D});
        float* d = dW.mutable_data();
        const float* gd = g.data();
        for (size_t n = 0; n < ids.size(); ++n)
            for (int64_t j = 0; j < D; ++j) d[int64_t(ids[n]) * D + j] += gd[n * D + j];
        return Grads{dW};
    });
}

// dropout:  keep_i ~ Bernoulli(1 - p),  y = x keep / (1 - p)     dx = g keep / (1 - p)
// keep_i is the draw at counter first + i.
Tensor dropout(const Tensor& x, float p, const Generator& gen, uint64_t first) {
    PF_CHECK(p >= 0 && p < 1, "dropout: probability {} not in [0, 1)", p);
    if (p == 0) return x;
    Tensor mask = Tensor::empty(x.shape());  // 0 or 1 / (1 - p)
    float* m = mask.mutable_data();
    float scale = 1.0f / (1.0f - p);
    parallel_for(x.numel(), kernels::kElementwiseGrain, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) m[i] = gen.uniform_at(first + i) < p ? 0.0f : scale;
    });
    Tensor y = kernels::map(x, mask, [](float xi, float mi) { return xi * mi; });
    return record("dropout", y, {x}, [sm = SavedTensor(mask)](const Tensor& g) {
        return Grads{mul(g, sm.get())};
    });
}

// At the next x.numel() counters of gen; none are used when p = 0.
Tensor dropout(const Tensor& x, float p, Generator& gen) {
    return dropout(x, p, gen, gen.advance(p == 0 ? 0 : uint64_t(x.numel())));
}

// cumsum along an axis:  y_i = sum_{j <= i} x_j       dx_j = sum_{i >= j} g_i
Tensor cumsum(const Tensor& x, int64_t axis) {
    axis = normalize_axis(axis, x.dim(), "cumsum");
    AxisView v = around_axis(x.shape(), axis);
    // One running sum per (o, i) line; `reverse` runs from the end (for the backward).
    auto scan = [v](const Tensor& in, bool reverse) {
        Tensor out = Tensor::empty(in.shape());
        const float* src = in.data();
        float* dst = out.mutable_data();
        parallel_for(v.outer, row_grain(v.n * v.inner), [&](int64_t begin, int64_t end) {
            std::vector<double> running(v.inner);
            for (int64_t o = begin; o < end; ++o) {
                std::fill(running.begin(), running.end(), 0.0);
                for (int64_t step = 0; step < v.n; ++step) {
                    int64_t k = reverse ? v.n - 1 - step : step;
                    int64_t base = (o * v.n + k) * v.inner;
                    for (int64_t i = 0; i < v.inner; ++i)
                        dst[base + i] = float(running[i] += src[base + i]);
                }
            }
        });
        return out;
    };
    Tensor y = scan(x, false);
    return record("cumsum", y, {x}, [scan](const Tensor& g) { return Grads{scan(g, true)}; });
}

// cummax along an axis (a running maximum):  y_i = max_{j <= i} x_j = x_{a_i}
//   dx_j = sum of g_i over the i with a_i = j (the first position holding the maximum).
// A NaN never becomes the maximum (comparisons with it are false).
Tensor cummax(const Tensor& x, int64_t axis) {
    axis = normalize_axis(axis, x.dim(), "cummax");
    AxisView v = around_axis(x.shape(), axis);
    Tensor y = Tensor::empty(x.shape());
    // a: for each output, the index along the axis of the element it copies.
    auto argmax = std::make_shared<std::vector<int64_t>>(x.numel());
    const float* src = x.data();
    float* dst = y.mutable_data();
    parallel_for(v.outer, row_grain(v.n * v.inner), [&](int64_t begin, int64_t end) {
        for (int64_t o = begin; o < end; ++o)
            for (int64_t i = 0; i < v.inner; ++i) {
                int64_t best = 0;
                for (int64_t k = 0; k < v.n; ++k) {
                    int64_t at = (o * v.n + k) * v.inner + i;
                    if (k == 0 || src[at] > src[(o * v.n + best) * v.inner + i]) best = k;
                    dst[at] = src[(o * v.n + best) * v.inner + i];
                    (*argmax)[at] = best;
                }
            }
    });
    return record("cummax", y, {x}, [v, argmax](const Tensor& g) {
        Tensor dx = Tensor::zeros(g.shape());
        const float* gd = g.data();
        float* d = dx.mutable_data();
        parallel_for(v.outer, row_grain(v.n * v.inner), [&](int64_t begin, int64_t end) {
            for (int64_t o = begin; o < end; ++o)
                for (int64_t k = 0; k < v.n; ++k)
                    for (int64_t i = 0; i < v.inner; ++i) {
                        int64_t at = (o * v.n + k) * v.inner + i;
                        d[(o * v.n + (*argmax)[at]) * v.inner + i] += gd[at];
                    }
        });
        return Grads{dx};
    });
}

}  // namespace pf
