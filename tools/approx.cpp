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

struct Variant {
    std::string features, kernel;  // "orthogonal" | "iid", "positive" | "trig"
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

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Attention approximation error vs number of random features (Performer, Fig. 3)",
                 "approx"};
    bool quick = false;
    int trials = 15;
    int64_t length = 4096, dim = 16;
    float input_std = 1.0f;
    uint64_t seed = 0;
    std::string out = "results/approx.csv";
    app.add_flag("--quick", quick, "L = 512 and 5 trials: a smoke run");
    app.add_option("--trials", trials, "independent trials per point")->check(positive());
    app.add_option("--length", length, "sequence length L")->check(positive());
    app.add_option("--dim", dim, "head dimension d")->check(positive());
    app.add_option("--input-std", input_std, "standard deviation of the entries of Q and K")
        ->check(positive());
    app.add_option("--seed", seed, "random seed");
    app.add_option("--out", out, "CSV file; the PNG plot is written beside it");
    add_threads_option(app);
    return run_program(app, argc, argv, [&] {
        if (quick) {
            length = std::min<int64_t>(length, 512);
            trials = std::min(trials, 5);
        }
        const std::vector<int64_t> feature_counts = {16, 32, 64, 128, 256};
        const std::vector<Variant> variants = {
            {"orthogonal", "positive"}, {"iid", "positive"}, {"orthogonal", "trig"}, {"iid", "trig"}};
        fmt::print("attention approximation: d = {}, L = {}, {} trials, Q, K ~ N(0, {}^2), "
                   "V ~ N(0, 1)\n\n", dim, length, trials, input_std);

        // errors[variant][m index][trial]
        std::vector<std::vector<std::vector<double>>> errors(
            variants.size(), std::vector<std::vector<double>>(feature_counts.size()));
        Generator gen(seed);
        ProgressBar progress(trials, "approx");
        for (int trial = 0; trial < trials; ++trial) {
            Tensor q = Tensor::randn({1, 1, length, dim}, gen, 0.0f, input_std);
            Tensor k = Tensor::randn({1, 1, length, dim}, gen, 0.0f, input_std);
            Tensor v = Tensor::randn({1, 1, length, dim}, gen);
            Tensor exact = softmax_attention(q, k, v, /*causal=*/false);
            for (size_t vi = 0; vi < variants.size(); ++vi) {
                for (size_t mi = 0; mi < feature_counts.size(); ++mi) {
                    int64_t m = feature_counts[mi];
                    Tensor W = variants[vi].features == "orthogonal"
                                   ? gaussian_orthogonal_matrix(m, dim, gen)
                                   : gaussian_iid_matrix(m, dim, gen);
                    Tensor phi_q, phi_k;
                    if (variants[vi].kernel == "positive") {
                        phi_q = favor_features(q, W, true);
                        phi_k = favor_features(k, W, false);
                    } else {
                        phi_q = trig_features(q, W);
                        phi_k = trig_features(k, W);
                    }
                    Tensor diff = sub(linear_attention(phi_q, phi_k, v, false), exact);
                    errors[vi][mi].push_back(mean(mul(diff, diff)).item());
                }
            }
            progress.update(trial + 1);
        }
        progress.finish();

        auto mean_of = [](const std::vector<double>& xs) {
            double s = 0;
            for (double x : xs) s += x;
            return s / double(xs.size());
        };
        auto std_of = [&](const std::vector<double>& xs) {
            double mu = mean_of(xs), s = 0;
            for (double x : xs) s += (x - mu) * (x - mu);
            return std::sqrt(s / double(xs.size()));
        };

        std::filesystem::create_directories(std::filesystem::path(out).parent_path().empty()
                                                ? "."
                                                : std::filesystem::path(out).parent_path());
        CsvWriter csv(out, {"features", "kernel", "m", "mse_mean", "mse_std"});
        fmt::print("\n{:<22}", "mean squared error");
        for (int64_t m : feature_counts) fmt::print(" {:>11}", fmt::format("m={}", m));
        fmt::print("\n");
        PlotSpec plot;
        plot.title = fmt::format("Attention approximation error (d={}, L={}, Q, K ~ N(0, {}^2), "
                                 "{} trials)", dim, length, input_std, trials);
        plot.xlabel = "random features m";
        plot.ylabel = "MSE of attention output";
        plot.log_x = plot.log_y = true;
        std::vector<std::vector<double>> means(variants.size());
        for (size_t vi = 0; vi < variants.size(); ++vi) {
            std::string name = variants[vi].features + " " + variants[vi].kernel;
            fmt::print("{:<22}", name);
            Series series{name, {}, {}};
            for (size_t mi = 0; mi < feature_counts.size(); ++mi) {
                double mu = mean_of(errors[vi][mi]), sd = std_of(errors[vi][mi]);
                means[vi].push_back(mu);
                fmt::print(" {:>11.4g}", mu);
                csv.row(std::vector<std::string>{variants[vi].features, variants[vi].kernel,
                                                 std::to_string(feature_counts[mi]),
                                                 fmt::format("{:.6g}", mu), fmt::format("{:.6g}", sd)});
                series.x.push_back(double(feature_counts[mi]));
                series.y.push_back(mu);
            }
            fmt::print("\n");
            plot.series.push_back(series);
        }
        std::string png = std::filesystem::path(out).replace_extension(".png").string();
        try {
            plot_png(png, plot);
            fmt::print("\nwrote {} and {}\n", out, png);
        } catch (const std::exception& e) {
            fmt::print(stderr, "warning: no plot: {}\n", e.what());
        }

        // The paper's claims, checked on these numbers.
        bool orthogonal_positive_lowest = true, trig_highest = true;
        for (size_t mi = 0; mi < feature_counts.size(); ++mi) {
            for (size_t vi = 1; vi < variants.size(); ++vi)
                orthogonal_positive_lowest &= means[0][mi] < means[vi][mi];
            double worst_positive = std::max(means[0][mi], means[1][mi]);
            trig_highest &= std::min(means[2][mi], means[3][mi]) > worst_positive;
        }
        std::vector<double> ms(feature_counts.begin(), feature_counts.end());
        ResultLine result;
        for (size_t vi = 0; vi < variants.size(); ++vi)
            result.add(fmt::format("mse_{}_{}_m256", variants[vi].kernel, variants[vi].features),
                       means[vi].back());
        result.add("orthogonal_positive_lowest", int64_t(orthogonal_positive_lowest));
        result.add("trig_highest", int64_t(trig_highest));
        result.add("slope_positive_orthogonal", log_log_slope(ms, means[0]));
        result.add("slope_positive_iid", log_log_slope(ms, means[1]));
        fmt::print("{}\n", result.str());
        return 0;
    });
}
