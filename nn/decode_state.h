// decode_state.h — what recurrent decoding keeps between positions, for one attention
// layer of any mechanism: attention.h's decoders and baselines.h's decode_lsh fill it.
// Beneath both (attention.cpp dispatches to the baselines, so they cannot include
// attention.h).
#pragma once

#include "engine/tensor.h"

#include <cstdint>
#include <vector>

namespace pf::nn {

// What decoding keeps between positions, for one attention layer:
//   linear mechanisms: per (batch, head) S = sum_j e^(c_j - c) phi(k_j) v_j^T (m x d) and
//     z = sum_j e^(c_j - c) phi(k_j) (m) on the scale of c, the largest key stabiliser so
//     far (favor; 0 for the others): O(m d) per head, whatever the length;
//   softmax: every key and value so far (a KV cache), O(t d) per head;
//   reformer: the same, and which positions each round hashed to each bucket.
struct DecodeState {
    int64_t position = 0;
    std::vector<double> S, z;         // (B, H, m, d) and (B, H, m), allocated at position 0
    std::vector<float> key_scale;     // c: (B, H)
    Tensor keys, values;              // softmax, reformer: (B, H, t, d)
    // reformer: [(round * B H + batch * H + head) * buckets + bucket] → positions, in order
    std::vector<std::vector<int64_t>> bucket_members;
};

}  // namespace pf::nn
