// Search kernels of the index, each with a portable loop and, where it pays, an x86 SIMD twin
// picked at run time by the core's one switch (core/simd.h). The twins differ only in the order
// of their sums; tests run both and compare.
#pragma once

#include <cstdint>
#include <cstring>

#include "core/simd.h"
#include "core/topk.h"

namespace likeable::index_kernels {

// Records of indexes with n_cols > 65536 store each id as two u16 units (little-endian u32).
inline std::uint32_t read_u32(const std::uint16_t* units) {
  std::uint32_t v;
  std::memcpy(&v, units, 4);
  return v;
}
inline float read_f32(const std::uint16_t* units) {
  float v;
  std::memcpy(&v, units, 4);
  return v;
}

// sum_p q[ids[p]] * half[p] over a record's n entries (u16 ids).
inline float half_dot(const std::uint16_t* ids, const std::uint16_t* half, std::int64_t n, const float* q) {
  // Four partial sums: one accumulator chains every add on the previous (~4 cycles each), which
  // cost more than the loads for a row of ~100 entries.
  float acc0 = 0, acc1 = 0, acc2 = 0, acc3 = 0;
  std::int64_t p = 0;
  for (; p + 4 <= n; p += 4) {
    acc0 += q[ids[p]] * simd::half_to_float(half[p]);
    acc1 += q[ids[p + 1]] * simd::half_to_float(half[p + 1]);
    acc2 += q[ids[p + 2]] * simd::half_to_float(half[p + 2]);
    acc3 += q[ids[p + 3]] * simd::half_to_float(half[p + 3]);
  }
  for (; p < n; ++p) acc0 += q[ids[p]] * simd::half_to_float(half[p]);
  return (acc0 + acc1) + (acc2 + acc3);
}
// The same over u32 ids stored as two u16 units each.
inline float half_dot_wide(const std::uint16_t* id_units, const std::uint16_t* half, std::int64_t n, const float* q) {
  float acc0 = 0, acc1 = 0;
  std::int64_t p = 0;
  for (; p + 2 <= n; p += 2) {
    acc0 += q[read_u32(id_units + 2 * p)] * simd::half_to_float(half[p]);
    acc1 += q[read_u32(id_units + 2 * p + 2)] * simd::half_to_float(half[p + 1]);
  }
  for (; p < n; ++p) acc0 += q[read_u32(id_units + 2 * p)] * simd::half_to_float(half[p]);
  return acc0 + acc1;
}

// Summary bound of an unsigned index's block: sum over entries of max(q_f, 0) * hi_e (u8).
template <class Feature>
inline float summary_dot(const Feature* features, const std::uint8_t* hi, std::int64_t n, const float* q) {
  float pos = 0;
  for (std::int64_t e = 0; e < n; ++e) pos += std::max(q[features[e]], 0.0f) * hi[e];
  return pos;
}

#ifdef LIKEABLE_X86_KERNELS
// The features the AVX2 twins need.
constexpr unsigned kAvx2Kernels = simd::kAvx2 | simd::kF16c | simd::kFma;
float half_dot_avx2(const std::uint16_t* ids, const std::uint16_t* half, std::int64_t n, const float* q);
float summary_dot_avx2(const std::uint16_t* features, const std::uint8_t* hi, std::int64_t n, const float* q);
#endif

// Top k of scores[0, n) into `top` (rows ascending, so an equal score never displaces the
// current k-th).
void scan_scores(const float* scores, std::int64_t n, TopHits& top);

}  // namespace likeable::index_kernels
