// data_parallel.h — a training step's batch shared out over processes and micro-batches.
//
//   DataParallel parallel(Processes::world(), micro_batches);
//   float loss = 0;
//   for (const Part& part : parallel.parts(batch, dropout)) {  // this process's parts, in turn
//       part.draw_dropout(model, dropout);        // the masks the whole batch has at these rows
//       Tensor logits = model.forward(part.batch.inputs, ...);
//       Tensor part_loss = part.share(batch_loss(logits, part.batch.targets));
//       part_loss.backward();                     // the parts' gradients add up
//       loss += part_loss.item();
//   }
//   Summed total = parallel.sum(model.parameters(), loss, interrupted);  // over the processes
//
// The step's batch is cut into micro_batches x processes parts, as even as can be (10
// rows in 4 parts: 3, 3, 2, 2); process r runs its micro_batches parts, from part
// r x micro_batches on, one after another. Each part stands for its rows of the batch:
// - its loss, a mean over its scored targets, counts as its share of the mean over the
//   batch's (its scored targets / the batch's), so that the gradients add up to the
//   gradient of the batch's mean even when parts score different numbers of tokens;
// - its dropout masks are those the whole batch draws at its rows (nn::set_dropout_rows),
//   from the same generator offset for every part.
// The sum over the processes is in rank order (processes.h), so N processes compute, bit
// for bit, what one process computes with --micro-batches N.
#pragma once

#include "engine/random.h"
#include "engine/tensor.h"
#include "models/task.h"
#include "nn/module.h"
#include "tools/distributed/processes.h"

#include <cstdint>
#include <vector>

namespace pf::distributed {

// Rows [first, first + rows) of a batch.
struct RowRange {
    int64_t first = 0, rows = 0;
};

// Part `index` of `parts` of a batch of `batch` rows: as even as can be, the first
// (batch mod parts) parts one row longer.
RowRange part_of(int64_t batch, int64_t parts, int64_t index);

// Those rows of a batch (the batch itself when they are all of it).
models::Batch rows_of(const models::Batch& batch, RowRange range);

// One part of a step's batch.
struct Part {
    RowRange range;               // its rows of the step's batch
    models::Batch batch;          // those rows
    int64_t batch_rows = 0;       // rows of the step's batch
    int64_t scored = 0;           // targets scored in the part ...
    int64_t batch_scored = 0;     // ... and in the step's batch
    uint64_t dropout_offset = 0;  // the dropout generator's offset when the step began

    // The part's loss (the mean over its scored targets) as its share of the mean over
    // the batch's scored targets.
    Tensor share(const Tensor& part_loss) const;
    // Sets `dropout` back to where it was when the step began and `model`'s dropouts to
    // these rows (until the next part's), so that they draw what the whole batch draws
    // at these rows; every part leaves `dropout` where the whole batch would.
    void draw_dropout(nn::Module& model, Generator& dropout) const;
};

// A step's loss and whether a process was interrupted, summed over the processes, and
// the seconds the sum took.
struct Summed {
    float loss = 0;
    bool interrupted = false;
    double seconds = 0;
};

class DataParallel {
public:
    DataParallel(const Processes& processes, int64_t micro_batches);

    // This process's parts of a step's batch, in order; `dropout` is the generator of the
    // model's dropout masks, at the start of the step.
    std::vector<Part> parts(const models::Batch& batch, const Generator& dropout) const;

    // With several processes: every parameter's gradient (zeros where it has none), the
    // loss and `interrupted` summed over the processes in rank order, the gradients
    // replaced by their sums. With one: nothing to add.
    Summed sum(const std::vector<Tensor>& parameters, float loss, bool interrupted) const;

private:
    const Processes& processes_;
    int64_t micro_batches_;
};

}  // namespace pf::distributed
