// The one door to BLAS (OpenBLAS from the scipy-openblas32 wheel). Row-major float32.
// BLAS runs single-threaded inside each call; the core parallelises over tiles itself,
// which keeps results deterministic for a given thread count and honours `threads=`.
#pragma once
#include <cstdint>

namespace likeable::blas {

// C = alpha * op(A) @ op(B) + beta * C, row-major; op(X) = X or X^T.
void sgemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
           float alpha, const float* a, std::int64_t lda, const float* b, std::int64_t ldb,
           float beta, float* c, std::int64_t ldc);

// y = alpha * op(A) @ x + beta * y, row-major A (m x n).
void sgemv(bool trans_a, std::int64_t m, std::int64_t n, float alpha, const float* a,
           std::int64_t lda, const float* x, float beta, float* y);

// Called once at module load: the library's own thread pool is not used.
void use_single_thread();
const char* config();

}  // namespace likeable::blas
