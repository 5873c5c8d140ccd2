// Per-user offsets: thousands of small Newton solves, one per user (user_offsets.h).
#include "preferences/user_offsets.h"

#include <atomic>
#include <memory>
#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "preferences/numerics.h"

namespace likeable::prefs {
namespace {

// One user's problem in local feature coordinates (the features the user touched), and the
// buffers of its Newton iterations; one solver per thread, reused across users.
class UserSolver {
 public:
  UserSolver(const CsrView& X, const float* base_logit, const float* labels, const UserFitOptions& opts)
      : X_(X), base_logit_(base_logit), labels_(labels), opts_(opts), lambda_(opts.shrinkage), local_(X.n_cols, -1) {}

  // Fits the user whose rows are rows[begin, end) and writes its dense offset row (zeros where
  // untouched); returns false when it did not converge within max_iter.
  bool fit(const std::int64_t* rows, std::int64_t n_rows, float* out) {
    std::fill(out, out + X_.n_cols, 0.0f);
    if (n_rows == 0) return true;
    gather(rows, n_rows);
    if (k_ == 0) return true;
    // Newton system in whichever is smaller: k x k (primal) or n x n (Woodbury, dual).
    const bool dual = k_ > n_;
    if (dual) build_gram();
    delta_.assign(k_, 0.0);
    eta_.resize(n_);
    w_.resize(n_);
    double current = objective(delta_);
    bool converged = false;
    for (int it = 0; it < opts_.max_iter && !converged; ++it) {
      gradient();
      step_ = grad_;
      if (dual) solve_dual();
      else solve_primal();
      trial_.resize(k_);
      const double change = backtrack(delta_, step_, grad_, k_, current,
                                      [this](const std::vector<double>& d) { return objective(d); }, trial_);
      delta_.swap(trial_);  // eta now matches delta
      if (change < opts_.tol) converged = true;
    }
    for (std::int64_t j = 0; j < k_; ++j) out[feats_[j]] = static_cast<float>(delta_[j]);
    return converged;
  }

 private:
  // This user's rows in local feature coordinates -> feats_, lptr_/lidx_/lval_, y_, base_.
  void gather(const std::int64_t* rows, std::int64_t n_rows) {
    feats_.clear(); lidx_.clear(); lval_.clear(); lptr_.assign(1, 0); y_.clear(); base_.clear();
    for (std::int64_t r = 0; r < n_rows; ++r) {
      const std::int64_t row = rows[r];
      for (std::int64_t k = X_.row_begin(row); k < X_.row_end(row); ++k) {
        const std::int32_t f = X_.indices[k];
        if (local_[f] < 0) {
          local_[f] = static_cast<std::int32_t>(feats_.size());
          feats_.push_back(f);
        }
        lidx_.push_back(local_[f]);
        lval_.push_back(X_.values[k]);
      }
      lptr_.push_back(static_cast<std::int64_t>(lidx_.size()));
      y_.push_back(labels_[row]);
      base_.push_back(base_logit_[row]);
    }
    for (std::int32_t f : feats_) local_[f] = -1;
    n_ = n_rows;
    k_ = static_cast<std::int64_t>(feats_.size());
  }

  // G = X X^T over the user's rows (n x n), for the dual system.
  void build_gram() {
    gram_.assign(n_ * n_, 0.0);
    dense_.assign(k_, 0.0);
    for (std::int64_t a = 0; a < n_; ++a) {
      for (std::int64_t q = lptr_[a]; q < lptr_[a + 1]; ++q) dense_[lidx_[q]] += lval_[q];
      for (std::int64_t b = 0; b <= a; ++b) {
        double dot = 0;
        for (std::int64_t q = lptr_[b]; q < lptr_[b + 1]; ++q) dot += dense_[lidx_[q]] * lval_[q];
        gram_[a * n_ + b] = gram_[b * n_ + a] = dot;
      }
      for (std::int64_t q = lptr_[a]; q < lptr_[a + 1]; ++q) dense_[lidx_[q]] = 0;
    }
  }

  // Sum of log losses plus 0.5 lambda ||d||^2; leaves each row's logit in eta_.
  double objective(const std::vector<double>& d) {
    double obj = 0, norm = 0;
    for (std::int64_t i = 0; i < n_; ++i) {
      double e = base_[i];
      for (std::int64_t q = lptr_[i]; q < lptr_[i + 1]; ++q) e += lval_[q] * d[lidx_[q]];
      eta_[i] = e;
      obj += log_loss(e, y_[i]);
    }
    for (double v : d) norm += v * v;
    return obj + 0.5 * lambda_ * norm;
  }

  // Negative gradient X^T (y - p) - lambda delta -> grad_; IRLS weights -> w_.
  void gradient() {
    grad_.assign(k_, 0.0);
    for (std::int64_t i = 0; i < n_; ++i) {
      const double p = sigmoid(eta_[i]);
      w_[i] = std::max(p * (1 - p), kMinWeight);
      for (std::int64_t q = lptr_[i]; q < lptr_[i + 1]; ++q) grad_[lidx_[q]] += lval_[q] * (y_[i] - p);
    }
    for (std::int64_t j = 0; j < k_; ++j) grad_[j] -= lambda_ * delta_[j];
  }

  // step_ = (lambda I + X^T W X)^-1 step_, in the k x k system.
  void solve_primal() {
    mat_.assign(k_ * k_, 0.0);
    for (std::int64_t j = 0; j < k_; ++j) mat_[j * k_ + j] = lambda_;
    for (std::int64_t i = 0; i < n_; ++i)
      for (std::int64_t q = lptr_[i]; q < lptr_[i + 1]; ++q)
        for (std::int64_t r = lptr_[i]; r < lptr_[i + 1]; ++r)
          mat_[lidx_[q] * k_ + lidx_[r]] += w_[i] * lval_[q] * lval_[r];
    factor_spd(mat_, k_);
    cholesky_solve(mat_, k_, step_.data());
  }

  // The same through the n x n system:
  // (lambda I + X^T W X)^-1 g = (g - X^T D (lambda I + D G D)^-1 D X g) / lambda, D = W^1/2.
  void solve_dual() {
    mat_.assign(n_ * n_, 0.0);
    xg_.assign(n_, 0.0);
    for (std::int64_t a = 0; a < n_; ++a) w_[a] = std::sqrt(w_[a]);  // w now holds D = W^1/2
    for (std::int64_t a = 0; a < n_; ++a) {
      const double da = w_[a];
      for (std::int64_t b = 0; b < n_; ++b) mat_[a * n_ + b] = da * w_[b] * gram_[a * n_ + b];
      mat_[a * n_ + a] += lambda_;
      double dot = 0;
      for (std::int64_t q = lptr_[a]; q < lptr_[a + 1]; ++q) dot += lval_[q] * grad_[lidx_[q]];
      xg_[a] = da * dot;
    }
    factor_spd(mat_, n_);
    cholesky_solve(mat_, n_, xg_.data());
    for (std::int64_t a = 0; a < n_; ++a) {
      const double coeff = w_[a] * xg_[a];
      for (std::int64_t q = lptr_[a]; q < lptr_[a + 1]; ++q) step_[lidx_[q]] -= lval_[q] * coeff;
    }
    for (double& v : step_) v /= lambda_;
  }

  const CsrView& X_;
  const float* base_logit_;
  const float* labels_;
  const UserFitOptions& opts_;
  const double lambda_;
  std::vector<std::int32_t> local_;  // feature -> local index, -1 if absent
  std::int64_t n_ = 0, k_ = 0;       // the user's rows and features
  std::vector<std::int32_t> feats_, lidx_;
  std::vector<std::int64_t> lptr_;
  std::vector<double> lval_, y_, base_, gram_, dense_;
  std::vector<double> delta_, trial_, grad_, step_, eta_, w_, mat_, xg_;
};

}  // namespace

std::int64_t fit_user_offsets(const CsrView& X, const float* base_logit, const float* labels,
                              const std::int64_t* row_ptr, const std::int64_t* rows,
                              std::int64_t n_users, float* offsets, const UserFitOptions& opts) {
  const std::int64_t m = X.n_cols;
  LIKEABLE_CHECK(opts.shrinkage > 0, "shrinkage must be > 0, got ", opts.shrinkage);
  check_labels(labels, X.n_rows);
  LIKEABLE_CHECK(row_ptr[0] == 0, "row_ptr must start at 0");
  for (std::int64_t u = 0; u < n_users; ++u)
    LIKEABLE_CHECK(row_ptr[u + 1] >= row_ptr[u], "row_ptr must be non-decreasing");
  for (std::int64_t k = 0; k < row_ptr[n_users]; ++k)
    LIKEABLE_CHECK(rows[k] >= 0 && rows[k] < X.n_rows, "row id ", rows[k], " out of range");

  const int threads = resolve_threads(opts.threads);
  std::vector<std::unique_ptr<UserSolver>> solvers(threads);  // per thread, made on first use
  std::atomic<std::int64_t> not_converged{0};
  parallel_for(n_users, 16, threads, [&](std::int64_t begin, std::int64_t end, int tid) {
    if (!solvers[tid]) solvers[tid] = std::make_unique<UserSolver>(X, base_logit, labels, opts);
    for (std::int64_t u = begin; u < end; ++u)
      if (!solvers[tid]->fit(rows + row_ptr[u], row_ptr[u + 1] - row_ptr[u], offsets + u * m))
        not_converged.fetch_add(1, std::memory_order_relaxed);
  });
  return not_converged.load();
}

}  // namespace likeable::prefs
