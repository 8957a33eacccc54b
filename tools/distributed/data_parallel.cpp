// data_parallel.cpp — a step's parts, their shares of the loss and of the dropout draws,
// and the sum over the processes.
#include "tools/distributed/data_parallel.h"

#include "engine/error.h"
#include "models/vocabulary.h"
#include "nn/layers.h"
#include "tools/util/timing.h"

#include <algorithm>

namespace pf::distributed {

namespace {

int64_t scored_targets(const std::vector<int32_t>& targets) {
    return std::count_if(targets.begin(), targets.end(), [](int32_t t) { return t != models::kIgnore; });
}

}  // namespace

RowRange part_of(int64_t batch, int64_t parts, int64_t index) {
    const int64_t base = batch / parts, longer = batch % parts;
    return {index * base + std::min(index, longer), base + (index < longer ? 1 : 0)};
}

models::Batch rows_of(const models::Batch& batch, RowRange range) {
    if (range.first == 0 && range.rows == batch.batch) return batch;
    const int64_t L = batch.length, begin = range.first * L, end = (range.first + range.rows) * L;
    models::Batch part{{batch.inputs.begin() + begin, batch.inputs.begin() + end},
                       {batch.targets.begin() + begin, batch.targets.begin() + end}, range.rows, L, {}};
    if (batch.key_mask.defined()) {
        part.key_mask = Tensor::empty({range.rows, L});
        std::copy(batch.key_mask.data() + begin, batch.key_mask.data() + end,
                  part.key_mask.mutable_data());
    }
    return part;
}

Tensor Part::share(const Tensor& part_loss) const {
    if (scored == batch_scored) return part_loss;
    return part_loss * (float(scored) / float(std::max<int64_t>(batch_scored, 1)));
}

void Part::draw_dropout(nn::Module& model, Generator& dropout) const {
    dropout.set_state(dropout.seed(), dropout_offset);
    nn::set_dropout_rows(model, {range.first, range.rows, batch_rows});
}

DataParallel::DataParallel(const Processes& processes, int64_t micro_batches)
    : processes_(processes), micro_batches_(micro_batches) {}

std::vector<Part> DataParallel::parts(const models::Batch& batch, const Generator& dropout) const {
    const int64_t parts = micro_batches_ * processes_.size();
    PF_CHECK(batch.batch >= parts, "a batch of {} rows cannot be cut into {} parts", batch.batch, parts);
    const int64_t batch_scored = scored_targets(batch.targets);
    std::vector<Part> mine;
    for (int64_t k = 0; k < micro_batches_; ++k) {
        Part part;
        part.range = part_of(batch.batch, parts, processes_.rank() * micro_batches_ + k);
        part.batch = rows_of(batch, part.range);
        part.batch_rows = batch.batch;
        part.scored = scored_targets(part.batch.targets);
        part.batch_scored = batch_scored;
        part.dropout_offset = dropout.offset();
        mine.push_back(std::move(part));
    }
    return mine;
}

Summed DataParallel::sum(const std::vector<Tensor>& parameters, float loss, bool interrupted) const {
    if (processes_.size() == 1) return {loss, interrupted, 0};
    std::vector<float> flat;
    for (const Tensor& p : parameters) {
        const Tensor g = p.grad();
        if (g.defined()) flat.insert(flat.end(), g.data(), g.data() + g.numel());
        else flat.resize(flat.size() + size_t(p.numel()), 0.0f);
    }
    flat.push_back(loss);
    flat.push_back(interrupted ? 1.0f : 0.0f);
    const double start = now_seconds();
    processes_.sum_in_rank_order(flat);
    const double seconds = now_seconds() - start;
    size_t at = 0;
    for (Tensor p : parameters) {
        Tensor g = Tensor::empty(p.shape());
        std::copy_n(flat.data() + at, p.numel(), g.mutable_data());
        at += size_t(p.numel());
        p.set_grad(g);
    }
    return {flat[at], flat[at + 1] > 0, seconds};
}

}  // namespace pf::distributed
