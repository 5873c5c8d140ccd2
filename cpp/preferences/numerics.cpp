#include "preferences/numerics.h"

#include <numeric>

namespace likeable::prefs {

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


}  // namespace likeable::prefs
