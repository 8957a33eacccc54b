// ngram.cpp — the back-off n-gram predictor (see ngram.h).
#include "tools/data/ngram.h"

#include "engine/error.h"

#include <algorithm>

namespace pf::data {

namespace {
constexpr int kBits = 5;  // bits per token in a key

// The k tokens before position i, packed into an integer (a leading 1 marks the length,
// so that contexts of different lengths never share a key).
uint64_t context_key(const std::vector<int32_t>& s, int64_t i, int k) {
    uint64_t key = 1;
    for (int64_t j = i - k; j < i; ++j) key = (key << kBits) | uint64_t(s[j]);
    return key;
}
}  // namespace

NgramPredictor::NgramPredictor(const std::vector<std::vector<int32_t>>& train, int order)
    : order_(order), best_(order + 1) {
    PF_CHECK(order >= 0 && order <= kMaxOrder, "n-gram order {} is not in 0..{}", order, kMaxOrder);
    for (const auto& s : train)
        for (int32_t t : s)
            PF_CHECK(t >= 0 && t < (1 << kBits), "n-gram: token {} is not in 0..31", t);
    for (int k = 0; k <= order; ++k) {
        // Every (context, next) pair of the training data as one key, sorted: equal
        // contexts are then neighbours, with their followers in token order.
        std::vector<uint64_t> pairs;
        for (const auto& s : train)
            for (int64_t i = k; i < int64_t(s.size()); ++i)
                pairs.push_back((context_key(s, i, k) << kBits) | uint64_t(s[i]));
        std::sort(pairs.begin(), pairs.end());
        auto& best = best_[k];
        for (size_t a = 0; a < pairs.size();) {  // one context: pairs[a, b)
            uint64_t context = pairs[a] >> kBits;
            size_t b = a, top_count = 0;
            int32_t top = -1;
            while (b < pairs.size() && pairs[b] >> kBits == context) {
                size_t c = b;  // one follower: pairs[b, c)
                while (c < pairs.size() && pairs[c] == pairs[b]) ++c;
                if (c - b > top_count) top_count = c - b, top = int32_t(pairs[b] & ((1 << kBits) - 1));
                b = c;
            }
            best.emplace_back(context, top);
            a = b;
        }
    }
}

int32_t NgramPredictor::follower(const std::vector<int32_t>& s, int64_t i, int k) const {
    const auto& best = best_[k];
    uint64_t key = context_key(s, i, k);
    auto it = std::lower_bound(best.begin(), best.end(), std::make_pair(key, int32_t(-1)));
    return it != best.end() && it->first == key ? it->second : -1;
}

int32_t NgramPredictor::predict(const std::vector<int32_t>& s, int64_t i, int k) const {
    for (int j = int(std::min<int64_t>(k, i)); j >= 0; --j)
        if (int32_t next = follower(s, i, j); next >= 0) return next;
    return -1;  // no training data at all
}

std::vector<double> NgramPredictor::accuracy(const std::vector<std::vector<int32_t>>& test) const {
    std::vector<int64_t> correct(order_ + 1, 0);
    int64_t total = 0;
    for (const auto& s : test) {
        for (int64_t i = 0; i < int64_t(s.size()); ++i, ++total) {
            // The longest seen context of each length k; the prediction at order k is the
            // follower of the longest seen one of length <= k.
            int32_t prediction = -1;
            for (int k = 0; k <= order_; ++k) {
                if (k <= i)
                    if (int32_t next = follower(s, i, k); next >= 0) prediction = next;
                correct[k] += prediction == s[i];
            }
        }
    }
    std::vector<double> result(order_ + 1, 0.0);
    for (int k = 0; k <= order_; ++k) result[k] = total ? double(correct[k]) / double(total) : 0.0;
    return result;
}

}  // namespace pf::data
