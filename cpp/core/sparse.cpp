#include "core/sparse.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace likeable {

void validate_csr(const CsrView& csr) {
  LIKEABLE_CHECK(csr.n_rows >= 0 && csr.n_cols >= 0, "negative shape (", csr.n_rows, ", ",
                 csr.n_cols, ")");
  LIKEABLE_CHECK(csr.n_cols <= INT32_MAX, "n_features=", csr.n_cols, " exceeds int32 indices");
  LIKEABLE_CHECK(csr.indptr[0] == 0, "indptr[0] must be 0, got ", csr.indptr[0]);
  for (std::int64_t r = 0; r < csr.n_rows; ++r) {
    LIKEABLE_CHECK(csr.indptr[r + 1] >= csr.indptr[r], "indptr must be non-decreasing (row ", r,
                   ": ", csr.indptr[r], " > ", csr.indptr[r + 1], ")");
  }
  const std::int64_t nnz = csr.nnz();
  for (std::int64_t i = 0; i < nnz; ++i) {
    const std::int32_t c = csr.indices[i];
    LIKEABLE_CHECK(c >= 0 && c < csr.n_cols, "feature id ", c, " at position ", i,
                   " is outside [0, ", csr.n_cols, ")");
    LIKEABLE_CHECK(std::isfinite(csr.values[i]), "non-finite value at position ", i);
  }
}

// One pass per array: each element is read once, written to the copy and checked there, without
// a branch per element (the loops vectorise and run at memory speed); only when a check failed
// is the copy searched again for the first bad entry, to name it.
void copy_indptr_checked(const std::int64_t* __restrict src, std::int64_t n_rows, std::int64_t nnz,
                         std::int64_t* __restrict dst) {
  LIKEABLE_CHECK(n_rows >= 0, "negative n_rows ", n_rows);
  std::int64_t prev = dst[0] = src[0];
  LIKEABLE_CHECK(prev == 0, "indptr[0] must be 0, got ", prev);
  bool ok = true;
  for (std::int64_t r = 1; r <= n_rows; ++r) {
    const std::int64_t v = src[r];
    dst[r] = v;
    ok &= v >= prev;
    prev = v;
  }
  if (!ok)
    for (std::int64_t r = 0; r < n_rows; ++r)
      LIKEABLE_CHECK(dst[r + 1] >= dst[r], "indptr must be non-decreasing (row ", r, ": ", dst[r], " > ", dst[r + 1], ")");
  LIKEABLE_CHECK(dst[n_rows] == nnz, "indptr[-1]=", dst[n_rows], " but there are ", nnz, " stored values");
}

void copy_indices_checked(const std::int32_t* __restrict src, std::int64_t n, std::int64_t n_cols,
                          std::int32_t* __restrict dst) {
  const std::uint32_t bound = static_cast<std::uint32_t>(std::clamp<std::int64_t>(n_cols, 0, INT32_MAX));
  bool ok = true;  // a negative id is a huge unsigned one: one comparison covers both ends
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int32_t v = src[i];
    dst[i] = v;
    ok &= static_cast<std::uint32_t>(v) < bound;
  }
  if (!ok)
    for (std::int64_t i = 0; i < n; ++i)
      LIKEABLE_CHECK(dst[i] >= 0 && dst[i] < n_cols, "feature id ", dst[i], " at position ", i, " is outside [0, ",
                     n_cols, ")");
}

void copy_values_checked(const float* __restrict src, std::int64_t n, float* __restrict dst) {
  bool ok = true;
  for (std::int64_t i = 0; i < n; ++i) {
    const float v = src[i];
    dst[i] = v;
    ok &= std::fabs(v) <= std::numeric_limits<float>::max();  // false for Inf and NaN
  }
  if (!ok)
    for (std::int64_t i = 0; i < n; ++i) LIKEABLE_CHECK(std::isfinite(dst[i]), "non-finite value at position ", i);
}

float max_abs(const float* values, std::int64_t n) {
  float largest = 0;
  for (std::int64_t i = 0; i < n; ++i) largest = std::max(largest, std::fabs(values[i]));
  return largest;
}

}  // namespace likeable
