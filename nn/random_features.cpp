// random_features.cpp — Gaussian orthogonal random matrices, via Householder QR.
#include "nn/random_features.h"

#include "engine/error.h"

#include <cmath>

namespace pf::nn {

// Householder QR: for each column k, a reflection H_k = I - 2 u u^T / (u^T u) maps
// the part of column k on and below the diagonal onto a multiple of e_k. Applying
// H_0, H_1, ... to A leaves R; Q = H_0 H_1 ... H_{n-1} is accumulated alongside.
void householder_qr(const std::vector<double>& a, int64_t n, std::vector<double>& q,
                    std::vector<double>& r) {
    PF_CHECK(int64_t(a.size()) == n * n, "householder_qr: {} values for a {}x{} matrix",
             a.size(), n, n);
    r = a;
    q.assign(n * n, 0.0);
    for (int64_t i = 0; i < n; ++i) q[i * n + i] = 1.0;
    std::vector<double> u(n);
    for (int64_t k = 0; k < n; ++k) {
        // u = x - alpha e_k for x = R[k:, k], alpha = -sign(x_k) |x| (avoids cancellation).
        double norm = 0;
        for (int64_t i = k; i < n; ++i) norm += r[i * n + k] * r[i * n + k];
        norm = std::sqrt(norm);
        if (norm == 0) continue;
        double alpha = r[k * n + k] > 0 ? -norm : norm;
        double u_norm2 = 0;
        for (int64_t i = k; i < n; ++i) {
            u[i] = r[i * n + k] - (i == k ? alpha : 0.0);
            u_norm2 += u[i] * u[i];
        }
        if (u_norm2 == 0) continue;
        // R <- H R  (rows k..n-1 change): R[:, j] -= 2 u (u . R[:, j]) / |u|^2
        for (int64_t j = 0; j < n; ++j) {
            double dot = 0;
            for (int64_t i = k; i < n; ++i) dot += u[i] * r[i * n + j];
            double f = 2 * dot / u_norm2;
            for (int64_t i = k; i < n; ++i) r[i * n + j] -= f * u[i];
        }
        // Q <- Q H  (columns k..n-1 change): Q[i, :] -= 2 (Q[i, :] . u) u^T / |u|^2
        for (int64_t i = 0; i < n; ++i) {
            double dot = 0;
            for (int64_t j = k; j < n; ++j) dot += q[i * n + j] * u[j];
            double f = 2 * dot / u_norm2;
            for (int64_t j = k; j < n; ++j) q[i * n + j] -= f * u[j];
        }
    }
}

Tensor gaussian_iid_matrix(int64_t m, int64_t d, Generator& gen) {
    return Tensor::randn({m, d}, gen);
}

Tensor gaussian_orthogonal_matrix(int64_t m, int64_t d, Generator& gen, RowScaling scaling) {
    PF_CHECK(m >= 1 && d >= 1, "gaussian_orthogonal_matrix: bad size ({}, {})", m, d);
    Tensor w = Tensor::empty({m, d});
    float* out = w.mutable_data();
    std::vector<double> gaussian(d * d), q, r;
    for (int64_t row0 = 0; row0 < m; row0 += d) {
        for (double& g : gaussian) g = gen.normal();
        householder_qr(gaussian, d, q, r);
        // Q's columns times sign(R_kk) make Q unique and Haar distributed; we use the
        // rows of that Q^T (the corrected columns of Q), which are orthonormal.
        int64_t rows = std::min(d, m - row0);
        for (int64_t i = 0; i < rows; ++i) {
            double sign = r[i * d + i] < 0 ? -1.0 : 1.0;
            for (int64_t j = 0; j < d; ++j) out[(row0 + i) * d + j] = float(sign * q[j * d + i]);
        }
    }
    // Row lengths: chi(d) (the norm of a fresh Gaussian vector), or sqrt(d).
    for (int64_t i = 0; i < m; ++i) {
        double length = std::sqrt(double(d));
        if (scaling == RowScaling::Chi) {
            double sum = 0;
            for (int64_t j = 0; j < d; ++j) {
                double g = gen.normal();
                sum += g * g;
            }
            length = std::sqrt(sum);
        }
        for (int64_t j = 0; j < d; ++j) out[i * d + j] *= float(length);
    }
    return w;
}

}  // namespace pf::nn
