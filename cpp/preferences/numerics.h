// Numerics shared by the preference solvers (logistic.cpp, user_offsets.cpp): column access,
// the logistic loss, backtracking line search, and small dense Cholesky solves.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/errors.h"
#include "core/sparse.h"

namespace likeable::prefs {

// CSC copy of X (rows within a column ascending) for column-wise access.
struct Columns {
  std::vector<std::int64_t> ptr, row;
  std::vector<double> val;
};

Columns to_columns(const CsrView& X);

// Armijo backtracking from x along a descent step: halves the step until the objective falls by
// 1e-4 x the directional decrease. Writes the accepted point into `trial`, its objective into
// `current`, and returns the largest coordinate change.
template <class Objective>
double backtrack(const std::vector<double>& x, const std::vector<double>& step, const std::vector<double>& grad,
                 std::int64_t n, double& current, Objective&& objective, std::vector<double>& trial) {
  double decrease = 0;  // directional derivative along the step (positive)
  for (std::int64_t j = 0; j < n; ++j) decrease += grad[j] * step[j];
  double alpha = 1.0, next = 0;
  for (int halve = 0; halve < 40; ++halve) {
    for (std::int64_t j = 0; j < n; ++j) trial[j] = x[j] + alpha * step[j];
    next = objective(trial);
    if (next <= current - 1e-4 * alpha * decrease || alpha < 1e-9) break;
    alpha *= 0.5;
  }
  double change = 0;
  for (std::int64_t j = 0; j < n; ++j) change = std::max(change, std::abs(trial[j] - x[j]));
  current = next;
  return change;
}

// log(1 + exp(eta)) - y * eta without overflow.
inline double log_loss(double eta, double y) {
  const double softplus = eta > 0 ? eta + std::log1p(std::exp(-eta)) : std::log1p(std::exp(eta));
  return softplus - y * eta;
}
inline double sigmoid(double eta) {
  if (eta >= 0) return 1.0 / (1.0 + std::exp(-eta));
  const double e = std::exp(eta);
  return e / (1.0 + e);
}
// Floor on IRLS weights: keeps the quadratic model strictly convex on saturated rows.
constexpr double kMinWeight = 1e-10;

// In-place Cholesky of a small dense SPD matrix (row-major, lower triangle used); false when
// not positive definite. Hand-written on purpose: the systems are tiny (tens to a few hundred),
// double precision, one per thread, and BLAS/LAPACK call overhead would dominate.
bool cholesky(std::vector<double>& a, std::int64_t n);
// Solves L L^T x = b in place (b becomes x).
void cholesky_solve(const std::vector<double>& l, std::int64_t n, double* b);
// Factorises, adding a growing ridge if rounding made the matrix indefinite.
void factor_spd(std::vector<double>& a, std::int64_t n);
// Labels must be 0 or 1.
void check_labels(const float* labels, std::int64_t n);

}  // namespace likeable::prefs
