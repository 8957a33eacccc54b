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
//
// The task and its data come from the checkpoint; --data points elsewhere (same kind,
// and the same shape: images of the size the model was trained on). Text is scored on
// its held-out part (a whole book for the Austen corpus), images and proteins on their
// test split: a fixed set, the same on every run (see tools/training/tasks.h), read one
// batch at a time. --context N scores windows of N tokens decoded one token at a time,
// as build/sample decodes them: beyond the training length in the sliding window of
// models/generate.h.
#include "models/evaluate.h"
#include "models/trained_model.h"
#include "nn/attention.h"
#include "tools/training/tasks.h"
#include "tools/util/cli.h"
#include "tools/util/result.h"
#include "tools/util/timing.h"

#include <fmt/format.h>

using namespace pf;

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
    app.add_option("--seed", overrides.seed,
                   "seed of the random features drawn for --attention or --features");
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
