#include "core/sparse.h"

#include <cmath>

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

}  // namespace likeable
