// random_features.h — the random projection W (m x d) of FAVOR+, and the QR behind it.
//
// Softmax-kernel features use m random directions w_1..w_m ~ N(0, I_d). They are
// unbiased whether drawn independently (iid) or made exactly orthogonal; orthogonal
// ones have lower variance (Performer paper, Theorem 2). To draw them:
//   - stack floor(m/d) blocks, each the Q of a QR decomposition of a d x d Gaussian
//     matrix (its rows are orthonormal; signs fixed by sign(diag R) so that Q is
//     uniformly distributed), plus the first m mod d rows of one more block;
//   - rescale row i to a length that a Gaussian vector would have: the norm of an
//     independent N(0, I_d) draw (chi(d) distributed), or exactly sqrt(d).
#pragma once

#include "engine/random.h"
#include "engine/tensor.h"

#include <vector>

namespace pf::nn {

enum class RowScaling { Chi, SqrtD };

// (m, d) with orthogonal rows inside each block of d.
Tensor gaussian_orthogonal_matrix(int64_t m, int64_t d, Generator& gen,
                                  RowScaling scaling = RowScaling::Chi);
// (m, d) with independent N(0, 1) entries.
Tensor gaussian_iid_matrix(int64_t m, int64_t d, Generator& gen);

// Householder QR of a square n x n row-major matrix `a` (in double): on return `q`
// holds the orthogonal factor Q and `r` the upper-triangular R, with a = Q R.
void householder_qr(const std::vector<double>& a, int64_t n, std::vector<double>& q,
                    std::vector<double>& r);

}  // namespace pf::nn
