// attention.h — multi-head attention with a choice of mechanism: exact softmax, the
// Performer's FAVOR+ random features, and baselines.
//
// Shapes: B batch, L sequence length, D model width, H heads, d = D / H head width,
// m random features. Per head, attention maps q, k, v (L x d) to an output (L x d):
//
//   softmax   out = softmax(q k^T / sqrt(d)) v                 O(L^2 d), the baseline
//   favor     out = phi(q) (phi(k)^T v) / phi(q) (phi(k)^T 1)  O(L m d), FAVOR+:
//             phi(x) = m^-1/2 exp(W x^ - |x^|^2 / 2 - c), x^ = d^-1/4 x, so that
//             E[phi(q) . phi(k)] = exp(q . k / sqrt(d)) (positive random features)
//   trig      the same with phi(x) = m^-1/2 [cos(W x^), sin(W x^)] exp(|x^|^2 / 2):
//             unbiased too, but not positive — denominators near 0 or below
//   relu      phi(x) = relu(W x^) + 1e-3: Performer-ReLU, a different kernel
//   identity  out = v: no attention at all, the speed limit ("X (OPT)" in the paper)
//
// and the paper's two rivals (nn/baselines.h):
//
//   linformer out = softmax(q (E k)^T / sqrt(d)) (F v)       O(L k d), learned E, F (k x L)
//             project keys and values along the sequence; bidirectional only
//   reformer  LSH attention: shared queries and keys, hashed into buckets by random
//             rotations, attention within chunks of the bucket-sorted order
//
// Causal attention lets position i see positions j <= i only: a mask for softmax,
// prefix sums for the linear mechanisms (engine causal_dot_product, chunked).
// The usual use is the module below; the functions are its steps, exposed for the
// tests and for build/approx.
#pragma once

#include "engine/random.h"
#include "nn/decode_state.h"
#include "nn/module.h"
#include "nn/random_features.h"

#include <functional>
#include <string>
#include <vector>

namespace pf::nn {

enum class Mechanism { Softmax, Favor, Trig, Relu, Identity, Linformer, Reformer };
// The mechanisms' names, in the enum's order: the one list of them ("softmax", ...).
const std::vector<std::string>& mechanism_names();
Mechanism parse_mechanism(const std::string& name);  // throws pf::Error on an unknown name
std::string mechanism_name(Mechanism mechanism);
bool uses_random_features(Mechanism mechanism);  // favor, trig, relu

// The random features W: iid Gaussian rows, orthogonal rows (FAVOR+), or orthogonal rows
// with FAVOR++'s variance-minimising map (favor only; below). Names: "iid", ...
enum class FeatureKind { Iid, Orthogonal, Optimal };
const std::vector<std::string>& feature_kind_names();

// ---- feature maps: x (B, H, L, d), W (m, d) → phi (B, H, L, m) [trig: 2m] ----------
constexpr float kReluEpsilon = 1e-3f;
// Linear attention floors denominators below this in magnitude to it: safe_divide in
// attention.cpp.
constexpr float kSmallestDenominator = 1e-30f;

// The plain positive random features of the softmax kernel:
//   phi(x) = m^-1/2 exp(W x^ - |x^|^2 / 2),  E_W[phi(q) . phi(k)] = exp(q . k / sqrt(d)).
Tensor positive_random_features(const Tensor& x, const Tensor& W);
// FAVOR+ positive features as attention uses them: the same, times e^-c. The stabiliser
// c is a constant for autograd (it cancels between numerator and denominator): for a
// query the largest W x^ - |x^|^2 / 2 of its row; for keys of bidirectional attention
// the largest over all positions and features of each (batch, head). The largest
// feature is then 1. No constant is added to the features (the reference code adds
// 1e-4 or 1e-6 to keep denominators above 0): added to a query, eps e^c spreads a share
// of the row over the keys by their feature mass, sum_r phi(k)_r, a share that grows as
// trained queries sharpen (at head width 32 and m = 64, 1e-4 made training break down:
// docs/favor.md). A denominator that underflowed is handled where it arises
// (kSmallestDenominator). key_mask (B, L), for keys: padding is left out of the max.
Tensor favor_features(const Tensor& x, const Tensor& W, bool is_query,
                      const Tensor& key_mask = {}, const Tensor& a = {});
// Keys of causal attention: a stabiliser shared by all positions would let later keys
// change earlier outputs (in float32 rounding, and by underflow when a later key is
// much larger). Here c_j is the largest row value among keys 0..j (a prefix maximum),
// returned beside the features as log_scale (B, H, L) for causal linear attention,
// which rescales sums of keys with different c (engine causal_dot_product).
struct CausalKeyFeatures {
    Tensor phi;        // (B, H, L, m)
    Tensor log_scale;  // c: (B, H, L), non-decreasing along L
};
CausalKeyFeatures favor_causal_key_features(const Tensor& k, const Tensor& W,
                                            const Tensor& key_mask = {}, const Tensor& a = {});

// FAVOR++ (Likhosherstov et al., NeurIPS 2022, "Chefs' Random Tables": optimal positive
// random features). With w ~ N(0, I_d), any A < 1/4, B = sqrt(1 - 4A), D = (1 - 4A)^(d/4):
//   f(w, x) = D exp(A |w|^2 + B w.x^ - |x^|^2 / 2),  E[f(w, q) f(w, k)] = exp(q^ . k^)
// (the Gaussian integral of exp(2A |w|^2 + B w.(q^ + k^)) gives (1 - 4A)^(-d/2)
// exp(|q^ + k^|^2 / 2)). A = 0 is FAVOR+. The second moment, finite for A < 1/8,
//   D^4 (1 - 8A)^(-d/2) exp(2 (1 - 4A) |q^ + k^|^2 / (1 - 8A) - |q^|^2 - |k^|^2),
// has its log, averaged over pairs with mean |q^ + k^|^2 = s, least at
//   A = (1 - t) / 8,  t = ((d + 2s) + sqrt((d + 2s)^2 + 8 d s)) / (2d)  >= 1:
// A <= 0 shrinks the features of long w, more so the longer the pairs' sum. s = 0 gives
// A = 0. Attention uses the same map with one A per head (a (H) tensor for the feature
// functions above; D cancels between numerator and denominator).
double favor_plus_plus_a(double pair_norm2, int64_t d);
// The unbiased map with its D: phi(x) = m^-1/2 [f(w_r, x)]_r, for one A (tests, approx).
Tensor optimal_positive_random_features(const Tensor& x, const Tensor& W, double a);
// s for each head: the mean over sequences and pairs (i, j) of |q^_i + k^_j|^2 =
// mean |q^|^2 + mean |k^|^2 + 2 mean(q^) . mean(k^). q, k (B, H, L, d) → (H), doubles.
std::vector<double> mean_pair_norm2(const Tensor& q, const Tensor& k);
Tensor trig_features(const Tensor& x, const Tensor& W);
Tensor relu_features(const Tensor& x, const Tensor& W);

// ---- attention given per-head q, k, v: (B, H, L, d) → (B, H, L, d) ----------------
// key_mask (B, L): 1 for real positions, 0 for padding that no query may attend to.
Tensor softmax_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                         const Tensor& key_mask = {});
// out = phi_q S / (phi_q z), S = phi_k^T v, z = phi_k^T 1 (prefix sums when causal;
// key_log_scale (B, H, L): the keys' stabilisers, from favor_causal_key_features).
Tensor linear_attention(const Tensor& phi_q, const Tensor& phi_k, const Tensor& v, bool causal,
                        int64_t chunk = 64, const Tensor& key_log_scale = {});
// The same term by term (S and z apart; causal sums as an L x L matrix): the reference
// for the tests.
Tensor linear_attention_reference(const Tensor& phi_q, const Tensor& phi_k, const Tensor& v,
                                  bool causal, const Tensor& key_log_scale = {});

struct AttentionConfig {
    int64_t dim = 256;                      // D
    int64_t heads = 4;                      // H
    int64_t max_length = 1024;              // longest sequence (linformer: E, F's columns)
    Mechanism mechanism = Mechanism::Favor;
    bool causal = true;
    int64_t features = 128;                 // m (favor, trig, relu)
    FeatureKind feature_kind = FeatureKind::Orthogonal;  // W's rows; favor++: FAVOR++'s map
    int64_t chunk = 64;                     // causal linear attention's blocks; reformer's chunks
    int64_t linformer_k = 256;              // k: rows of linformer's E and F
    int64_t hashes = 4;                     // reformer: rounds of hashing
    int64_t buckets = 32;                   // reformer: buckets of each round (even)
    // Keep only q, k, v for backward and compute the mechanism again there (engine
    // recompute): the same numbers in less memory, at the cost of a second forward.
    bool recompute = false;
};

// Throws pf::Error naming the problem: D not divisible by H, a linear mechanism without
// features, a causal linformer, an odd number of buckets.
void check_config(const AttentionConfig& config);

// What a mechanism uses besides q, k and v: drawn (buffers) or learned (parameters).
struct MechanismTensors {
    Tensor features;   // favor, trig, relu: random features W (m, d)
    Tensor rotations;  // reformer: random rotations R (hashes, d, buckets / 2)
    Tensor E, F;       // linformer: learned projections of keys and values (k, max_length)
    Tensor favor_a;    // favor++: FAVOR++'s A for each head (H), a constant
};

// Attention of per-head q, k, v (B, H, L, d) → (B, H, L, d) by config's mechanism, with
// the mechanism's tensors. What MultiHeadAttention::forward runs between its projections.
// Reformer's keys are its queries: k is not used (and may be undefined).
Tensor attend(const AttentionConfig& config, const MechanismTensors& tensors, const Tensor& q,
              const Tensor& k, const Tensor& v, const Tensor& key_mask = {});

// The feature maps of a linear mechanism (favor, trig, relu) for per-head q and k, as
// attend() and recurrent decoding use them: phi_q, phi_k (B, H, L, m) [trig: 2m], and
// for causal favor the keys' stabilisers (B, H, L).
struct LinearFeatures {
    Tensor phi_q, phi_k, key_log_scale;
};
LinearFeatures linear_features(const AttentionConfig& config, const MechanismTensors& tensors,
                               const Tensor& q, const Tensor& k, const Tensor& key_mask = {});

// ---- recurrent decoding: one position at a time, q, k, v (B, H, 1, d) ----------------
// What decoding keeps between positions: DecodeState (nn/decode_state.h).
// Softmax: appends k and v to the cache; q attends to every position so far.
Tensor decode_softmax(const Tensor& q, const Tensor& k, const Tensor& v, DecodeState& state);
// Linear mechanisms: adds phi_k v^T to S (and phi_k to z), rescaled to the larger
// stabiliser, then reads phi_q S / phi_q z. key_log_scale (B, H, 1) or undefined (0).
// The same outputs as causal linear_attention over the whole prefix (tested).
Tensor decode_linear(const Tensor& phi_q, const Tensor& phi_k, const Tensor& key_log_scale,
                     const Tensor& v, DecodeState& state);

class MultiHeadAttention : public Module {
public:
    MultiHeadAttention(const AttentionConfig& config, Generator& gen);

    // x: (B, L, D) → (B, L, D); key_mask (B, L) optional (1 real, 0 padding).
    Tensor forward(const Tensor& x, const Tensor& key_mask = {});

    // Draw new random features W in place (for favor, trig, relu), or reformer's
    // random rotations; else a no-op.
    void redraw_features(Generator& gen);
    const Tensor& features() const { return tensors_.features; }  // (m, d)
    const MechanismTensors& mechanism_tensors() const { return tensors_; }
    const AttentionConfig& config() const { return config_; }

    // Analysis (build/eval --attention-shift): forward passes its per-head queries and
    // keys, (B, H, L, d) each, to the observer (reformer: the keys are the queries).
    using Observer = std::function<void(const Tensor& q, const Tensor& k)>;
    void set_observer(Observer observer) { observer_ = std::move(observer); }

    // Recurrent decoding of a causal layer: one position at a time, x_t: (B, D) →
    // (B, D), the same output as forward() gives at that position. No gradients.
    DecodeState start_decoding() const;
    Tensor decode_step(const Tensor& x_t, DecodeState& state) const;

    // favor++: the buffer "pair_norm2" (H), each head's running mean of s (see
    // favor_plus_plus_a), from which A is computed. It starts at 0 (A = 0, FAVOR+); each
    // forward in training mode moves it a tenth of the way to its batch's s after the
    // batch is attended, so A depends on past batches only (causality holds) and not
    // on the other sequences of the batch; evaluation and decoding use it as it is.
    static constexpr double kPairNormMomentum = 0.9;

private:
    MechanismTensors tensors_with_a() const;  // tensors_ and, for favor++, A per head

    AttentionConfig config_;
    int64_t head_dim_;
    Tensor w_q_, w_k_, w_v_, w_out_;        // (D, D) each; reformer has no w_k_ (keys are queries)
    Tensor b_q_, b_k_, b_v_, b_out_;        // (D) each
    MechanismTensors tensors_;              // buffers (features, rotations) or parameters (E, F)
    Tensor pair_norm2_;                     // favor++: running s per head (H)
    Observer observer_;
};

}  // namespace pf::nn
