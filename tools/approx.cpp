// approx.cpp — the paper's attention-approximation experiment.
//
//   build/approx [--quick] [--trials 15] [--input-std 1] [--out results/approx.csv]
//
// For d = 16 and L = 4096 (--quick: L = 512, 5 trials), draw Q, K, V with N(0, 1)
// entries (Q and K: N(0, s^2) with --input-std s), compute exact softmax attention,
// and the FAVOR approximation with m random features for m in {16, 32, 64, 128, 256},
// for orthogonal and iid features, positive (FAVOR+) and trigonometric kernels. Each
// trial draws new inputs and new features.
// Reports the mean squared error of the outputs (mean and standard deviation over the
// trials) as a table, a CSV (features, kernel, m, mse_mean, mse_std) and a log-log PNG
// plot. Ends with `result: ...`: the errors at the largest m, whether orthogonal
// positive features are the most accurate at every m and trig ones the least, and the
// log-log slope of the error in m (-1 means "falls as 1/m").
#include "engine/ops.h"
#include "nn/attention.h"
#include "tools/util/cli.h"
#include "tools/util/csv.h"
#include "tools/util/plot.h"
#include "tools/util/progress.h"
#include "tools/util/result.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <map>

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
    std::string features, kernel;  // "orthogonal" | "iid", "positive" | "trig"
};

// The numbers of random features m, and the kinds of features compared at each.
const std::vector<int64_t> kFeatureCounts = {16, 32, 64, 128, 256};
const std::vector<Variant> kVariants = {
    {"orthogonal", "positive"}, {"iid", "positive"}, {"orthogonal", "trig"}, {"iid", "trig"}};

// errors[variant][m index][trial]: the mean squared error of each trial.
using Errors = std::vector<std::vector<std::vector<double>>>;
// means[variant][m index]: the mean over the trials.
using Means = std::vector<std::vector<double>>;

// One trial's inputs, and the exact softmax attention they give.
struct Trial {
    Tensor q, k, v, exact;  // (1, 1, L, d) each
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

// Draws Q, K, V and computes exact (bidirectional) softmax attention.
Trial draw_trial(const Settings& s, Generator& gen) {
    Trial t;
    t.q = Tensor::randn({1, 1, s.length, s.dim}, gen, 0.0f, s.input_std);
    t.k = Tensor::randn({1, 1, s.length, s.dim}, gen, 0.0f, s.input_std);
    t.v = Tensor::randn({1, 1, s.length, s.dim}, gen);
    t.exact = softmax_attention(t.q, t.k, t.v, /*causal=*/false);
    return t;
}

// The mean squared error of linear attention with m new random features of one variant.
double approximation_error(const Trial& t, const Variant& variant, int64_t m, int64_t dim,
                           Generator& gen) {
    Tensor W = variant.features == "orthogonal" ? gaussian_orthogonal_matrix(m, dim, gen)
                                                : gaussian_iid_matrix(m, dim, gen);
    Tensor phi_q, phi_k;
    if (variant.kernel == "positive") {
        phi_q = favor_features(t.q, W, true);
        phi_k = favor_features(t.k, W, false);
    } else {
        phi_q = trig_features(t.q, W);
        phi_k = trig_features(t.k, W);
    }
    Tensor diff = sub(linear_attention(phi_q, phi_k, t.v, false), t.exact);
    return mean(mul(diff, diff)).item();
}

// Runs every trial: new inputs, then new features for every variant and m.
Errors measure_errors(const Settings& s) {
    Errors errors(kVariants.size(), std::vector<std::vector<double>>(kFeatureCounts.size()));
    Generator gen(s.seed);
    ProgressBar progress(s.trials, "approx");
    for (int trial = 0; trial < s.trials; ++trial) {
        Trial t = draw_trial(s, gen);
        for (size_t vi = 0; vi < kVariants.size(); ++vi)
            for (size_t mi = 0; mi < kFeatureCounts.size(); ++mi)
                errors[vi][mi].push_back(
                    approximation_error(t, kVariants[vi], kFeatureCounts[mi], s.dim, gen));
        progress.update(trial + 1);
    }
    progress.finish();
    return errors;
}

// Prints the table of mean errors and writes the CSV (mean and deviation); returns the means.
Means write_table(const std::string& out, const Errors& errors) {
    std::filesystem::create_directories(std::filesystem::path(out).parent_path().empty()
                                            ? "."
                                            : std::filesystem::path(out).parent_path());
    CsvWriter csv(out, {"features", "kernel", "m", "mse_mean", "mse_std"});
    fmt::print("\n{:<22}", "mean squared error");
    for (int64_t m : kFeatureCounts) fmt::print(" {:>11}", fmt::format("m={}", m));
    fmt::print("\n");
    Means means(kVariants.size());
    for (size_t vi = 0; vi < kVariants.size(); ++vi) {
        const Variant& variant = kVariants[vi];
        fmt::print("{:<22}", variant.features + " " + variant.kernel);
        for (size_t mi = 0; mi < kFeatureCounts.size(); ++mi) {
            double mu = mean_of(errors[vi][mi]), sd = std_of(errors[vi][mi]);
            means[vi].push_back(mu);
            fmt::print(" {:>11.4g}", mu);
            csv.row(std::vector<std::string>{variant.features, variant.kernel,
                                             std::to_string(kFeatureCounts[mi]),
                                             fmt::format("{:.6g}", mu), fmt::format("{:.6g}", sd)});
        }
        fmt::print("\n");
    }
    return means;
}

// Draws the mean errors against m, log-log, in a PNG beside the CSV.
void write_plot(const Settings& s, const Means& means) {
    PlotSpec plot;
    plot.title = fmt::format("Attention approximation error (d={}, L={}, Q, K ~ N(0, {}^2), "
                             "{} trials)", s.dim, s.length, s.input_std, s.trials);
    plot.xlabel = "random features m";
    plot.ylabel = "MSE of attention output";
    plot.log_x = plot.log_y = true;
    for (size_t vi = 0; vi < kVariants.size(); ++vi)
        plot.series.push_back({kVariants[vi].features + " " + kVariants[vi].kernel,
                               std::vector<double>(kFeatureCounts.begin(), kFeatureCounts.end()),
                               means[vi]});
    std::string png = std::filesystem::path(s.out).replace_extension(".png").string();
    try {
        plot_png(png, plot);
        fmt::print("\nwrote {} and {}\n", s.out, png);
    } catch (const std::exception& e) {
        fmt::print(stderr, "warning: no plot: {}\n", e.what());
    }
}

// The paper's claims, checked on these numbers, in the result line.
void print_result(const Means& means) {
    bool orthogonal_positive_lowest = true, trig_highest = true;
    for (size_t mi = 0; mi < kFeatureCounts.size(); ++mi) {
        for (size_t vi = 1; vi < kVariants.size(); ++vi)
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
    app.add_option("--seed", s.seed, "random seed");
    app.add_option("--out", s.out, "CSV file; the PNG plot is written beside it");
    add_threads_option(app);
    return run_program(app, argc, argv, [&] {
        if (s.quick) {
            s.length = std::min<int64_t>(s.length, 512);
            s.trials = std::min(s.trials, 5);
        }
        fmt::print("attention approximation: d = {}, L = {}, {} trials, Q, K ~ N(0, {}^2), "
                   "V ~ N(0, 1)\n\n", s.dim, s.length, s.trials, s.input_std);
        Errors errors = measure_errors(s);
        Means means = write_table(s.out, errors);
        write_plot(s, means);
        print_result(means);
        return 0;
    });
}
