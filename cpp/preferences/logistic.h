// Preference models: regularised logistic (Bradley-Terry) fits on sparse pair codes.
//  * fit_logistic: one population model, sparse features + dense controls (+ intercept),
//    L2 and optional L1 on the features only (controls and intercept unpenalised);
//    IRLS outer loop with cyclic coordinate descent inside (glmnet's scheme).
//  * feature_effects: one small logistic per feature (feature + controls), with Hessian-based
//    standard errors: the "which features do annotators reward" table.
// Per-user offsets: user_offsets.h; scoring users against items: scoring.h.
// Objectives are sums over rows (not means), as scikit-learn's LogisticRegression with C = 1/l2.
#pragma once

#include <cstdint>
#include <vector>

#include "core/errors.h"
#include "core/sparse.h"

namespace likeable::prefs {

struct LogisticOptions {
  double l2 = 1.0;             // 0.5 * l2 * ||beta||^2 on the features
  double l1 = 0.0;             // l1 * ||beta||_1 on the features
  bool fit_intercept = false;
  int max_iter = 100;          // outer (Newton/IRLS) iterations
  double tol = 1e-7;           // max change of any coefficient in a Newton step
};

struct LogisticFit {
  std::vector<double> coef;      // n_features
  std::vector<double> control_coef;  // n_controls
  double intercept = 0.0;
  int n_iter = 0;
  bool converged = false;
};

// labels: 0/1 per row. controls: row-major n_rows x n_controls (may be null when 0).
// row_offset: an added logit per row (may be null). init: warm start (may be null).
LogisticFit fit_logistic(const CsrView& X, const float* controls, std::int64_t n_controls,
                         const float* labels, const float* row_offset, const LogisticOptions& opts,
                         const LogisticFit* init = nullptr);

struct FeatureEffects {
  std::vector<double> coef, std_error, z, p_value;  // n_features each
  std::vector<std::int64_t> n_active;                // rows where the feature is non-zero
};

// For each feature j: logit = beta_j x_j + controls gamma (+ intercept), l2 on beta_j only;
// standard errors from the inverse Hessian at the optimum; two-sided normal p-values.
FeatureEffects feature_effects(const CsrView& X, const float* controls, std::int64_t n_controls,
                               const float* labels, double l2, bool fit_intercept, int max_iter,
                               double tol, int threads);

}  // namespace likeable::prefs
