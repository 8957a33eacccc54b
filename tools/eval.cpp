// eval.cpp — score a trained model on held-out data.
//
//   build/eval --ckpt runs/austen/model.ckpt            # result: bits_per_byte=... tokens=...
//   build/eval --ckpt runs/fmnist/model.ckpt             # result: bits_per_dim=...
//   build/eval --ckpt runs/protein/model.ckpt            # result: accuracy=... perplexity=...
//
//   build/eval --ckpt runs/austen-softmax/model.ckpt --attention favor --features 512
//                                                        # softmax-trained weights, FAVOR+
//
//   build/eval --ckpt runs/austen/model.ckpt --context 1024
//                                                        # read as build/sample reads
//   build/eval --ckpt runs/austen/model.ckpt --attention-shift --seed 5
//                                                        # FAVOR+ redrawn: how attention moves
//
// The task and its data come from the checkpoint; --data points elsewhere (same kind,
// and the same shape: images of the size the model was trained on). Text is scored on
// its held-out part (a whole book for the Austen corpus), images and proteins on their
// test split: a fixed set, the same on every run (see tools/training/tasks.h), read one
// batch at a time. --context N scores windows of N tokens decoded one token at a time,
// as build/sample decodes them: beyond the training length in the sliding window of
// models/generate.h. --attention-shift compares, layer by layer on one held-out batch,
// a FAVOR+ model's attention with its features as trained, redrawn (--seed) and exact
// softmax (nn/feature_error.h), beside the sizes of its queries and keys.
#include "models/evaluate.h"
#include "models/run.h"
#include "nn/attention.h"
#include "nn/feature_error.h"
#include "tools/training/tasks.h"
#include "tools/util/cli.h"
#include "tools/util/result.h"
#include "tools/util/timing.h"

#include <fmt/format.h>

using namespace pf;

namespace {

// One held-out batch through the model, each attention layer's queries and keys kept;
// then each layer's attention_shift against features redrawn from `seed`.
std::vector<nn::AttentionShift> layer_shifts(models::SequenceModel& model,
                                             const models::TrainedModel& trained,
                                             training::Task& task, int64_t batch, uint64_t seed) {
    const nn::AttentionConfig& config = model.config().attention;
    PF_CHECK(config.mechanism == nn::Mechanism::Favor, "--attention-shift: the model's attention "
             "is {}; the comparison is of FAVOR+'s random features (add --attention favor)",
             nn::mechanism_name(config.mechanism));
    PF_CHECK(trained.task.kind != models::TaskKind::Protein, "--attention-shift: protein batches "
             "hold padding, which the comparison would count as keys; use a text or image model");
    std::vector<nn::MultiHeadAttention*> layers = model.attention_layers();
    std::vector<std::pair<Tensor, Tensor>> seen(layers.size());
    for (size_t l = 0; l < layers.size(); ++l)
        layers[l]->set_observer([&seen, l](const Tensor& q, const Tensor& k) { seen[l] = {q, k}; });
    models::evaluate(model, trained.task.kind, task.held_out("test", trained.task.seq_len), batch,
                     1, models::Reading::Whole);
    Generator gen(seed);
    std::vector<nn::AttentionShift> shifts;
    for (size_t l = 0; l < layers.size(); ++l) {
        layers[l]->set_observer({});
        Tensor as_trained = clone(layers[l]->features());
        layers[l]->redraw_features(gen);
        shifts.push_back(nn::attention_shift(seen[l].first, seen[l].second, as_trained,
                                             layers[l]->features(), config.causal));
    }
    return shifts;
}

// A line per layer, with Lemma 2's relative error of an entry at the mean |x + y|^2,
// and the means over layers in the result line.
int attention_shift(models::SequenceModel& model, const models::TrainedModel& trained,
                    training::Task& task, int64_t batch, uint64_t seed) {
    std::vector<nn::AttentionShift> shifts = layer_shifts(model, trained, task, batch, seed);
    const double m = double(model.config().attention.features), n = double(shifts.size());
    nn::AttentionShift mean;
    for (size_t l = 0; l < shifts.size(); ++l) {
        const nn::AttentionShift& s = shifts[l];
        fmt::print("layer {}: |x|^2 {:.2f}, |y|^2 {:.2f}, |x+y|^2 {:.2f} (Lemma 2: relative RMS "
                   "error of an entry {:.2f}); total variation of rows: trained vs softmax "
                   "{:.3f}, redrawn vs softmax {:.3f}, trained vs redrawn {:.3f}\n",
                   l, s.query_norm2, s.key_norm2, s.sum_norm2, std::sqrt(std::expm1(s.sum_norm2) / m),
                   s.trained_vs_softmax, s.redrawn_vs_softmax, s.trained_vs_redrawn);
        mean.query_norm2 += s.query_norm2 / n, mean.key_norm2 += s.key_norm2 / n;
        mean.sum_norm2 += s.sum_norm2 / n, mean.trained_vs_softmax += s.trained_vs_softmax / n;
        mean.redrawn_vs_softmax += s.redrawn_vs_softmax / n;
        mean.trained_vs_redrawn += s.trained_vs_redrawn / n;
    }
    ResultLine result;
    result.add("query_norm2", mean.query_norm2).add("key_norm2", mean.key_norm2);
    result.add("sum_norm2", mean.sum_norm2).add("trained_vs_softmax", mean.trained_vs_softmax);
    result.add("redrawn_vs_softmax", mean.redrawn_vs_softmax);
    result.add("trained_vs_redrawn", mean.trained_vs_redrawn);
    result.print();
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Evaluate a trained model on held-out data", "eval"};
    std::string checkpoint, data, split = "test";
    int64_t batch = 8, max_batches = 1000000, context = 0;  // by default, the whole held-out set
    models::ModelOverrides overrides;
    app.add_option("--ckpt", checkpoint, "model checkpoint (model.ckpt of a run)")->required();
    app.add_option("--data", data, "other data of the same kind than the checkpoint's");
    app.add_option("--split", split, "test | valid (text: both mean the held-out part)")
        ->check(CLI::IsMember({"test", "valid"}));
    app.add_option("--batch", batch, "sequences per forward pass")->check(positive());
    app.add_option("--max-batches", max_batches, "score at most this many batches")
        ->check(positive());
    app.add_option("--context", context,
                   "score windows of N tokens decoded one at a time, as build/sample does "
                   "(past the training length: sliding window)")
        ->check(in_range(int64_t(1), int64_t(1) << 20));
    app.add_option("--attention", overrides.attention,
                   "score with this mechanism instead of the trained one")
        ->check(CLI::IsMember(nn::mechanism_names()));
    app.add_option("--features", overrides.features,
                   "score with this many random features (drawn anew)")
        ->check(positive());
    add_seed_option(app, overrides.seed,
                    "seed of the random features drawn for --attention or --features "
                    "(and by --attention-shift)");
    bool shift = false;
    app.add_flag("--attention-shift", shift,
                 "FAVOR+: each layer's attention on one held-out batch with its features as "
                 "trained, redrawn and exact softmax, compared; no scores");
    add_threads_option(app);
    return run_program(app, argc, argv, [&] {
        Generator dropout(0);
        models::TrainedModel trained = models::load_model(checkpoint, dropout, overrides);
        models::SequenceModel& model = *trained.model;
        if (!data.empty()) trained.task.data = data;
        std::unique_ptr<training::Task> task = training::make_task(trained.task);
        fmt::print("{}: {} attention ({} features), {} layers, step {}\n", checkpoint,
                   nn::mechanism_name(model.config().attention.mechanism),
                   model.config().attention.features, model.config().layers, trained.step);
        fmt::print("data: {}\n", task->description());
        if (shift) return attention_shift(model, trained, *task, batch, overrides.seed);
        const int64_t length = context > 0 ? context : trained.task.seq_len;
        if (context == 0) task->check_fits(model.config(), length);
        double start = now_seconds();
        models::Evaluation e = models::evaluate(
            model, trained.task.kind, task->held_out(split, length), batch, max_batches,
            context > 0 ? models::Reading::TokenByToken : models::Reading::Whole);
        double seconds = now_seconds() - start;
        ResultLine result;
        for (const models::Metric& m : e.metrics)
            if (m.name != "loss") result.add(m.name, m.value);
        result.add("loss", e.loss).add("majority_baseline", e.majority).add("tokens", e.tokens);
        result.add("seconds", seconds).add("peak_rss_mib", peak_rss_mib());
        result.print();
        return 0;
    });
}
