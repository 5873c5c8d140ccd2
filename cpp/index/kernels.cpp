#include "index/kernels.h"

#include <algorithm>

#ifdef LIKEABLE_X86_KERNELS
#include <immintrin.h>
#endif

namespace likeable::index_kernels {

#ifdef LIKEABLE_X86_KERNELS
// Re-scoring kernel for the compact forward index (u16 ids) on CPUs with AVX2 and F16C, picked
// at run time because the portable build targets baseline x86-64: 8 halves convert in one
// instruction (the scalar path spends ~6 instructions per value) and the query weights come in
// with one gather. vcvtph2ps is exact, like half_to_float, so only the summation order differs.
__attribute__((target("avx2,f16c,fma"))) float half_dot_avx2(const std::uint16_t* ids, const std::uint16_t* half,
                                                              std::int64_t n, const float* q) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  std::int64_t p = 0;
  for (; p + 16 <= n; p += 16) {
    const __m256i id0 = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ids + p)));
    const __m256i id1 = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ids + p + 8)));
    const __m256 x0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(half + p)));
    const __m256 x1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(half + p + 8)));
    acc0 = _mm256_fmadd_ps(_mm256_i32gather_ps(q, id0, 4), x0, acc0);
    acc1 = _mm256_fmadd_ps(_mm256_i32gather_ps(q, id1, 4), x1, acc1);
  }
  if (p + 8 <= n) {
    const __m256i id0 = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ids + p)));
    const __m256 x0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(half + p)));
    acc0 = _mm256_fmadd_ps(_mm256_i32gather_ps(q, id0, 4), x0, acc0);
    p += 8;
  }
  const __m256 acc = _mm256_add_ps(acc0, acc1);
  __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  s4 = _mm_add_ss(s4, _mm_shuffle_ps(s4, s4, 1));
  float tail = 0;
  for (; p < n; ++p) tail += q[ids[p]] * simd::half_to_float(half[p]);
  return _mm_cvtss_f32(s4) + tail;
}

// summary_dot for u16 features; same reasoning as half_dot_avx2 (a block's summary holds ~100
// entries).
__attribute__((target("avx2,f16c,fma"))) float summary_dot_avx2(const std::uint16_t* features, const std::uint8_t* hi,
                                                                 std::int64_t n, const float* q) {
  __m256 acc = _mm256_setzero_ps();
  const __m256 zero = _mm256_setzero_ps();
  std::int64_t p = 0;
  for (; p + 8 <= n; p += 8) {
    const __m256i f = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(features + p)));
    std::uint64_t h8;
    std::memcpy(&h8, hi + p, 8);
    const __m256 h = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(h8))));
    acc = _mm256_fmadd_ps(_mm256_max_ps(_mm256_i32gather_ps(q, f, 4), zero), h, acc);
  }
  __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  s4 = _mm_add_ss(s4, _mm_shuffle_ps(s4, s4, 1));
  float tail = 0;
  for (; p < n; ++p) tail += std::max(q[features[p]], 0.0f) * hi[p];
  return _mm_cvtss_f32(s4) + tail;
}
#endif

void scan_scores(const float* scores, std::int64_t n, TopHits& top) {
  std::int64_t r = 0;
  for (; r < n && !top.full(); ++r) top.push(scores[r], r);
  // Most rows fail the test against the k-th score: blocks of 16 are rejected at once.
#ifdef LIKEABLE_X86_KERNELS
  if (simd::use(simd::kSse2)) {
    for (; r + 16 <= n; r += 16) {
      // Baseline x86-64 has SSE: four compares and one movemask per 16 rows instead of a serial
      // chain of 15 max (the scan was as costly as the scatter on 4k-row indexes).
      const __m128 kth = _mm_set1_ps(top.worst_key());
      const __m128 any = _mm_or_ps(_mm_or_ps(_mm_cmpgt_ps(_mm_loadu_ps(scores + r), kth),
                                             _mm_cmpgt_ps(_mm_loadu_ps(scores + r + 4), kth)),
                                   _mm_or_ps(_mm_cmpgt_ps(_mm_loadu_ps(scores + r + 8), kth),
                                             _mm_cmpgt_ps(_mm_loadu_ps(scores + r + 12), kth)));
      if (_mm_movemask_ps(any) == 0) continue;
      for (int i = 0; i < 16; ++i)
        if (scores[r + i] > top.worst_key()) top.push(scores[r + i], r + i);
    }
  }
#endif
  for (; r + 16 <= n; r += 16) {
    float m = scores[r];
    for (int i = 1; i < 16; ++i) m = std::max(m, scores[r + i]);
    if (!(m > top.worst_key())) continue;  // NaN-free: scores are finite sums of finite values
    for (int i = 0; i < 16; ++i)
      if (scores[r + i] > top.worst_key()) top.push(scores[r + i], r + i);
  }
  for (; r < n; ++r)
    if (scores[r] > top.worst_key()) top.push(scores[r], r);
}

}  // namespace likeable::index_kernels
