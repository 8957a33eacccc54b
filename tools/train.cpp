// train.cpp — train a Performer (or a softmax Transformer) on text, images or proteins.
//
//   build/train --task text --attention favor --layers 4 --dim 256 --heads 4
//               --seq-len 256 --batch 16 --steps 2000 --lr 1e-3 --out runs/austen
//   build/train --out runs/austen --steps 4000 --resume      # continue that run further
//   mpirun -np 2 build/train ...                               # one model, two processes
//
// See tools/training/trainer.h for what a run writes and how resuming works.
#include "tools/distributed/processes.h"
#include "tools/training/tasks.h"
#include "tools/training/trainer.h"
#include "tools/util/cli.h"

using namespace pf;

int main(int argc, char** argv) {
    // Under mpirun, one of several processes training one model (data-parallel).
    distributed::Processes& processes = distributed::Processes::world();
    CLI::App app{"Train a Transformer with Performer (FAVOR+) or other attention", "train"};
    training::TrainOptions o;
    // The run's settings, each described once (models/task.h, models/sequence_model.h,
    // tools/training/trainer.h); then the session's, which --resume may change.
    add_flags(app, models::task_settings(), o.task);
    add_flags(app, models::model_settings(), o.model);
    add_flags(app, training::train_settings(), o);
    const double largest = double(models::kLargestSettingInteger - 1);
    app.add_option("--steps", o.steps, "total training steps of the run")->check(in_range(1, largest));
    app.add_option("--out", o.out, "output folder")->required()->check(output_folder());
    app.add_flag("--resume", o.resume, "continue the run in --out to --steps");
    app.add_option("--stop-after", o.stop_after, "stop once this step is done, with a checkpoint")
        ->check(in_range(1, largest));
    app.add_option("--time-limit", o.time_limit,
                   "end the run, finished, once this many seconds of training are done "
                   "(evaluations excluded; an equal-time comparison): --steps still sets the "
                   "learning-rate schedule")
        ->check(in_range(1e-3, 1e9));
    app.add_flag("--recompute", o.recompute,
                 "keep only attention's q, k, v for backward and compute the rest again there "
                 "(less memory, more time; the same numbers)");
    add_threads_option(app);
    return processes.finish(run_program(app, argc, argv, [&] {
        for (const CLI::Option* option : app.get_options())
            if (option->count() > 0) o.given_flags.push_back(option->get_name());
        if (app.count("--ff") == 0) o.model.ff = 4 * o.model.attention.dim;
        // Before the spec is made absolute (as paths, where "" has no name to report).
        PF_CHECK(app.count("--data") == 0 || !o.task.data.empty(),
                 "--data: an empty path (leave --data out for the task's default data)");
        training::check_data_spec(o.task.kind, o.task.data);
        return training::train(o);
    }));
}
