#include "preferences/preferences.h"

#include <cmath>
#include <limits>
#include <numeric>

namespace likeable::prefs {
namespace {

// CSC copy of X (rows within a column ascending) for column-wise access.
struct Columns {
  std::vector<std::int64_t> ptr, row;
  std::vector<double> val;
};

Columns to_columns(const CsrView& X) {
  Columns c;
  c.ptr.assign(static_cast<std::size_t>(X.n_cols) + 1, 0);
  for (std::int64_t k = 0; k < X.nnz(); ++k) ++c.ptr[X.indices[k] + 1];
  std::partial_sum(c.ptr.begin(), c.ptr.end(), c.ptr.begin());
  c.row.resize(X.nnz());
  c.val.resize(X.nnz());
  std::vector<std::int64_t> fill(c.ptr.begin(), c.ptr.end() - 1);
  for (std::int64_t i = 0; i < X.n_rows; ++i)
    for (std::int64_t k = X.row_begin(i); k < X.row_end(i); ++k) {
      const std::int64_t pos = fill[X.indices[k]]++;
      c.row[pos] = i;
      c.val[pos] = X.values[k];
    }
  return c;
}

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

// In-place Cholesky of a small dense SPD matrix (row-major, lower triangle used). Hand-written
// on purpose: the systems are tiny (tens to a few hundred), double precision, one per thread,
// and BLAS/LAPACK call overhead would dominate. Returns false when not positive definite.
bool cholesky(std::vector<double>& a, std::int64_t n) {
  for (std::int64_t j = 0; j < n; ++j) {
    double d = a[j * n + j];
    for (std::int64_t k = 0; k < j; ++k) d -= a[j * n + k] * a[j * n + k];
    if (!(d > 0)) return false;
    d = std::sqrt(d);
    a[j * n + j] = d;
    for (std::int64_t i = j + 1; i < n; ++i) {
      double s = a[i * n + j];
      for (std::int64_t k = 0; k < j; ++k) s -= a[i * n + k] * a[j * n + k];
      a[i * n + j] = s / d;
    }
  }
  return true;
}
// Solves L L^T x = b in place (b becomes x).
void cholesky_solve(const std::vector<double>& l, std::int64_t n, double* b) {
  for (std::int64_t i = 0; i < n; ++i) {
    double s = b[i];
    for (std::int64_t k = 0; k < i; ++k) s -= l[i * n + k] * b[k];
    b[i] = s / l[i * n + i];
  }
  for (std::int64_t i = n - 1; i >= 0; --i) {
    double s = b[i];
    for (std::int64_t k = i + 1; k < n; ++k) s -= l[k * n + i] * b[k];
    b[i] = s / l[i * n + i];
  }
}
// Factorises, adding a growing ridge if rounding made the matrix indefinite.
void factor_spd(std::vector<double>& a, std::int64_t n) {
  std::vector<double> original = a;
  double jitter = 0;
  for (int attempt = 0; attempt < 20; ++attempt) {
    if (cholesky(a, n)) return;
    double scale = 0;
    for (std::int64_t i = 0; i < n; ++i) scale = std::max(scale, std::abs(original[i * n + i]));
    jitter = jitter == 0 ? 1e-12 * std::max(scale, 1.0) : jitter * 10;
    a = original;
    for (std::int64_t i = 0; i < n; ++i) a[i * n + i] += jitter;
  }
  throw InvalidArgument("Hessian is not positive definite (non-finite inputs?)");
}

void check_labels(const float* labels, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i)
    LIKEABLE_CHECK(labels[i] == 0.0f || labels[i] == 1.0f, "labels must be 0 or 1; row ", i, " has ",
                   labels[i]);
}

}  // namespace

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

std::int64_t fit_user_offsets(const CsrView& X, const float* base_logit, const float* labels,
                              const std::int64_t* row_ptr, const std::int64_t* rows,
                              std::int64_t n_users, float* offsets, const UserFitOptions& opts) {
  const std::int64_t m = X.n_cols;
  const double lambda = opts.shrinkage;
  LIKEABLE_CHECK(lambda > 0, "shrinkage must be > 0, got ", lambda);
  check_labels(labels, X.n_rows);
  LIKEABLE_CHECK(row_ptr[0] == 0, "row_ptr must start at 0");
  for (std::int64_t u = 0; u < n_users; ++u)
    LIKEABLE_CHECK(row_ptr[u + 1] >= row_ptr[u], "row_ptr must be non-decreasing");
  for (std::int64_t k = 0; k < row_ptr[n_users]; ++k)
    LIKEABLE_CHECK(rows[k] >= 0 && rows[k] < X.n_rows, "row id ", rows[k], " out of range");

  const int threads = resolve_threads(opts.threads);
  std::vector<std::vector<std::int32_t>> local_of(threads);  // feature -> local index, -1 if absent
  std::atomic<std::int64_t> not_converged{0};

  parallel_for(n_users, 16, threads, [&](std::int64_t begin, std::int64_t end, int tid) {
    auto& local = local_of[tid];
    if (local.empty()) local.assign(m, -1);
    std::vector<std::int32_t> feats, lidx;
    std::vector<std::int64_t> lptr;
    std::vector<double> lval, y, base, delta, trial, grad, step, eta, w, mat, xg, dense;
    for (std::int64_t u = begin; u < end; ++u) {
      float* out = offsets + u * m;
      std::fill(out, out + m, 0.0f);
      const std::int64_t n = row_ptr[u + 1] - row_ptr[u];
      if (n == 0) continue;
      // Gather this user's rows in local feature coordinates.
      feats.clear(); lidx.clear(); lval.clear(); lptr.assign(1, 0); y.clear(); base.clear();
      for (std::int64_t r = row_ptr[u]; r < row_ptr[u + 1]; ++r) {
        const std::int64_t row = rows[r];
        for (std::int64_t k = X.row_begin(row); k < X.row_end(row); ++k) {
          const std::int32_t f = X.indices[k];
          if (local[f] < 0) {
            local[f] = static_cast<std::int32_t>(feats.size());
            feats.push_back(f);
          }
          lidx.push_back(local[f]);
          lval.push_back(X.values[k]);
        }
        lptr.push_back(static_cast<std::int64_t>(lidx.size()));
        y.push_back(labels[row]);
        base.push_back(base_logit[row]);
      }
      const std::int64_t k = static_cast<std::int64_t>(feats.size());
      for (std::int32_t f : feats) local[f] = -1;
      if (k == 0) continue;
      // Newton system in whichever is smaller: k x k (primal) or n x n (Woodbury, dual).
      const bool dual = k > n;
      std::vector<double> gram;
      if (dual) {
        gram.assign(n * n, 0.0);
        dense.assign(k, 0.0);
        for (std::int64_t a = 0; a < n; ++a) {
          for (std::int64_t q = lptr[a]; q < lptr[a + 1]; ++q) dense[lidx[q]] += lval[q];
          for (std::int64_t b = 0; b <= a; ++b) {
            double dot = 0;
            for (std::int64_t q = lptr[b]; q < lptr[b + 1]; ++q) dot += dense[lidx[q]] * lval[q];
            gram[a * n + b] = gram[b * n + a] = dot;
          }
          for (std::int64_t q = lptr[a]; q < lptr[a + 1]; ++q) dense[lidx[q]] = 0;
        }
      }
      delta.assign(k, 0.0);
      eta.resize(n); w.resize(n);
      auto objective = [&](const std::vector<double>& d) {
        double obj = 0, norm = 0;
        for (std::int64_t i = 0; i < n; ++i) {
          double e = base[i];
          for (std::int64_t q = lptr[i]; q < lptr[i + 1]; ++q) e += lval[q] * d[lidx[q]];
          eta[i] = e;
          obj += log_loss(e, y[i]);
        }
        for (double v : d) norm += v * v;
        return obj + 0.5 * lambda * norm;
      };
      double current = objective(delta);
      bool converged = false;
      for (int it = 0; it < opts.max_iter && !converged; ++it) {
        grad.assign(k, 0.0);  // negative gradient: X^T (y - p) - lambda * delta
        for (std::int64_t i = 0; i < n; ++i) {
          const double p = sigmoid(eta[i]);
          w[i] = std::max(p * (1 - p), kMinWeight);
          for (std::int64_t q = lptr[i]; q < lptr[i + 1]; ++q) grad[lidx[q]] += lval[q] * (y[i] - p);
        }
        for (std::int64_t j = 0; j < k; ++j) grad[j] -= lambda * delta[j];
        step = grad;
        if (!dual) {
          mat.assign(k * k, 0.0);
          for (std::int64_t j = 0; j < k; ++j) mat[j * k + j] = lambda;
          for (std::int64_t i = 0; i < n; ++i)
            for (std::int64_t q = lptr[i]; q < lptr[i + 1]; ++q)
              for (std::int64_t r = lptr[i]; r < lptr[i + 1]; ++r)
                mat[lidx[q] * k + lidx[r]] += w[i] * lval[q] * lval[r];
          factor_spd(mat, k);
          cholesky_solve(mat, k, step.data());
        } else {
          // (lambda I + X^T W X)^-1 g = (g - X^T D (lambda I + D G D)^-1 D X g) / lambda, D = W^1/2.
          mat.assign(n * n, 0.0);
          xg.assign(n, 0.0);
          for (std::int64_t a = 0; a < n; ++a) w[a] = std::sqrt(w[a]);  // w now holds D = W^1/2
          for (std::int64_t a = 0; a < n; ++a) {
            const double da = w[a];
            for (std::int64_t b = 0; b < n; ++b) mat[a * n + b] = da * w[b] * gram[a * n + b];
            mat[a * n + a] += lambda;
            double dot = 0;
            for (std::int64_t q = lptr[a]; q < lptr[a + 1]; ++q) dot += lval[q] * grad[lidx[q]];
            xg[a] = da * dot;
          }
          factor_spd(mat, n);
          cholesky_solve(mat, n, xg.data());
          for (std::int64_t a = 0; a < n; ++a) {
            const double coeff = w[a] * xg[a];
            for (std::int64_t q = lptr[a]; q < lptr[a + 1]; ++q) step[lidx[q]] -= lval[q] * coeff;
          }
          for (double& v : step) v /= lambda;
        }
        trial.resize(k);
        const double change = backtrack(delta, step, grad, k, current, objective, trial);
        delta.swap(trial);  // eta now matches delta
        if (change < opts.tol) converged = true;
      }
      if (!converged) not_converged.fetch_add(1, std::memory_order_relaxed);
      for (std::int64_t j = 0; j < k; ++j) out[feats[j]] = static_cast<float>(delta[j]);
    }
  });
  return not_converged.load();
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
