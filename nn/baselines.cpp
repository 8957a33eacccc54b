// baselines.cpp — Linformer, and Reformer's LSH attention: hashing, the bucket-sorted
// chunked layout, attention in it, its dense reference, and recurrent decoding.
#include "nn/baselines.h"

#include "engine/ops.h"
#include "engine/thread_pool.h"

#include <algorithm>
#include <cmath>

namespace pf::nn {

// ---- Linformer -------------------------------------------------------------------------

// out = softmax(q (E k)^T / sqrt(d)) (F v), E and F cut to their first L columns.
// The projections are computed transposed, k^T E^T = (E k)^T: (B, H, d, k), so that
// the shared E (k, L) is the second operand of each product.
Tensor linformer_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& E,
                           const Tensor& F, const Tensor& key_mask) {
    const int64_t B = q.shape()[0], L = q.shape()[2], d = q.shape()[3];
    PF_CHECK(E.defined() && F.defined() && E.dim() == 2 && E.shape() == F.shape() &&
                 E.shape()[1] >= L,
             "linformer: projections E {} and F {} do not cover a sequence of {} positions",
             shape_str(E.shape()), shape_str(F.shape()), L);
    Tensor keys = k, values = v;
    if (key_mask.defined()) {  // padding adds nothing to the projected rows
        Tensor real = reshape(key_mask.detach(), {B, 1, L, 1});
        keys = mul(keys, real), values = mul(values, real);
    }
    auto first_columns = [L](const Tensor& P) { return P.shape()[1] == L ? P : slice(P, 1, 0, L); };
    Tensor projected_keys = matmul(transpose(keys, 2, 3), first_columns(E), false, true);
    Tensor projected_values = matmul(transpose(values, 2, 3), first_columns(F), false, true);
    Tensor p = softmax(matmul(q, projected_keys), 1.0f / std::sqrt(float(d)));  // (B, H, L, k)
    return matmul(p, projected_values, false, true);                             // (B, H, L, d)
}

// ---- Reformer: hashing ---------------------------------------------------------------------

Tensor random_rotations(int64_t hashes, int64_t d, int64_t buckets, Generator& gen) {
    PF_CHECK(hashes >= 1 && d >= 1 && buckets >= 2 && buckets % 2 == 0,
             "random_rotations: {} rounds of {} buckets (an even number) in {} dimensions",
             hashes, buckets, d);
    return Tensor::randn({hashes, d, buckets / 2}, gen);
}

Tensor lsh_keys(const Tensor& q) {
    return div(q, sqrt(add_scalar(sum(mul(q, q), -1, /*keepdim=*/true), 1e-6f)));
}

// h_r(x) = argmax_j [x R_r, -x R_r]_j: the first largest (a NaN row falls in bucket 0).
Tensor lsh_buckets(const Tensor& q, const Tensor& rotations, const Tensor& key_mask) {
    NoGradGuard constant;
    PF_CHECK(q.dim() == 4 && rotations.dim() == 3 && rotations.shape()[1] == q.shape()[3],
             "lsh_buckets: rotations {} do not fit queries {} (want (hashes, d, buckets / 2))",
             shape_str(rotations.shape()), shape_str(q.shape()));
    const int64_t hashes = rotations.shape()[0], d = rotations.shape()[1], half = rotations.shape()[2];
    const int64_t B = q.shape()[0], H = q.shape()[1], L = q.shape()[2], rows = B * H * L;
    // x R_r of every round at once: (B, H, L, hashes * half)
    Tensor rotated = matmul(q, reshape(permute(rotations, {1, 0, 2}), {d, hashes * half}));
    Tensor buckets = Tensor::empty({hashes, B, H, L});
    const float* u = rotated.data();
    const float* real = key_mask.defined() ? key_mask.data() : nullptr;  // (B, L)
    float* out = buckets.mutable_data();
    parallel_for(rows, std::max<int64_t>(1, 4096 / (hashes * half)), [&](int64_t begin, int64_t end) {
        for (int64_t row = begin; row < end; ++row) {
            const bool padding = real && real[(row / (H * L)) * L + row % L] == 0;
            for (int64_t r = 0; r < hashes; ++r) {
                const float* x = u + (row * hashes + r) * half;
                int64_t best = 0;
                float top = x[0];
                for (int64_t j = 1; j < 2 * half; ++j) {
                    const float value = j < half ? x[j] : -x[j - half];
                    if (value > top) top = value, best = j;
                }
                out[r * rows + row] = float(padding ? 2 * half : best);
            }
        }
    });
    return buckets;
}

// ---- Reformer: the chunked layout ---------------------------------------------------------

namespace {

// One round's sorted order cut into chunks of m slots, each bucket starting a chunk:
//   own (B, H, P)       the position in each slot; L where a slot is empty
//   previous (B, H, P)  the position in the same slot of the chunk before, when that
//                       chunk holds the same bucket; else L (then it is not looked at)
//   slot (B, H, L)      each position's slot, to bring the outputs back
// and for the scores of each chunk's queries (m) against [previous chunk | own chunk] (2m):
//   allowed (B, H, P / m, m, 2m)  1 where the query may use the key
//   refused (B, H, P / m, m, 2m)  the score where it may not: kSelfScore for its own key,
//                                 kBlockedScore for any other
// P is the most slots any (batch, head) needs, a multiple of m. Slot L of the sequence
// extended by one zero row (see lsh_attention) fills the empty slots.
struct ChunkLayout {
    int64_t slots = 0;
    Tensor own, previous, slot, allowed, refused;
};

int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

// bucket, order: one round's (B H, L) buckets and argsort of them.
ChunkLayout chunk_layout(const float* bucket, const float* order, int64_t B, int64_t H,
                         int64_t L, int64_t m, bool causal, const Tensor& key_mask) {
    const int64_t BH = B * H;
    // Walks (batch, head) bh's sorted order, giving visit(position, slot) each position's
    // slot; returns the slots used, whole chunks.
    auto walk = [&](int64_t bh, auto visit) {
        int64_t slot = 0;
        float current = -1;
        for (int64_t k = 0; k < L; ++k) {
            const int64_t position = int64_t(order[bh * L + k]);
            const float b = bucket[bh * L + position];
            if (b != current) slot = round_up(slot, m), current = b;  // a bucket starts a chunk
            visit(position, slot++);
        }
        return round_up(slot, m);
    };
    ChunkLayout layout;
    for (int64_t bh = 0; bh < BH; ++bh)
        layout.slots = std::max(layout.slots, walk(bh, [](int64_t, int64_t) {}));
    const int64_t P = layout.slots, C = P / m;
    layout.own = Tensor::full({B, H, P}, float(L));
    layout.previous = Tensor::full({B, H, P}, float(L));
    layout.slot = Tensor::empty({B, H, L});
    layout.allowed = Tensor::empty({B, H, C, m, 2 * m});
    layout.refused = Tensor::empty({B, H, C, m, 2 * m});
    float *own = layout.own.mutable_data(), *previous = layout.previous.mutable_data(),
          *slot_of = layout.slot.mutable_data(), *allowed = layout.allowed.mutable_data(),
          *refused = layout.refused.mutable_data();
    const float* real = key_mask.defined() ? key_mask.data() : nullptr;  // (B, L)
    parallel_for(BH, 1, [&](int64_t begin, int64_t end) {
        for (int64_t bh = begin; bh < end; ++bh) {
            float* own_bh = own + bh * P;
            walk(bh, [&](int64_t position, int64_t slot) {
                own_bh[slot] = float(position);
                slot_of[bh * L + position] = float(slot);
            });
            // A chunk's bucket is its first slot's (every bucket starts a chunk).
            auto bucket_of_chunk = [&](int64_t c) {
                const float position = own_bh[c * m];
                return position < float(L) ? bucket[bh * L + int64_t(position)] : -1.0f;
            };
            for (int64_t c = 1; c < C; ++c)
                if (bucket_of_chunk(c) >= 0 && bucket_of_chunk(c) == bucket_of_chunk(c - 1))
                    std::copy_n(own_bh + (c - 1) * m, m, previous + bh * P + c * m);
            const float* real_b = real ? real + (bh / H) * L : nullptr;
            for (int64_t c = 0; c < C; ++c)
                for (int64_t a = 0; a < m; ++a) {
                    const float query = own_bh[c * m + a];
                    float* allowed_row = allowed + ((bh * C + c) * m + a) * 2 * m;
                    float* refused_row = refused + ((bh * C + c) * m + a) * 2 * m;
                    for (int64_t t = 0; t < 2 * m; ++t) {
                        const float key = t < m ? previous[bh * P + c * m + t] : own_bh[c * m + t - m];
                        const bool real_key = key < float(L) && (!real_b || real_b[int64_t(key)] != 0);
                        const bool self = t >= m && key == query;
                        allowed_row[t] = real_key && !self && !(causal && key > query);
                        refused_row[t] = real_key && self ? kSelfScore : kBlockedScore;
                    }
                }
        }
    });
    return layout;
}

// z = log sum_j e^(x_j) over the last axis (keepdim), with the row maximum taken out.
Tensor logsumexp(const Tensor& x) {
    Tensor top;
    {
        NoGradGuard constant;
        top = max(x, -1, /*keepdim=*/true);
    }
    return add(log(sum(exp(sub(x, top)), -1, /*keepdim=*/true)), top);
}

// o = sum_r e^(z_r - z) o_r, z = log sum_r e^(z_r): outputs (B, H, L, d) and their
// rounds' log-normalisers (B, H, L, 1).
Tensor combine_rounds(const std::vector<Tensor>& outputs, const std::vector<Tensor>& normalisers) {
    if (outputs.size() == 1) return outputs[0];
    Tensor weights = softmax(concat(normalisers, -1));  // (B, H, L, hashes)
    Tensor out;
    for (size_t r = 0; r < outputs.size(); ++r) {
        Tensor term = mul(outputs[r], slice(weights, -1, int64_t(r), int64_t(r) + 1));
        out = r == 0 ? term : add(out, term);
    }
    return out;
}

void check_lsh_inputs(const Tensor& q, const Tensor& v, const Tensor& rotations, int64_t chunk) {
    PF_CHECK(q.dim() == 4 && v.shape() == q.shape(),
             "lsh_attention: q {} and v {} must have equal shapes (B, H, L, d)",
             shape_str(q.shape()), shape_str(v.shape()));
    PF_CHECK(rotations.defined() && rotations.dim() == 3 && rotations.shape()[1] == q.shape()[3],
             "lsh_attention: rotations {} do not fit heads of width {} (want (hashes, d, buckets / 2))",
             shape_str(rotations.shape()), q.shape()[3]);
    PF_CHECK(chunk >= 1, "lsh_attention: chunk {} (must be at least 1)", chunk);
}

}  // namespace

// ---- Reformer: attention ---------------------------------------------------------------------

// Per round: gather q, k, v into the chunked order (C chunks of m slots), score each
// chunk's queries against the keys of the chunk before and its own, replace the scores
// of keys they may not use, softmax, multiply with the values (causal: the own chunk's
// triangle only, by causal_matmul, which never reads a later value), and bring the
// outputs and log-normalisers back to the positions. Then combine the rounds.
Tensor lsh_attention(const Tensor& q, const Tensor& v, const Tensor& rotations, int64_t chunk,
                     bool causal, const Tensor& key_mask) {
    check_lsh_inputs(q, v, rotations, chunk);
    const int64_t B = q.shape()[0], H = q.shape()[1], L = q.shape()[2], d = q.shape()[3];
    // Chunks of L or more slots hold every bucket whole: the same attention as chunks of L,
    // with memory bounded by L whatever chunk a flag or a checkpoint asks for.
    const int64_t hashes = rotations.shape()[0], m = std::min(chunk, L);
    Tensor buckets = lsh_buckets(q, rotations, key_mask);  // (hashes, B, H, L)
    Tensor order = argsort(buckets, -1);                   // by bucket, ties by position
    // q / sqrt(d) (the scores' scale), k and v, each with a zero row at position L, which
    // the empty slots read.
    auto extended = [&](const Tensor& x) { return concat({x, Tensor::zeros({B, H, 1, d})}, 2); };
    Tensor qx = extended(mul_scalar(q, 1.0f / std::sqrt(float(d))));
    Tensor kx = extended(lsh_keys(q)), vx = extended(v);
    std::vector<Tensor> outputs, normalisers;
    for (int64_t r = 0; r < hashes; ++r) {
        ChunkLayout layout = chunk_layout(buckets.data() + r * B * H * L, order.data() + r * B * H * L,
                                          B, H, L, m, causal, key_mask);
        const int64_t P = layout.slots, C = P / m;
        auto chunks = [&](const Tensor& x, const Tensor& at) {  // → (B, H, C, m, d)
            return reshape(gather(x, 2, at), {B, H, C, m, d});
        };
        Tensor queries = chunks(qx, layout.own);
        Tensor keys_before = chunks(kx, layout.previous), keys = chunks(kx, layout.own);
        Tensor values_before = chunks(vx, layout.previous), values = chunks(vx, layout.own);
        Tensor scores = concat({matmul(queries, keys_before, false, true),
                                matmul(queries, keys, false, true)}, -1);  // (B, H, C, m, 2m)
        scores = where(layout.allowed, scores, layout.refused);
        Tensor p = softmax(scores);
        Tensor p_own = slice(p, -1, m, 2 * m);
        Tensor out = add(matmul(slice(p, -1, 0, m), values_before),
                         causal ? causal_matmul(p_own, values) : matmul(p_own, values));
        outputs.push_back(gather(reshape(out, {B, H, P, d}), 2, layout.slot));
        normalisers.push_back(gather(reshape(logsumexp(scores), {B, H, P, 1}), 2, layout.slot));
    }
    return combine_rounds(outputs, normalisers);
}

// Per round, the L x L mask from the buckets: i may use j when both are in the same
// (real) bucket, j's rank in it falls in i's chunk or the one before, j <= i when
// causal, j is not padding, and j != i.
Tensor lsh_attention_reference(const Tensor& q, const Tensor& v, const Tensor& rotations,
                               int64_t chunk, bool causal, const Tensor& key_mask) {
    check_lsh_inputs(q, v, rotations, chunk);
    const int64_t B = q.shape()[0], H = q.shape()[1], L = q.shape()[2], d = q.shape()[3];
    const int64_t hashes = rotations.shape()[0], padding_bucket = 2 * rotations.shape()[2];
    Tensor buckets = lsh_buckets(q, rotations, key_mask);
    Tensor scores = mul_scalar(matmul(q, lsh_keys(q), false, true), 1.0f / std::sqrt(float(d)));
    std::vector<Tensor> outputs, normalisers;
    for (int64_t r = 0; r < hashes; ++r) {
        std::vector<float> allowed(B * H * L * L), refused(B * H * L * L);
        for (int64_t bh = 0; bh < B * H; ++bh) {
            const float* bucket = buckets.data() + (r * B * H + bh) * L;
            std::vector<int64_t> chunk_of(L);  // rank in its bucket, over the chunk length
            for (int64_t j = 0; j < L; ++j)
                chunk_of[j] = std::count(bucket, bucket + j, bucket[j]) / chunk;
            for (int64_t i = 0; i < L; ++i)
                for (int64_t j = 0; j < L; ++j) {
                    const bool real = bucket[j] != float(padding_bucket) &&
                                      (!key_mask.defined() || key_mask.data()[(bh / H) * L + j] != 0);
                    const bool window = chunk_of[j] == chunk_of[i] || chunk_of[j] + 1 == chunk_of[i];
                    const bool usable = real && bucket[i] == bucket[j] && window && i != j &&
                                        !(causal && j > i);
                    allowed[(bh * L + i) * L + j] = usable;
                    refused[(bh * L + i) * L + j] = real && i == j ? kSelfScore : kBlockedScore;
                }
        }
        Tensor masked = where(Tensor::from_data({B, H, L, L}, allowed), scores,
                              Tensor::from_data({B, H, L, L}, refused));
        outputs.push_back(matmul(softmax(masked), v));
        normalisers.push_back(logsumexp(masked));
    }
    return combine_rounds(outputs, normalisers);
}

// ---- Reformer: recurrent decoding -------------------------------------------------------------

// Position t in round r falls in bucket b with rank n = (positions of b so far); the
// forward's chunks give it the positions of b with ranks from (n / m - 1) m on, and
// itself at kSelfScore. Sums in double.
Tensor decode_lsh(const Tensor& q, const Tensor& v, const Tensor& rotations, int64_t chunk,
                  DecodeState& state) {
    NoGradGuard no_grad;
    check_lsh_inputs(q, v, rotations, chunk);
    const int64_t B = q.shape()[0], H = q.shape()[1], d = q.shape()[3], BH = B * H;
    const int64_t hashes = rotations.shape()[0], buckets = 2 * rotations.shape()[2];
    Tensor k = lsh_keys(q);
    state.keys = state.keys.defined() ? concat({state.keys, k}, 2) : k;
    state.values = state.values.defined() ? concat({state.values, v}, 2) : v;
    if (state.bucket_members.empty()) state.bucket_members.resize(hashes * BH * buckets);
    const int64_t t = state.keys.shape()[2] - 1;  // this position
    Tensor bucket = lsh_buckets(q, rotations);   // (hashes, B, H, 1)
    Tensor out = Tensor::empty(q.shape());
    float* o = out.mutable_data();
    const double scale = 1.0 / std::sqrt(double(d));
    for (int64_t bh = 0; bh < BH; ++bh) {
        const float* query = q.data() + bh * d;
        const float* keys = state.keys.data() + bh * (t + 1) * d;
        const float* values = state.values.data() + bh * (t + 1) * d;
        std::vector<double> round_out(hashes * d, 0.0), round_z(hashes);
        for (int64_t r = 0; r < hashes; ++r) {
            std::vector<int64_t>& members =
                state.bucket_members[(r * BH + bh) * buckets + int64_t(bucket.data()[r * BH + bh])];
            const int64_t rank = int64_t(members.size());
            const int64_t first = std::max<int64_t>(0, (rank / chunk - 1) * chunk);
            members.push_back(t);
            std::vector<double> scores;  // the window's keys, then the own key
            for (int64_t n = first; n <= rank; ++n) {
                const int64_t j = members[n];
                double dot = 0;
                for (int64_t i = 0; i < d; ++i) dot += double(query[i]) * keys[j * d + i];
                scores.push_back(j == t ? double(kSelfScore) : dot * scale);
            }
            const double top = *std::max_element(scores.begin(), scores.end());
            double total = 0;
            for (size_t n = 0; n < scores.size(); ++n) {
                const double w = std::exp(scores[n] - top);
                total += w;
                for (int64_t i = 0; i < d; ++i) round_out[r * d + i] += w * values[members[first + n] * d + i];
            }
            for (int64_t i = 0; i < d; ++i) round_out[r * d + i] /= total;
            round_z[r] = std::log(total) + top;
        }
        const double z = *std::max_element(round_z.begin(), round_z.end());
        double norm = 0;
        for (double zr : round_z) norm += std::exp(zr - z);
        for (int64_t i = 0; i < d; ++i) {
            double sum = 0;
            for (int64_t r = 0; r < hashes; ++r) sum += std::exp(round_z[r] - z) / norm * round_out[r * d + i];
            o[bh * d + i] = float(sum);
        }
    }
    return out;
}

}  // namespace pf::nn
