// Per-user offsets: thousands of small regularised logistic problems at once, one per user: a
// per-user offset over the features the user touched, shrunk toward 0 (i.e. toward the
// population model, whose logit each row carries as base_logit). Newton's method per user, in
// whichever system is smaller (features touched, or the user's rows).
#pragma once

#include <cstdint>

#include "core/errors.h"
#include "core/sparse.h"

namespace likeable::prefs {

struct UserFitOptions {
  double shrinkage = 1.0;  // 0.5 * shrinkage * ||offset||^2 per user
  int max_iter = 50;
  double tol = 1e-6;
  int threads = 0;
};

// Rows of user u are rows[row_ptr[u] .. row_ptr[u+1]) of X. base_logit: population logit per
// row of X (features, controls and intercept). Writes each user's offset as a dense row of
// `offsets` (n_users x X.n_cols, row-major; rows are overwritten, untouched features are 0).
// Returns the number of users that did not converge within max_iter.
std::int64_t fit_user_offsets(const CsrView& X, const float* base_logit, const float* labels,
                              const std::int64_t* row_ptr, const std::int64_t* rows,
                              std::int64_t n_users, float* offsets, const UserFitOptions& opts);

}  // namespace likeable::prefs
