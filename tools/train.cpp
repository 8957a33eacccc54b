// train.cpp — train a Performer (or a softmax Transformer) on text, images or proteins.
//
//   build/train --task text --attention favor --layers 4 --dim 256 --heads 4
//               --seq-len 256 --batch 16 --steps 2000 --lr 1e-3 --out runs/austen
//   build/train --out runs/austen --steps 4000 --resume      # continue that run further
//
// See tools/training/trainer.h for what a run writes and how resuming works.
#include "nn/attention.h"
#include "nn/checkpoint.h"
#include "tools/training/trainer.h"
#include "tools/util/cli.h"

using namespace pf;

int main(int argc, char** argv) {
    CLI::App app{"Train a Transformer with Performer (FAVOR+) or other attention", "train"};
    training::TrainOptions o;
    o.model.attention = "favor";
    // Integer settings go into the checkpoint; refuse up front what it could not read back.
    const double largest = double(nn::kLargestConfigInteger - 1);
    const CLI::Validator at_least_one = in_range(1, largest), at_least_zero = in_range(0, largest);
    std::string features = "orthogonal";
    app.add_option("--task", o.task.task, "text | image | protein")
        ->check(CLI::IsMember({"text", "image", "protein"}));
    app.add_option("--data", o.task.data,
                   "text: a file, FILE1,FILE2 (last held out) or a folder with train.txt and "
                   "valid.txt (default data/austen); image: fashion-mnist (default) or "
                   "imagenet64:DIR; protein: a FASTA file (default: mmseqs2-examples)");
    app.add_option("--objective", o.task.objective, "protein: causal | masked")
        ->check(CLI::IsMember({"causal", "masked"}));
    app.add_flag("--concatenated", o.task.concatenated,
                 "protein: windows of sequences joined by separators (the long-sequence mode)");
    app.add_option("--max-images", o.task.max_images, "image: load at most this many per split")
        ->check(at_least_zero);
    app.add_option("--attention", o.model.attention, "softmax | favor | relu | trig | identity")
        ->check(CLI::IsMember(nn::mechanism_names()));
    app.add_option("--features", o.model.features, "random features m (favor, relu, trig)")
        ->check(at_least_one);
    app.add_option("--feature-kind", features, "orthogonal | iid")
        ->check(CLI::IsMember({"orthogonal", "iid"}));
    app.add_option("--redraw", o.redraw, "redraw the random features every N steps (0: never)")
        ->check(at_least_zero);
    app.add_option("--chunk", o.model.chunk, "chunk length of causal linear attention")
        ->check(at_least_one);
    app.add_option("--layers", o.model.layers, "Transformer blocks")->check(at_least_one);
    app.add_option("--dim", o.model.dim, "model width D")->check(at_least_one);
    app.add_option("--heads", o.model.heads, "attention heads")->check(at_least_one);
    app.add_option("--ff", o.model.ff, "feed-forward width (default 4 D)")->check(at_least_one);
    app.add_option("--dropout", o.model.dropout, "dropout probability")->check(in_range(0.0, 0.99));
    app.add_option("--seq-len", o.seq_len, "sequence length L (image: the image's length)")
        ->check(at_least_one);
    app.add_option("--batch", o.batch, "sequences per step")->check(at_least_one);
    app.add_option("--steps", o.steps, "total training steps of the run")->check(at_least_one);
    app.add_option("--lr", o.lr, "peak learning rate")->check(positive());
    app.add_option("--warmup", o.warmup, "warm-up steps (default 5% of the steps, at most 200)")
        ->check(at_least_zero);
    app.add_option("--weight-decay", o.weight_decay, "AdamW weight decay")->check(non_negative());
    app.add_option("--clip", o.clip, "gradient clipping: largest global norm")->check(positive());
    app.add_option("--seed", o.seed, "random seed (data order, initialisation, features)")
        ->check(at_least_zero);
    app.add_option("--out", o.out, "output folder")->required();
    app.add_flag("--resume", o.resume, "continue the run in --out to --steps");
    app.add_option("--stop-after", o.stop_after, "stop once this step is done, with a checkpoint")
        ->check(at_least_one);
    app.add_option("--eval-every", o.eval_every, "steps between evaluations (default: a tenth)")
        ->check(at_least_one);
    app.add_option("--eval-batches", o.eval_batches, "held-out batches per evaluation")
        ->check(at_least_one);
    add_threads_option(app);
    return run_program(app, argc, argv, [&] {
        o.model.orthogonal = features == "orthogonal";
        for (const CLI::Option* option : app.get_options())
            if (option->count() > 0) o.given_flags.push_back(option->get_name());
        if (app.count("--ff") == 0) o.model.ff = 4 * o.model.dim;
        return training::train(o);
    });
}
