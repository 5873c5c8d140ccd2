#include "core/blas.h"

#include <cblas.h>

#include <limits>

#include "core/errors.h"

namespace likeable::blas {
namespace {
blasint to_blasint(std::int64_t v, const char* what) {
  if (v < 0 || v > std::numeric_limits<blasint>::max())
    throw InvalidArgument(concat("BLAS dimension ", what, "=", v, " does not fit a 32-bit int"));
  return static_cast<blasint>(v);
}
}  // namespace

void sgemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
           float alpha, const float* a, std::int64_t lda, const float* b, std::int64_t ldb,
           float beta, float* c, std::int64_t ldc) {
  if (m == 0 || n == 0) return;
  scipy_cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                    trans_b ? CblasTrans : CblasNoTrans, to_blasint(m, "m"), to_blasint(n, "n"),
                    to_blasint(k, "k"), alpha, a, to_blasint(lda, "lda"), b,
                    to_blasint(ldb, "ldb"), beta, c, to_blasint(ldc, "ldc"));
}

void sgemv(bool trans_a, std::int64_t m, std::int64_t n, float alpha, const float* a,
           std::int64_t lda, const float* x, float beta, float* y) {
  if (m == 0 || n == 0) return;
  scipy_cblas_sgemv(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, to_blasint(m, "m"),
                    to_blasint(n, "n"), alpha, a, to_blasint(lda, "lda"), x, 1, beta, y, 1);
}

void use_single_thread() { scipy_openblas_set_num_threads(1); }

const char* config() { return scipy_openblas_get_config(); }

}  // namespace likeable::blas
