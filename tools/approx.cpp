// approx.cpp — the paper's attention-approximation experiment, with its theory beside it.
//
//   build/approx [--quick] [--trials 15] [--input-std 1] [--out results/approx.csv]
//
// For d = 16 and L = 4096 (--quick: L = 512, 5 trials), draw Q, K, V with N(0, 1)
// entries (Q and K: N(0, s^2) with --input-std s), compute exact softmax attention,
// and the FAVOR approximation with m random features for m in {16, 32, 64, 128, 256},
// for orthogonal and iid features, positive (FAVOR+) and trigonometric kernels, and
// FAVOR++'s positive features (orthogonal rows; A from the trial's own Q and K). Each
// trial draws new inputs and new features, and measures two errors with each draw:
//   - of the attention output (normalised): the mean over L x d of its squared error;
//   - of the attention matrix's entries (unnormalised) A_ij = exp(q^_i . k^_j), q^ = d^-1/4 q,
//     estimated by phi(q_i) . phi(k_j) with the plain feature maps (no stabiliser, no eps):
//     the mean squared error over the first 256 queries x the first 256 keys (65536 pairs;
//     the inputs are iid, so any 256 would do). Beside it, the error that Lemma 2 of the
//     paper predicts for iid rows (nn/feature_error.h), the mean over the same pairs. The
//     same again over the smaller half of those entries (A_ij below their median): where
//     the two kinds of features differ most.
//     Orthogonal rows are measured only: the lemma is for iid rows.
// Reports the mean errors (and their standard deviation over the trials) as tables, a
// CSV (features, kernel, m, mse_mean, mse_std, entry_mse_mean, entry_mse_std,
// entry_mse_predicted, small_entry_mse_mean, small_entry_mse_predicted; predictions empty
// for orthogonal rows) and a PNG of two log-log panels (outputs; entries, measured solid
// and predicted dashed). Ends with `result: ...`: the errors at the largest m, whether
// orthogonal positive features are the most accurate at every m and trig ones the least,
// the log-log slope of the error in m (-1 means "falls as 1/m"), the entries' errors
// at the largest m, measured and predicted, and FAVOR++'s A and its errors against
// FAVOR+'s (orthogonal positive) at every m.
#include "engine/ops.h"
#include "nn/attention.h"
#include "nn/feature_error.h"
#include "tools/util/cli.h"
#include "tools/util/csv.h"
#include "tools/util/plot.h"
#include "tools/util/progress.h"
#include "tools/util/result.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <algorithm>
#include <map>
#include <span>

using namespace pf;
using namespace pf::nn;

namespace {

// What the flags set.
struct Settings {
    bool quick = false;
    int trials = 15;
    int64_t length = 4096, dim = 16;
    float input_std = 1.0f;
    uint64_t seed = 0;
    std::string out = "results/approx.csv";
};

struct Variant {
    std::string features, kernel;  // "orthogonal" | "iid" | "favor++", "positive" | "trig"
    bool iid() const { return features == "iid"; }
    bool optimal() const { return features == "favor++"; }
    bool positive() const { return kernel == "positive"; }
    std::string name() const { return features + " " + kernel; }
};

// The numbers of random features m, and the kinds of features compared at each.
const std::vector<int64_t> kFeatureCounts = {16, 32, 64, 128, 256};
const std::vector<Variant> kVariants = {
    {"orthogonal", "positive"}, {"iid", "positive"}, {"orthogonal", "trig"}, {"iid", "trig"},
    {"favor++", "positive"}};
constexpr size_t kFavorPlusPlus = 4;  // its index in kVariants
// The entries of A compared: the first P = 256 queries against the first P keys.
constexpr int64_t kEntryRows = 256;

// errors[variant][m index][trial]: the mean squared error of each trial.
using Errors = std::vector<std::vector<std::vector<double>>>;
// means[variant][m index]: the mean over the trials (or another summary of them).
using Means = std::vector<std::vector<double>>;

// A mean squared error over one trial's P x P entries of A: over all of them, and over
// the smaller half (A_ij below the median).
struct EntryErrors {
    double all = 0, small = 0;
};

// What the trials measured, and what Lemma 2 predicts for the entries.
struct Measurements {
    Errors output, entries, small_entries;
    // Per trial, Lemma 2's error for one iid row (m = 1), the mean over the trial's pairs,
    // of positive and of trig features; for m rows it is this divided by m.
    std::vector<EntryErrors> lemma_positive, lemma_trig;
};

// Their means over the trials: [variant][m index]; predictions NaN for orthogonal rows.
struct Summary {
    Means output, output_std, entries, entries_std, predicted, small_entries, small_predicted;
};

// One trial's inputs, the exact softmax attention they give, and the entries compared.
struct Trial {
    Tensor q, k, v, exact;   // (1, 1, L, d) each
    Tensor q_rows, k_rows;   // the first P queries and keys: (1, 1, P, d)
    Tensor exact_entries;    // A_ij = exp(q_i . k_j / sqrt(d)) over those: (1, 1, P, P)
    Tensor small;            // 1 where A_ij is below the median of those, else 0: (1, 1, P, P)
};

// Least-squares slope of log(y) against log(x).
double log_log_slope(const std::vector<double>& x, const std::vector<double>& y) {
    double n = double(x.size()), sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (size_t i = 0; i < x.size(); ++i) {
        double lx = std::log(x[i]), ly = std::log(y[i]);
        sx += lx, sy += ly, sxx += lx * lx, sxy += lx * ly;
    }
    return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

// The mean of some numbers.
double mean_of(const std::vector<double>& xs) {
    double s = 0;
    for (double x : xs) s += x;
    return s / double(xs.size());
}

// Their standard deviation (dividing by n).
double std_of(const std::vector<double>& xs) {
    double mu = mean_of(xs), s = 0;
    for (double x : xs) s += (x - mu) * (x - mu);
    return std::sqrt(s / double(xs.size()));
}

// Draws Q, K, V, computes exact (bidirectional) softmax attention, and the exact entries
// of A for the first P queries and keys.
Trial draw_trial(const Settings& s, Generator& gen) {
    Trial t;
    t.q = Tensor::randn({1, 1, s.length, s.dim}, gen, 0.0f, s.input_std);
    t.k = Tensor::randn({1, 1, s.length, s.dim}, gen, 0.0f, s.input_std);
    t.v = Tensor::randn({1, 1, s.length, s.dim}, gen);
    t.exact = softmax_attention(t.q, t.k, t.v, /*causal=*/false);
    const int64_t rows = std::min(kEntryRows, s.length);
    t.q_rows = slice(t.q, 2, 0, rows);
    t.k_rows = slice(t.k, 2, 0, rows);
    Tensor logits = matmul(t.q_rows, t.k_rows, false, true);  // q_i . k_j: (1, 1, P, P)
    t.exact_entries = exp(mul_scalar(logits, 1.0f / std::sqrt(float(s.dim))));
    std::vector<float> entries = t.exact_entries.to_vector(), sorted = entries;
    std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 2, sorted.end());
    for (float& a : entries) a = a < sorted[sorted.size() / 2] ? 1.0f : 0.0f;
    t.small = Tensor::from_data(t.exact_entries.shape(), entries);
    return t;
}

// Lemma 2's error for one iid row (m = 1) of positive or trig features, the mean over the
// P x P pairs of scaled inputs (x, y) = (q^_i, k^_j), and over the smaller half of them.
EntryErrors lemma_for_one_row(const Trial& t, bool positive) {
    const int64_t P = t.q_rows.size(2), d = t.q_rows.size(3);
    const float scale = std::pow(float(d), -0.25f);  // x^ = d^-1/4 x
    std::vector<float> x = mul_scalar(t.q_rows, scale).to_vector();  // (P, d)
    std::vector<float> y = mul_scalar(t.k_rows, scale).to_vector();  // (P, d)
    std::vector<float> small = t.small.to_vector();                  // (P, P)
    double total = 0, total_small = 0, count_small = 0;
    for (int64_t i = 0; i < P; ++i)
        for (int64_t j = 0; j < P; ++j) {
            std::span<const float> xi(x.data() + i * d, d), yj(y.data() + j * d, d);
            double mse = positive ? positive_features_mse(xi, yj, 1) : trig_features_mse(xi, yj, 1);
            total += mse;
            total_small += small[i * P + j] * mse, count_small += small[i * P + j];
        }
    return {total / double(P * P), total_small / count_small};
}

// W (m, d): orthogonal or iid rows, as the variant says.
Tensor draw_features(const Variant& variant, int64_t m, int64_t dim, Generator& gen) {
    return variant.iid() ? gaussian_iid_matrix(m, dim, gen) : gaussian_orthogonal_matrix(m, dim, gen);
}

// FAVOR++'s A for a trial: from the mean |q^_i + k^_j|^2 over all its pairs.
double trial_favor_a(const Trial& t) {
    return favor_plus_plus_a(mean_pair_norm2(t.q, t.k)[0], t.q.shape().back());
}

// The mean squared error of the output of linear attention with features W (m, d).
double output_error(const Trial& t, const Variant& variant, const Tensor& W) {
    Tensor phi_q, phi_k;
    if (variant.positive()) {
        Tensor a;  // favor++: A for the one head
        if (variant.optimal()) a = Tensor::full({1}, float(trial_favor_a(t)));
        phi_q = favor_features(t.q, W, true, {}, a);
        phi_k = favor_features(t.k, W, false, {}, a);
    } else {
        phi_q = trig_features(t.q, W);
        phi_k = trig_features(t.k, W);
    }
    Tensor diff = sub(linear_attention(phi_q, phi_k, t.v, false), t.exact);
    return mean(mul(diff, diff)).item();
}

// The mean squared error of the estimated entries phi(q_i) . phi(k_j) against A_ij over
// the P x P pairs (all, and the smaller half), with the plain feature maps:
// favor_features' stabiliser would scale every entry (it cancels only in the output).
// phi: (1, 1, P, m) [trig: 2m]; the estimates (1, 1, P, P).
EntryErrors entry_error(const Trial& t, const Variant& variant, const Tensor& W) {
    auto phi = [&](const Tensor& x) {
        if (variant.optimal()) return optimal_positive_random_features(x, W, trial_favor_a(t));
        return variant.positive() ? positive_random_features(x, W) : trig_features(x, W);
    };
    Tensor diff = sub(matmul(phi(t.q_rows), phi(t.k_rows), false, true), t.exact_entries);
    Tensor squared = mul(diff, diff);
    return {mean(squared).item(), sum(mul(squared, t.small)).item() / sum(t.small).item()};
}

// Runs every trial: new inputs, then new features for every variant and m.
Measurements measure_errors(const Settings& s) {
    Measurements r;
    r.output = r.entries = r.small_entries =
        Errors(kVariants.size(), std::vector<std::vector<double>>(kFeatureCounts.size()));
    Generator gen(s.seed);
    // FAVOR++ draws its features from a stream of its own: adding it left every other
    // variant's draws, and so its numbers, as they were.
    Generator favor_plus_plus_gen(s.seed + 1000003);
    ProgressBar progress(s.trials, "approx");
    for (int trial = 0; trial < s.trials; ++trial) {
        Trial t = draw_trial(s, gen);
        r.lemma_positive.push_back(lemma_for_one_row(t, true));
        r.lemma_trig.push_back(lemma_for_one_row(t, false));
        for (size_t vi = 0; vi < kVariants.size(); ++vi)
            for (size_t mi = 0; mi < kFeatureCounts.size(); ++mi) {
                Tensor W = draw_features(kVariants[vi], kFeatureCounts[mi], s.dim,
                                         vi == kFavorPlusPlus ? favor_plus_plus_gen : gen);
                r.output[vi][mi].push_back(output_error(t, kVariants[vi], W));
                EntryErrors entries = entry_error(t, kVariants[vi], W);
                r.entries[vi][mi].push_back(entries.all);
                r.small_entries[vi][mi].push_back(entries.small);
            }
        progress.update(trial + 1);
    }
    progress.finish();
    return r;
}

// The mean over the trials of Lemma 2's one-row errors.
EntryErrors mean_over_trials(const std::vector<EntryErrors>& trials) {
    EntryErrors mean;
    for (const EntryErrors& e : trials)
        mean.all += e.all / double(trials.size()), mean.small += e.small / double(trials.size());
    return mean;
}

// The means and deviations over the trials, and Lemma 2's prediction for iid rows:
// predicted(m) = (mean over the trials of the one-row error) / m.
Summary summarize(const Measurements& r) {
    Summary summary;
    for (Means* means : {&summary.output, &summary.output_std, &summary.entries,
                         &summary.entries_std, &summary.predicted, &summary.small_entries,
                         &summary.small_predicted})
        means->assign(kVariants.size(), std::vector<double>(kFeatureCounts.size()));
    for (size_t vi = 0; vi < kVariants.size(); ++vi)
        for (size_t mi = 0; mi < kFeatureCounts.size(); ++mi) {
            summary.output[vi][mi] = mean_of(r.output[vi][mi]);
            summary.output_std[vi][mi] = std_of(r.output[vi][mi]);
            summary.entries[vi][mi] = mean_of(r.entries[vi][mi]);
            summary.entries_std[vi][mi] = std_of(r.entries[vi][mi]);
            summary.small_entries[vi][mi] = mean_of(r.small_entries[vi][mi]);
            const Variant& v = kVariants[vi];
            EntryErrors lemma = mean_over_trials(v.positive() ? r.lemma_positive : r.lemma_trig);
            double m = double(kFeatureCounts[mi]), none = std::nan("");
            summary.predicted[vi][mi] = v.iid() ? lemma.all / m : none;
            summary.small_predicted[vi][mi] = v.iid() ? lemma.small / m : none;
        }
    return summary;
}

// A table's first line: its title and the m of each column.
void print_header(const std::string& title) {
    fmt::print("\n{:<30}", title);
    for (int64_t m : kFeatureCounts) fmt::print(" {:>11}", fmt::format("m={}", m));
    fmt::print("\n");
}

// One row of a table: a label and a number per m ("nan" where there is none, e.g. no
// smaller half of a single entry at L = 1).
void print_row(const std::string& label, const std::vector<double>& values) {
    fmt::print("{:<30}", label);
    for (double value : values)
        fmt::print(" {:>11}", std::isnan(value) ? "nan" : fmt::format("{:.4g}", value));
    fmt::print("\n");
}

// A table of the entries' errors: each variant measured, and Lemma 2 below the iid ones.
void print_entry_table(const std::string& title, const Means& measured, const Means& predicted) {
    print_header(title);
    for (size_t vi = 0; vi < kVariants.size(); ++vi) {
        print_row(kVariants[vi].name(), measured[vi]);
        if (kVariants[vi].iid()) print_row(kVariants[vi].name() + ", Lemma 2", predicted[vi]);
    }
}

// The tables of mean errors: of the outputs, of the entries of A, of their smaller half.
void print_tables(const Summary& summary) {
    print_header("mean squared error of outputs");
    for (size_t vi = 0; vi < kVariants.size(); ++vi)
        print_row(kVariants[vi].name(), summary.output[vi]);
    print_entry_table("... of entries of A", summary.entries, summary.predicted);
    print_entry_table("... of the smaller half", summary.small_entries, summary.small_predicted);
}

// The CSV: a row per variant and m, the outputs' error, then the entries' (predictions
// left empty for orthogonal rows).
void write_csv(const std::string& out, const Summary& summary) {
    std::filesystem::path parent = std::filesystem::path(out).parent_path();
    std::filesystem::create_directories(parent.empty() ? "." : parent);
    CsvWriter csv(out, {"features", "kernel", "m", "mse_mean", "mse_std", "entry_mse_mean",
                        "entry_mse_std", "entry_mse_predicted", "small_entry_mse_mean",
                        "small_entry_mse_predicted"});
    auto number = [](double x) {
        return std::isnan(x) ? std::string() : fmt::format("{:.6g}", x);
    };
    for (size_t vi = 0; vi < kVariants.size(); ++vi)
        for (size_t mi = 0; mi < kFeatureCounts.size(); ++mi)
            csv.row(std::vector<std::string>{
                kVariants[vi].features, kVariants[vi].kernel, std::to_string(kFeatureCounts[mi]),
                number(summary.output[vi][mi]), number(summary.output_std[vi][mi]),
                number(summary.entries[vi][mi]), number(summary.entries_std[vi][mi]),
                number(summary.predicted[vi][mi]), number(summary.small_entries[vi][mi]),
                number(summary.small_predicted[vi][mi])});
}

// The panel of entries: each variant measured (solid), and Lemma 2 for iid rows (dashed,
// in the colour of its measurement).
PlotSpec entry_panel(const Settings& s, const Summary& summary) {
    PlotSpec plot;
    plot.title = fmt::format("Entries of A: measured (solid), Lemma 2 (dashed); first {0} x {0}",
                             std::min(kEntryRows, s.length));
    plot.xlabel = "random features m";
    plot.ylabel = "MSE of entries exp(q^.k^)";
    plot.log_x = plot.log_y = true;
    std::vector<double> ms(kFeatureCounts.begin(), kFeatureCounts.end());
    for (size_t vi = 0; vi < kVariants.size(); ++vi) {
        std::string name = kVariants[vi].name();
        int color = int(vi) + 1;
        plot.series.push_back({name, ms, summary.entries[vi], false, color});
        if (kVariants[vi].iid())
            plot.series.push_back({name + ", Lemma 2", ms, summary.predicted[vi], true, color});
    }
    return plot;
}

// Draws the mean errors against m, log-log: outputs and entries side by side, in a PNG
// beside the CSV.
void write_plot(const Settings& s, const Summary& summary) {
    PlotSpec plot;
    plot.title = fmt::format("Attention approximation error (d={}, L={}, Q, K ~ N(0, {}^2), "
                             "{} trials)", s.dim, s.length, s.input_std, s.trials);
    plot.xlabel = "random features m";
    plot.ylabel = "MSE of attention output";
    plot.log_x = plot.log_y = true;
    std::vector<double> ms(kFeatureCounts.begin(), kFeatureCounts.end());
    for (size_t vi = 0; vi < kVariants.size(); ++vi)
        plot.series.push_back({kVariants[vi].name(), ms, summary.output[vi], false, int(vi) + 1});
    std::string png = std::filesystem::path(s.out).replace_extension(".png").string();
    try {
        plot_png_panels(png, {plot, entry_panel(s, summary)});
        fmt::print("\nwrote {} and {}\n", s.out, png);
    } catch (const std::exception& e) {
        fmt::print(stderr, "warning: no plot: {}\n", e.what());
    }
}

// The paper's claims, checked on these numbers, and the entries' errors at the largest m,
// in the result line.
void print_result(const Summary& summary) {
    const Means& means = summary.output;
    bool orthogonal_positive_lowest = true, trig_highest = true;
    for (size_t mi = 0; mi < kFeatureCounts.size(); ++mi) {
        for (size_t vi = 1; vi < kFavorPlusPlus; ++vi)  // FAVOR+'s rivals in the paper
            orthogonal_positive_lowest &= means[0][mi] < means[vi][mi];
        double worst_positive = std::max(means[0][mi], means[1][mi]);
        trig_highest &= std::min(means[2][mi], means[3][mi]) > worst_positive;
    }
    std::vector<double> ms(kFeatureCounts.begin(), kFeatureCounts.end());
    ResultLine result;
    for (size_t vi = 0; vi < kVariants.size(); ++vi)
        result.add(fmt::format("mse_{}_{}_m256", kVariants[vi].kernel, kVariants[vi].features),
                   means[vi].back());
    result.add("orthogonal_positive_lowest", int64_t(orthogonal_positive_lowest));
    result.add("trig_highest", int64_t(trig_highest));
    result.add("slope_positive_orthogonal", log_log_slope(ms, means[0]));
    result.add("slope_positive_iid", log_log_slope(ms, means[1]));
    for (size_t vi = 0; vi < kVariants.size(); ++vi) {
        const Variant& v = kVariants[vi];
        result.add(fmt::format("entry_mse_{}_{}_m256", v.kernel, v.features),
                   summary.entries[vi].back());
        result.add(fmt::format("small_entry_mse_{}_{}_m256", v.kernel, v.features),
                   summary.small_entries[vi].back());
        if (!v.iid()) continue;
        result.add(fmt::format("entry_mse_predicted_{}_iid_m256", v.kernel),
                   summary.predicted[vi].back());
        result.add(fmt::format("small_entry_mse_predicted_{}_iid_m256", v.kernel),
                   summary.small_predicted[vi].back());
    }
    fmt::print("{}\n", result.str());
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Attention approximation error vs number of random features (Performer, Fig. 3)",
                 "approx"};
    Settings s;
    app.add_flag("--quick", s.quick, "L = 512 and 5 trials: a smoke run");
    app.add_option("--trials", s.trials, "independent trials per point")->check(positive());
    app.add_option("--length", s.length, "sequence length L")->check(positive());
    app.add_option("--dim", s.dim, "head dimension d")->check(positive());
    app.add_option("--input-std", s.input_std, "standard deviation of the entries of Q and K")
        ->check(positive());
    add_seed_option(app, s.seed, "random seed");
    app.add_option("--out", s.out, "CSV file; the PNG plot is written beside it")
        ->check(output_file());
    add_threads_option(app);
    return run_program(app, argc, argv, [&] {
        if (s.quick) {
            s.length = std::min<int64_t>(s.length, 512);
            s.trials = std::min(s.trials, 5);
        }
        fmt::print("attention approximation: d = {}, L = {}, {} trials, Q, K ~ N(0, {}^2), "
                   "V ~ N(0, 1)\n\n", s.dim, s.length, s.trials, s.input_std);
        Summary summary = summarize(measure_errors(s));
        print_tables(summary);
        write_csv(s.out, summary);
        write_plot(s, summary);
        print_result(summary);
        return 0;
    });
}
