// baselines.h — the Performer paper's two rivals, as graph operations: Linformer and
// Reformer's LSH attention. Shapes as in attention.h: q, k, v (B, H, L, d). attend()
// (attention.cpp) dispatches to them; they do not include attention.h.
//
// Linformer (Wang et al., 2020) projects keys and values along the sequence to k rows
// with learned E, F (k x max_length; the first L columns serve a sequence of L):
//
//   out = softmax(q (E k)^T / sqrt(d)) (F v)                     O(L k d) time and memory
//
// One E and one F per layer, shared by its heads (the paper's headwise sharing). Every
// projected row mixes all positions, later ones too: no causal mask can apply, so
// linformer is bidirectional only. Padding keys and values are zeroed before projecting.
//
// Reformer (Kitaev et al., 2020) attends within buckets of similar vectors:
//   1. shared queries and keys: the key of position j is its query, normalised,
//      k_j = q_j / |q_j|; scores q_i . k_j / sqrt(d);
//   2. hashing, in each of `hashes` rounds r: h_r(x) = argmax [x R_r, -x R_r] over the
//      `buckets` signed directions, R_r (d, buckets / 2) a random Gaussian rotation
//      (a buffer, redrawn like random features);
//   3. sort positions by bucket (stably: ties by position) and cut the sorted order into
//      chunks of `chunk` positions; a position attends to the positions of its own bucket
//      in its chunk and the chunk before, never to later positions when causal, and to
//      itself only when it has nothing else (its score is set to -1e5, others to -1e9);
//   4. the rounds' outputs o_r, each with its log-normaliser z_r = log sum_j e^(score),
//      combine as o = sum_r e^(z_r - z) o_r with z = log sum_r e^(z_r): attention over
//      all the rounds' keys together (a key found by two rounds counts twice).
//
// One change from the paper's step 3 makes causal LSH attention strictly causal. Cutting
// the sorted order into equal chunks lets later positions move every chunk boundary: a
// later position hashed to bucket 0 shifts every position of the higher buckets by one
// slot, so that which earlier keys position i sees would depend on the future. Here every
// bucket starts a chunk of its own (its last chunk is padded with empty slots). A
// position's chunk is then fixed by the earlier positions of its bucket alone: the
// (c+1)-th chunk of a bucket holds its positions of rank c * chunk .. (c+1) * chunk - 1
// in that bucket. When buckets hold at most a chunk (buckets ~ 2 L / chunk, as the
// Reformer sets them), each position sees its whole bucket, as the paper intends; the
// empty slots cost at most buckets * chunk more slots. And recurrent decoding is simple:
// keep every bucket's positions (decode_lsh).
#pragma once

#include "engine/random.h"
#include "nn/decode_state.h"

namespace pf::nn {

// ---- Linformer ---------------------------------------------------------------------------
// E, F: (k, max_length) with max_length >= L; key_mask (B, L) optional (1 real, 0 padding).
Tensor linformer_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& E,
                           const Tensor& F, const Tensor& key_mask = {});

// ---- Reformer ------------------------------------------------------------------------------
constexpr float kSelfScore = -1e5f;     // a position's score for its own key
constexpr float kBlockedScore = -1e9f;  // the score of a key it may not use

// Random rotations R (hashes, d, buckets / 2), independent N(0, 1) entries.
Tensor random_rotations(int64_t hashes, int64_t d, int64_t buckets, Generator& gen);
// The keys of shared-QK attention: k = q / sqrt(|q|^2 + 1e-6) along the last axis.
Tensor lsh_keys(const Tensor& q);
// Each position's bucket in each round: (hashes, B, H, L), whole numbers in
// [0, buckets); padding positions (key_mask 0) in `buckets`, after every real one. A
// constant (no gradient).  q: (B, H, L, d), rotations: (hashes, d, buckets / 2)
Tensor lsh_buckets(const Tensor& q, const Tensor& rotations, const Tensor& key_mask = {});
// LSH attention of q (keys: lsh_keys(q)) and v: (B, H, L, d) → (B, H, L, d), in the
// bucket-sorted chunks described above.
Tensor lsh_attention(const Tensor& q, const Tensor& v, const Tensor& rotations, int64_t chunk,
                     bool causal, const Tensor& key_mask = {});
// The same as dense attention over the L x L matrix of every round, its mask "same
// bucket, chunk window, causal, not padding, self only when alone" written out from the
// buckets (lsh_buckets) and each position's rank in its bucket: the tests' reference.
// Padding positions' own outputs differ (they are not compared).
Tensor lsh_attention_reference(const Tensor& q, const Tensor& v, const Tensor& rotations,
                               int64_t chunk, bool causal, const Tensor& key_mask = {});
// Recurrent decoding of causal LSH attention, one position: q, v (B, H, 1, d). Keeps
// the keys, values and each bucket's positions in `state`; the same output as
// lsh_attention of the whole prefix (tested).
Tensor decode_lsh(const Tensor& q, const Tensor& v, const Tensor& rotations, int64_t chunk,
                  DecodeState& state);

}  // namespace pf::nn
