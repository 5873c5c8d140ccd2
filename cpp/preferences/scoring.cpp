#include "preferences/scoring.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "core/simd.h"

#ifdef LIKEABLE_X86_KERNELS
#include <immintrin.h>
#endif

namespace likeable::scoring {
namespace {

void check_rows(const UserWeights& w, const std::int64_t* user_rows, std::int64_t n) {
  for (std::int64_t u = 0; u < n; ++u)
    LIKEABLE_CHECK(user_rows[u] >= -1 && user_rows[u] < w.n_rows, "user row ", user_rows[u], " out of range for ", w.n_rows,
                   " fitted users");
}

// Scoring layout. A tile of 32 users is scored against a block of items. Their weights are
// transposed, one feature block at a time, into `wt` (1024 features x 32 users = 128 KiB, L2),
// read from each user's row as one contiguous run. Each item's features in that block are then
// gathered from `wt` into 32 register accumulators (one feature's weights for the tile are 128
// bytes = four 8-float vectors), and added once per (item, feature block) to the item's partial
// sums. Hand-written because scipy's CSR x dense streams all users' weights once per non-zero;
// this reads each weight once per call. Sizes chosen by measurement (512 KiB L2, AMD EPYC):
// 64-user tiles and 256-2048 feature blocks were no faster.
constexpr std::int64_t kUserTile = 32;
constexpr std::int64_t kFeatureBlock = 1024;
constexpr std::int64_t kItemBlock = 2048;
typedef float Vec8 __attribute__((vector_size(32)));
typedef float Vec8u __attribute__((vector_size(32), aligned(4), may_alias));
static_assert(kUserTile == 32, "accumulate_items holds a tile in four 8-float vectors");

// acc[i] (32 floats) += sum over item i's entries q in [ptr[i], ptr[i+1]) of val[q] * wt[feat[q]],
// for items [0, n). The body is compiled twice, for AVX2+FMA and for baseline x86-64, and picked
// at run time by the core's switch (GCC's target_clones("arch=haswell") tests the CPU model and
// skips AMD CPUs).
// Named accumulators and vector loads: arrays + memcpy made GCC spill to the stack.
#define LIKEABLE_ACCUMULATE_ITEMS_BODY                                                              \
  for (std::int64_t i = 0; i < n; ++i) {                                                          \
    Vec8 r0 = {}, r1 = {}, r2 = {}, r3 = {};                                                       \
    for (std::int64_t q = ptr[i]; q < ptr[i + 1]; ++q) {                                          \
      const Vec8u* w = reinterpret_cast<const Vec8u*>(wt + static_cast<std::int64_t>(feat[q]) * kUserTile); \
      const float v = val[q];                                                                      \
      r0 += v * w[0];                                                                              \
      r1 += v * w[1];                                                                              \
      r2 += v * w[2];                                                                              \
      r3 += v * w[3];                                                                              \
    }                                                                                              \
    Vec8u* a = reinterpret_cast<Vec8u*>(acc + i * kUserTile);                                      \
    if (first) {                                                                                   \
      a[0] = r0; a[1] = r1; a[2] = r2; a[3] = r3;                                                  \
    } else {                                                                                       \
      a[0] += r0; a[1] += r1; a[2] += r2; a[3] += r3;                                              \
    }                                                                                              \
  }

constexpr unsigned kAvx2Fma = simd::kAvx2 | simd::kFma;

#ifdef LIKEABLE_X86_KERNELS
__attribute__((target("avx2,fma")))
void accumulate_items_avx2(const float* wt, std::int64_t n, const std::int64_t* ptr, const std::int32_t* feat,
                           const float* val, float* acc, bool first) {
  LIKEABLE_ACCUMULATE_ITEMS_BODY
}
#endif

void accumulate_items_portable(const float* wt, std::int64_t n, const std::int64_t* ptr,
                               const std::int32_t* feat, const float* val, float* acc, bool first) {
  LIKEABLE_ACCUMULATE_ITEMS_BODY
}

inline void accumulate_items(const float* wt, std::int64_t n, const std::int64_t* ptr, const std::int32_t* feat,
                             const float* val, float* acc, bool first, bool use_avx2) {
#ifdef LIKEABLE_X86_KERNELS
  if (use_avx2) return accumulate_items_avx2(wt, n, ptr, feat, val, acc, first);
#else
  (void)use_avx2;
#endif
  accumulate_items_portable(wt, n, ptr, feat, val, acc, first);
}
#undef LIKEABLE_ACCUMULATE_ITEMS_BODY

// wt[(f - f0) * 32 + u] = population[f] + (src[u] ? src[u][f] : 0) for f in [f0, f1), u < 32; users
// at or past `width` get 0. The AVX2 path transposes 8 x 8 blocks in registers (scalar strided
// stores were half the cost of scoring).
void transpose_tile_portable(const float* const* src, std::int64_t width, const float* population,
                             std::int64_t f0, std::int64_t f1, float* wt) {
  for (std::int64_t u = 0; u < kUserTile; ++u) {
    float* col = wt + u;
    if (u >= width) {
      for (std::int64_t f = f0; f < f1; ++f) col[(f - f0) * kUserTile] = 0.0f;
    } else if (src[u]) {
      for (std::int64_t f = f0; f < f1; ++f) col[(f - f0) * kUserTile] = population[f] + src[u][f];
    } else {
      for (std::int64_t f = f0; f < f1; ++f) col[(f - f0) * kUserTile] = population[f];
    }
  }
}

#ifdef LIKEABLE_X86_KERNELS
__attribute__((target("avx2,fma")))
void transpose_tile_avx2(const float* const* src, std::int64_t width, const float* population,
                         std::int64_t f0, std::int64_t f1, float* wt) {
  const std::int64_t f_vec = f0 + ((f1 - f0) / 8) * 8;
  for (std::int64_t ub = 0; ub < kUserTile; ub += 8) {
    for (std::int64_t f = f0; f < f_vec; f += 8) {
      const __m256 pop = _mm256_loadu_ps(population + f);
      __m256 r[8];
      for (int j = 0; j < 8; ++j) {
        const std::int64_t u = ub + j;
        if (u >= width) r[j] = _mm256_setzero_ps();
        else if (src[u]) r[j] = _mm256_add_ps(pop, _mm256_loadu_ps(src[u] + f));
        else r[j] = pop;
      }
      // 8 x 8 transpose: rows are users, columns features -> rows features, columns users.
      __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
      __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
      __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
      __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
      __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
      __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
      __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
      __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
      float* dst = wt + (f - f0) * kUserTile + ub;
      _mm256_storeu_ps(dst + 0 * kUserTile, _mm256_permute2f128_ps(s0, s4, 0x20));
      _mm256_storeu_ps(dst + 1 * kUserTile, _mm256_permute2f128_ps(s1, s5, 0x20));
      _mm256_storeu_ps(dst + 2 * kUserTile, _mm256_permute2f128_ps(s2, s6, 0x20));
      _mm256_storeu_ps(dst + 3 * kUserTile, _mm256_permute2f128_ps(s3, s7, 0x20));
      _mm256_storeu_ps(dst + 4 * kUserTile, _mm256_permute2f128_ps(s0, s4, 0x31));
      _mm256_storeu_ps(dst + 5 * kUserTile, _mm256_permute2f128_ps(s1, s5, 0x31));
      _mm256_storeu_ps(dst + 6 * kUserTile, _mm256_permute2f128_ps(s2, s6, 0x31));
      _mm256_storeu_ps(dst + 7 * kUserTile, _mm256_permute2f128_ps(s3, s7, 0x31));
    }
  }
  if (f_vec < f1) {  // leftover features (n_features not a multiple of 8)
    for (std::int64_t u = 0; u < kUserTile; ++u)
      for (std::int64_t f = f_vec; f < f1; ++f)
        wt[(f - f0) * kUserTile + u] =
            u >= width ? 0.0f : population[f] + (src[u] ? src[u][f] : 0.0f);
  }
}
#endif

inline void transpose_tile(const float* const* src, std::int64_t width, const float* population,
                           std::int64_t f0, std::int64_t f1, float* wt, bool use_avx2) {
#ifdef LIKEABLE_X86_KERNELS
  if (use_avx2) return transpose_tile_avx2(src, width, population, f0, f1, wt);
#else
  (void)use_avx2;
#endif
  transpose_tile_portable(src, width, population, f0, f1, wt);
}

}  // namespace

void score_users_items(const UserWeights& weights, const std::int64_t* user_rows, std::int64_t n_users,
                       const CsrView& items, float* out, int threads) {
  LIKEABLE_CHECK(items.n_cols == weights.n_features, "items have ", items.n_cols, " features, the model has ",
                 weights.n_features);
  check_rows(weights, user_rows, n_users);
  const std::int64_t m = weights.n_features, n_items = items.n_rows;
  if (n_users == 0 || n_items == 0) return;
  // Items regrouped once by feature block: for block fb, item i's entries are
  // [ptr[fb * (n_items + 1) + i], ... + i + 1) with features local to the block.
  const std::int64_t n_fblocks = std::max<std::int64_t>(1, (m + kFeatureBlock - 1) / kFeatureBlock);
  std::vector<std::int64_t> ptr(checked_mul(n_fblocks, n_items + 1), 0);
  std::vector<std::int32_t> feat(items.nnz());
  std::vector<float> val(items.nnz());
  for (std::int64_t i = 0; i < n_items; ++i)
    for (std::int64_t q = items.row_begin(i); q < items.row_end(i); ++q)
      ++ptr[(items.indices[q] / kFeatureBlock) * (n_items + 1) + i + 1];
  {
    std::int64_t running = 0;
    for (std::int64_t fb = 0; fb < n_fblocks; ++fb) {
      std::int64_t* p = ptr.data() + fb * (n_items + 1);
      p[0] += running;
      for (std::int64_t i = 0; i < n_items; ++i) p[i + 1] += p[i];
      running = p[n_items];
    }
    std::vector<std::int64_t> fill(ptr.size());
    for (std::int64_t q = 0; q < static_cast<std::int64_t>(ptr.size()); ++q) fill[q] = ptr[q];
    for (std::int64_t i = 0; i < n_items; ++i)
      for (std::int64_t q = items.row_begin(i); q < items.row_end(i); ++q) {
        const std::int32_t f = items.indices[q];
        const std::int64_t pos = fill[(f / kFeatureBlock) * (n_items + 1) + i]++;
        feat[pos] = static_cast<std::int32_t>(f % kFeatureBlock);
        val[pos] = items.values[q];
      }
  }
  const std::int64_t n_tiles = (n_users + kUserTile - 1) / kUserTile;
  const bool use_avx2 = simd::use(kAvx2Fma);
  threads = resolve_threads(threads);
  std::vector<std::vector<float>> acc_of(threads), wt_of(threads);
  parallel_for(n_tiles, 1, threads, [&](std::int64_t tb, std::int64_t te, int tid) {
    auto& acc = acc_of[tid];
    auto& wt = wt_of[tid];
    acc.resize(checked_mul(std::min(n_items, kItemBlock), kUserTile));
    wt.resize(checked_mul(std::min(m, kFeatureBlock), kUserTile));
    const float* off[kUserTile];
    for (std::int64_t t = tb; t < te; ++t) {
      const std::int64_t u0 = t * kUserTile, width = std::min(kUserTile, n_users - u0);
      for (std::int64_t u = 0; u < kUserTile; ++u) {
        const std::int64_t row = u < width ? user_rows[u0 + u] : -1;
        off[u] = row >= 0 ? weights.offsets + row * m : nullptr;
      }
      for (std::int64_t i0 = 0; i0 < n_items; i0 += kItemBlock) {
        const std::int64_t block = std::min(n_items - i0, kItemBlock);
        for (std::int64_t fb = 0; fb < n_fblocks; ++fb) {
          const std::int64_t f0 = fb * kFeatureBlock, f1 = std::min(m, f0 + kFeatureBlock);
          transpose_tile(off, width, weights.population, f0, f1, wt.data(), use_avx2);
          accumulate_items(wt.data(), block, ptr.data() + fb * (n_items + 1) + i0, feat.data(), val.data(),
                           acc.data(), fb == 0, use_avx2);
        }
        for (std::int64_t u = 0; u < width; ++u) {
          float* dst = out + (u0 + u) * n_items + i0;
          for (std::int64_t i = 0; i < block; ++i) dst[i] = acc[i * kUserTile + u];
        }
      }
    }
  });
}

void predict_pairs(const UserWeights& weights, const std::int64_t* user_rows, const CsrView& pairs,
                   const float* base_logit, float* proba, int threads, bool logits) {
  LIKEABLE_CHECK(pairs.n_cols == weights.n_features, "pairs have ", pairs.n_cols, " features, the model has ",
                 weights.n_features);
  check_rows(weights, user_rows, pairs.n_rows);
  const std::int64_t m = weights.n_features;
  parallel_for(pairs.n_rows, 4096, threads, [&](std::int64_t begin, std::int64_t end, int) {
    for (std::int64_t i = begin; i < end; ++i) {
      const std::int64_t row = user_rows[i];
      const float* off = row >= 0 ? weights.offsets + row * m : nullptr;
      double eta = base_logit ? base_logit[i] : 0.0;
      for (std::int64_t q = pairs.row_begin(i); q < pairs.row_end(i); ++q) {
        const std::int32_t f = pairs.indices[q];
        eta += static_cast<double>(pairs.values[q]) * (weights.population[f] + (off ? off[f] : 0.0f));
      }
      if (logits) {
        proba[i] = static_cast<float>(eta);
        continue;
      }
      proba[i] = static_cast<float>(eta >= 0 ? 1.0 / (1.0 + std::exp(-eta)) : std::exp(eta) / (1.0 + std::exp(eta)));
    }
  });
}

void gather_weights(const UserWeights& weights, const std::int64_t* user_rows, std::int64_t n_users,
                    float* out, int threads) {
  check_rows(weights, user_rows, n_users);
  const std::int64_t m = weights.n_features;
  parallel_for(n_users, 64, threads, [&](std::int64_t begin, std::int64_t end, int) {
    for (std::int64_t u = begin; u < end; ++u) {
      const std::int64_t row = user_rows[u];
      const float* off = row >= 0 ? weights.offsets + row * m : nullptr;
      float* dst = out + u * m;
      for (std::int64_t f = 0; f < m; ++f) dst[f] = weights.population[f] + (off ? off[f] : 0.0f);
    }
  });
}

}  // namespace likeable::scoring
