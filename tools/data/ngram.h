// ngram.h — a back-off n-gram predictor: the baseline that says how much of a
// sequence task is answered by counting contexts seen in training.
//
//   NgramPredictor ngram(train_sequences, /*order=*/6);
//   std::vector<double> acc = ngram.accuracy(test_sequences);  // acc[k]: contexts of <= k tokens
//
// It predicts token i of a sequence as the most frequent follower, in the training
// sequences, of the longest context s[i-k..i) (k <= order, never crossing the start
// of a sequence) that occurred there; an unseen context backs off to a shorter one,
// down to k = 0: the most frequent token (the majority guess). Ties go to the
// smaller token. Tokens are small non-negative integers (fewer than 32).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace pf::data {

class NgramPredictor {
public:
    static constexpr int kMaxOrder = 10;  // 11 tokens of 5 bits fit in a 64-bit key

    NgramPredictor(const std::vector<std::vector<int32_t>>& train, int order);

    int order() const { return order_; }
    // The prediction for position i of `sequence` using contexts of at most k tokens.
    int32_t predict(const std::vector<int32_t>& sequence, int64_t i, int k) const;
    // Fraction of all positions of `test` predicted right, for each k = 0 .. order.
    std::vector<double> accuracy(const std::vector<std::vector<int32_t>>& test) const;

private:
    // The most frequent follower of the context sequence[i-k..i), or -1 if unseen.
    int32_t follower(const std::vector<int32_t>& sequence, int64_t i, int k) const;

    int order_;
    // best_[k]: (context key, most frequent next token), sorted by key.
    std::vector<std::vector<std::pair<uint64_t, int32_t>>> best_;
};

}  // namespace pf::data
