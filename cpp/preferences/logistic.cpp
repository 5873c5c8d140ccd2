// Logistic solves: the population model (IRLS + coordinate descent) and one small model per
// feature (feature_effects).
#include "preferences/logistic.h"

#include <cmath>
#include <limits>
#include <numeric>

#include "core/parallel.h"
#include "preferences/numerics.h"

namespace likeable::prefs {

LogisticFit fit_logistic(const CsrView& X, const float* controls, std::int64_t n_controls,
                         const float* labels, const float* row_offset, const LogisticOptions& opts,
                         const LogisticFit* init) {
  const std::int64_t n = X.n_rows, m = X.n_cols, c = n_controls;
  LIKEABLE_CHECK(opts.l2 >= 0 && opts.l1 >= 0, "l1 and l2 must be >= 0");
  LIKEABLE_CHECK(c == 0 || controls != nullptr, "controls missing");
  check_labels(labels, n);
  LogisticFit fit;
  fit.coef.assign(m, 0.0);
  fit.control_coef.assign(c, 0.0);
  if (init) {
    LIKEABLE_CHECK(static_cast<std::int64_t>(init->coef.size()) == m &&
                       static_cast<std::int64_t>(init->control_coef.size()) == c,
                   "warm start has the wrong size");
    fit.coef = init->coef;
    fit.control_coef = init->control_coef;
    fit.intercept = opts.fit_intercept ? init->intercept : 0.0;
  }
  if (n == 0) {
    fit.converged = true;
    return fit;
  }
  // Column access for coordinate descent: CSC copy of X, column-major controls.
  const Columns columns = to_columns(X);
  const std::vector<std::int64_t>& col_ptr = columns.ptr;
  const std::vector<std::int64_t>& col_row = columns.row;
  const std::vector<double>& col_val = columns.val;
  std::vector<double> ctl(checked_mul(static_cast<std::size_t>(c), static_cast<std::size_t>(n)));
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < c; ++j) ctl[j * n + i] = controls[i * c + j];

  std::vector<double> eta(n), w(n), s(n);
  auto compute_eta = [&](const LogisticFit& f) {
    for (std::int64_t i = 0; i < n; ++i) {
      double e = f.intercept + (row_offset ? row_offset[i] : 0.0);
      for (std::int64_t k = X.row_begin(i); k < X.row_end(i); ++k) e += X.values[k] * f.coef[X.indices[k]];
      eta[i] = e;
    }
    for (std::int64_t j = 0; j < c; ++j) {
      const double g = f.control_coef[j];
      if (g != 0)
        for (std::int64_t i = 0; i < n; ++i) eta[i] += g * ctl[j * n + i];
    }
  };
  auto objective = [&](const LogisticFit& f) {
    compute_eta(f);
    double obj = 0;
    for (std::int64_t i = 0; i < n; ++i) obj += log_loss(eta[i], labels[i]);
    for (double b : f.coef) obj += 0.5 * opts.l2 * b * b + opts.l1 * std::abs(b);
    return obj;
  };

  std::vector<double> h_feat(m), h_ctl(c);
  double current = objective(fit);
  const double inner_tol = opts.tol * 0.1;
  for (int it = 0; it < opts.max_iter; ++it) {
    // Quadratic model at the current point (eta already matches `fit`).
    for (std::int64_t i = 0; i < n; ++i) {
      const double p = sigmoid(eta[i]);
      w[i] = std::max(p * (1 - p), kMinWeight);
      s[i] = labels[i] - p;  // working residual, kept equal to r - W * X d
    }
    for (std::int64_t j = 0; j < m; ++j) {
      double h = 0;
      for (std::int64_t k = col_ptr[j]; k < col_ptr[j + 1]; ++k) h += w[col_row[k]] * col_val[k] * col_val[k];
      h_feat[j] = h;
    }
    for (std::int64_t j = 0; j < c; ++j) {
      double h = 0;
      for (std::int64_t i = 0; i < n; ++i) h += w[i] * ctl[j * n + i] * ctl[j * n + i];
      h_ctl[j] = h;
    }
    const double h_icpt = std::accumulate(w.begin(), w.end(), 0.0);
    const LogisticFit old = fit;
    for (int sweep = 0; sweep < 5000; ++sweep) {
      double max_delta = 0;
      for (std::int64_t j = 0; j < m; ++j) {
        const double denom = h_feat[j] + opts.l2;
        if (col_ptr[j] == col_ptr[j + 1] || denom <= 0) continue;
        double g = 0;
        for (std::int64_t k = col_ptr[j]; k < col_ptr[j + 1]; ++k) g += col_val[k] * s[col_row[k]];
        const double z = h_feat[j] * fit.coef[j] + g;
        double next = z;
        if (opts.l1 > 0) next = z > opts.l1 ? z - opts.l1 : (z < -opts.l1 ? z + opts.l1 : 0.0);
        next /= denom;
        const double delta = next - fit.coef[j];
        if (delta != 0) {
          for (std::int64_t k = col_ptr[j]; k < col_ptr[j + 1]; ++k)
            s[col_row[k]] -= w[col_row[k]] * col_val[k] * delta;
          fit.coef[j] = next;
          max_delta = std::max(max_delta, std::abs(delta));
        }
      }
      for (std::int64_t j = 0; j < c; ++j) {
        if (h_ctl[j] <= 0) continue;
        double g = 0;
        for (std::int64_t i = 0; i < n; ++i) g += ctl[j * n + i] * s[i];
        const double delta = g / h_ctl[j];
        for (std::int64_t i = 0; i < n; ++i) s[i] -= w[i] * ctl[j * n + i] * delta;
        fit.control_coef[j] += delta;
        max_delta = std::max(max_delta, std::abs(delta));
      }
      if (opts.fit_intercept) {
        const double delta = std::accumulate(s.begin(), s.end(), 0.0) / h_icpt;
        for (std::int64_t i = 0; i < n; ++i) s[i] -= w[i] * delta;
        fit.intercept += delta;
        max_delta = std::max(max_delta, std::abs(delta));
      }
      if (max_delta < inner_tol) break;
    }
    // Backtracking on the true objective: IRLS steps can overshoot on nearly separable data.
    LogisticFit proposal = fit;
    double step = 1.0, next_obj = objective(fit);
    for (int halve = 0; halve < 40 && !(next_obj <= current + 1e-12 * std::abs(current)); ++halve) {
      step *= 0.5;
      for (std::int64_t j = 0; j < m; ++j) fit.coef[j] = old.coef[j] + step * (proposal.coef[j] - old.coef[j]);
      for (std::int64_t j = 0; j < c; ++j)
        fit.control_coef[j] = old.control_coef[j] + step * (proposal.control_coef[j] - old.control_coef[j]);
      fit.intercept = old.intercept + step * (proposal.intercept - old.intercept);
      next_obj = objective(fit);
    }
    double change = std::abs(fit.intercept - old.intercept);
    for (std::int64_t j = 0; j < m; ++j) change = std::max(change, std::abs(fit.coef[j] - old.coef[j]));
    for (std::int64_t j = 0; j < c; ++j)
      change = std::max(change, std::abs(fit.control_coef[j] - old.control_coef[j]));
    current = next_obj;
    fit.n_iter = it + 1;
    if (change < opts.tol) {
      fit.converged = true;
      break;
    }
  }
  return fit;
}

FeatureEffects feature_effects(const CsrView& X, const float* controls, std::int64_t n_controls,
                               const float* labels, double l2, bool fit_intercept, int max_iter,
                               double tol, int threads) {
  const std::int64_t n = X.n_rows, m = X.n_cols, c = n_controls;
  LIKEABLE_CHECK(l2 >= 0, "l2 must be >= 0");
  check_labels(labels, n);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  FeatureEffects fx;
  fx.coef.assign(m, 0.0);
  fx.std_error.assign(m, nan);
  fx.z.assign(m, nan);
  fx.p_value.assign(m, nan);
  fx.n_active.assign(m, 0);
  // CSC of X so each feature's column is contiguous.
  const Columns columns = to_columns(X);
  const std::vector<std::int64_t>& col_ptr = columns.ptr;
  const std::vector<std::int64_t>& col_row = columns.row;
  const std::vector<double>& col_val = columns.val;
  const std::int64_t p = 1 + c + (fit_intercept ? 1 : 0);  // [feature, controls..., intercept]
  parallel_for(m, 8, threads, [&](std::int64_t begin, std::int64_t end, int) {
    std::vector<double> x(n, 0.0), theta(p), trial(p), grad(p), step(p), hess, eta(n), row(p);
    auto fill_row = [&](std::int64_t i) {
      row[0] = x[i];
      for (std::int64_t j = 0; j < c; ++j) row[1 + j] = controls[i * c + j];
      if (fit_intercept) row[p - 1] = 1.0;
    };
    auto objective = [&](const std::vector<double>& th) {
      double obj = 0.5 * l2 * th[0] * th[0];
      for (std::int64_t i = 0; i < n; ++i) {
        fill_row(i);
        double e = 0;
        for (std::int64_t j = 0; j < p; ++j) e += row[j] * th[j];
        eta[i] = e;
        obj += log_loss(e, labels[i]);
      }
      return obj;
    };
    auto build_hessian = [&](const std::vector<double>& th) {
      hess.assign(p * p, 0.0);
      hess[0] = l2;
      std::fill(grad.begin(), grad.end(), 0.0);
      grad[0] = -l2 * th[0];
      for (std::int64_t i = 0; i < n; ++i) {
        fill_row(i);
        const double pr = sigmoid(eta[i]), wi = std::max(pr * (1 - pr), kMinWeight);
        for (std::int64_t a = 0; a < p; ++a) {
          grad[a] += row[a] * (labels[i] - pr);
          for (std::int64_t b = 0; b <= a; ++b) hess[a * p + b] += wi * row[a] * row[b];
        }
      }
      for (std::int64_t a = 0; a < p; ++a)
        for (std::int64_t b = 0; b < a; ++b) hess[b * p + a] = hess[a * p + b];
    };
    for (std::int64_t f = begin; f < end; ++f) {
      const std::int64_t active = col_ptr[f + 1] - col_ptr[f];
      fx.n_active[f] = active;
      if (active == 0) continue;
      for (std::int64_t q = col_ptr[f]; q < col_ptr[f + 1]; ++q) x[col_row[q]] += col_val[q];
      std::fill(theta.begin(), theta.end(), 0.0);
      double current = objective(theta);
      for (int it = 0; it < max_iter; ++it) {
        build_hessian(theta);
        factor_spd(hess, p);
        step = grad;
        cholesky_solve(hess, p, step.data());
        const double change = backtrack(theta, step, grad, p, current, objective, trial);
        theta.swap(trial);
        if (change < tol) break;
      }
      // Standard error: sqrt of the (0, 0) entry of the inverse Hessian at the optimum.
      build_hessian(theta);
      factor_spd(hess, p);
      std::vector<double> e0(p, 0.0);
      e0[0] = 1.0;
      cholesky_solve(hess, p, e0.data());
      const double se = std::sqrt(e0[0]);
      fx.coef[f] = theta[0];
      fx.std_error[f] = se;
      fx.z[f] = theta[0] / se;
      fx.p_value[f] = std::erfc(std::abs(fx.z[f]) / std::sqrt(2.0));
      for (std::int64_t q = col_ptr[f]; q < col_ptr[f + 1]; ++q) x[col_row[q]] = 0.0;
    }
  });
  return fx;
}

}  // namespace likeable::prefs
