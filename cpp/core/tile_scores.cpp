#include "core/tile_scores.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "core/errors.h"
#include "core/parallel.h"
#include "core/simd.h"
#include "core/topk.h"

#ifdef LIKEABLE_X86_KERNELS
#include <immintrin.h>
#endif

namespace likeable::tile_scores {
namespace {

// Layout. A tile of T users (T = 8, 16 or 32: one to four 8-float vectors) has its weights
// transposed once into `wt` (feature-major: feature f's T weights are contiguous), so an item's
// score for the whole tile is a gather of its few features' rows of wt into T/8 register
// accumulators. wt must stay in L2 (an item's features are random rows of it): the tile
// narrows until M * T floats fit kTileBytes. Each item's scores are complete after one pass
// over its entries (no partial sums stored), so top_k tests them against the tile's k-th
// scores in registers and score_all stores them once.
constexpr std::int64_t kMaxTile = 32;
constexpr std::int64_t kTileBytes = std::int64_t{1} << 20;
constexpr std::int64_t kItemBlock = 512;      // score_all: items per block of stored scores
constexpr std::int64_t kMinPartItems = 4096;  // few users: items split across threads, no finer

typedef float Vec8 __attribute__((vector_size(32)));
typedef float Vec8u __attribute__((vector_size(32), aligned(4), may_alias));
typedef int Vec8i __attribute__((vector_size(32)));
typedef long long Vec4q __attribute__((vector_size(32)));

constexpr unsigned kAvx2Fma = simd::kAvx2 | simd::kFma;

// The items' entries of [i0, i1), each item's T scores into r[]; then the sink's statement.
#define LIKEABLE_TILE_ITEMS(SINK)                                                              \
  const std::int64_t* ptr = items.indptr;                                                    \
  const std::int32_t* feat = items.indices;                                                  \
  const float* val = items.values;                                                           \
  for (std::int64_t i = i0; i < i1; ++i) {                                                   \
    Vec8 r[V] = {};                                                                          \
    for (std::int64_t q = ptr[i]; q < ptr[i + 1]; ++q) {                                     \
      const Vec8u* w = reinterpret_cast<const Vec8u*>(wt + static_cast<std::int64_t>(feat[q]) * (8 * V)); \
      const float v = val[q];                                                                \
      _Pragma("GCC unroll 4") for (int j = 0; j < V; ++j) r[j] += v * w[j];                  \
    }                                                                                        \
    SINK                                                                                     \
  }

// score_all's sink: the block's scores, item-major (acc[(i - i0) * T + u]).
#define LIKEABLE_STORE_SINK                                                                  \
  Vec8u* a = reinterpret_cast<Vec8u*>(acc + (i - i0) * (8 * V));                            \
  _Pragma("GCC unroll 4") for (int j = 0; j < V; ++j) a[j] = r[j];

// top_k's sink: lanes beating their user's bar go into that user's heap. Most items fail
// every lane, so the test is one compare per vector and one branch.
#define LIKEABLE_SELECT_SINK                                                                 \
  Vec8i beat = r[0] > t[0];                                                                  \
  _Pragma("GCC unroll 4") for (int j = 1; j < V; ++j) beat |= r[j] > t[j];                   \
  const Vec4q any = (Vec4q)beat;                                                              \
  if ((any[0] | any[1] | any[2] | any[3]) != 0) {                                            \
    float lanes[8 * V];                                                                      \
    std::memcpy(lanes, r, sizeof(lanes));                                                    \
    for (int u = 0; u < 8 * V; ++u) {                                                        \
      if (!(lanes[u] > bar[u])) continue;                                                    \
      heaps[u].push(lanes[u], i);                                                            \
      bar[u] = heaps[u].full() ? heaps[u].worst_key() : -std::numeric_limits<float>::infinity(); \
    }                                                                                        \
    std::memcpy(t, bar, sizeof(lanes));                                                      \
  }

#define LIKEABLE_STORE_BODY LIKEABLE_TILE_ITEMS(LIKEABLE_STORE_SINK)
#define LIKEABLE_SELECT_BODY                                                                 \
  Vec8 t[V];                                                                                 \
  std::memcpy(t, bar, sizeof(t));                                                            \
  LIKEABLE_TILE_ITEMS(LIKEABLE_SELECT_SINK)

// Each kernel is compiled twice, for AVX2+FMA and for baseline x86-64, and picked at run time
// by the core's switch.
#ifdef LIKEABLE_X86_KERNELS
template <int V>
__attribute__((target("avx2,fma"))) void store_avx2(const float* wt, const CsrView& items, std::int64_t i0,
                                                    std::int64_t i1, float* acc) {
  LIKEABLE_STORE_BODY
}
template <int V>
__attribute__((target("avx2,fma"))) void select_avx2(const float* wt, const CsrView& items, std::int64_t i0,
                                                     std::int64_t i1, TopHits* heaps, float* bar) {
  LIKEABLE_SELECT_BODY
}
#endif
template <int V>
void store_portable(const float* wt, const CsrView& items, std::int64_t i0, std::int64_t i1, float* acc) {
  LIKEABLE_STORE_BODY
}
template <int V>
void select_portable(const float* wt, const CsrView& items, std::int64_t i0, std::int64_t i1, TopHits* heaps,
                     float* bar) {
  LIKEABLE_SELECT_BODY
}
#undef LIKEABLE_SELECT_BODY
#undef LIKEABLE_STORE_BODY
#undef LIKEABLE_SELECT_SINK
#undef LIKEABLE_STORE_SINK
#undef LIKEABLE_TILE_ITEMS

template <int V>
void store_items(const float* wt, const CsrView& items, std::int64_t i0, std::int64_t i1, float* acc, bool avx2) {
#ifdef LIKEABLE_X86_KERNELS
  if (avx2) return store_avx2<V>(wt, items, i0, i1, acc);
#else
  (void)avx2;
#endif
  store_portable<V>(wt, items, i0, i1, acc);
}
template <int V>
void select_items(const float* wt, const CsrView& items, std::int64_t i0, std::int64_t i1, TopHits* heaps,
                  float* bar, bool avx2) {
#ifdef LIKEABLE_X86_KERNELS
  if (avx2) return select_avx2<V>(wt, items, i0, i1, heaps, bar);
#else
  (void)avx2;
#endif
  select_portable<V>(wt, items, i0, i1, heaps, bar);
}

// wt[f * tile + u] = base[f] + src[u][f] for every feature f (a missing base or src adds 0;
// lanes at or past `width` are 0). The AVX2 path transposes 8 x 8 blocks in registers (scalar
// strided stores cost half as much as scoring).
void transpose_portable(const float* const* src, std::int64_t width, std::int64_t tile, const float* base,
                        std::int64_t m, float* wt) {
  for (std::int64_t u = 0; u < tile; ++u)
    for (std::int64_t f = 0; f < m; ++f)
      wt[f * tile + u] = u >= width ? 0.0f : (base ? base[f] : 0.0f) + (src[u] ? src[u][f] : 0.0f);
}

#ifdef LIKEABLE_X86_KERNELS
__attribute__((target("avx2,fma"))) void transpose_avx2(const float* const* src, std::int64_t width,
                                                        std::int64_t tile, const float* base, std::int64_t m,
                                                        float* wt) {
  const std::int64_t m_vec = (m / 8) * 8;
  for (std::int64_t ub = 0; ub < tile; ub += 8) {
    for (std::int64_t f = 0; f < m_vec; f += 8) {
      const __m256 b = base ? _mm256_loadu_ps(base + f) : _mm256_setzero_ps();
      __m256 r[8];
      for (int j = 0; j < 8; ++j) {
        const std::int64_t u = ub + j;
        if (u >= width) r[j] = _mm256_setzero_ps();
        else if (src[u]) r[j] = _mm256_add_ps(b, _mm256_loadu_ps(src[u] + f));
        else r[j] = b;
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
      float* dst = wt + f * tile + ub;
      _mm256_storeu_ps(dst + 0 * tile, _mm256_permute2f128_ps(s0, s4, 0x20));
      _mm256_storeu_ps(dst + 1 * tile, _mm256_permute2f128_ps(s1, s5, 0x20));
      _mm256_storeu_ps(dst + 2 * tile, _mm256_permute2f128_ps(s2, s6, 0x20));
      _mm256_storeu_ps(dst + 3 * tile, _mm256_permute2f128_ps(s3, s7, 0x20));
      _mm256_storeu_ps(dst + 4 * tile, _mm256_permute2f128_ps(s0, s4, 0x31));
      _mm256_storeu_ps(dst + 5 * tile, _mm256_permute2f128_ps(s1, s5, 0x31));
      _mm256_storeu_ps(dst + 6 * tile, _mm256_permute2f128_ps(s2, s6, 0x31));
      _mm256_storeu_ps(dst + 7 * tile, _mm256_permute2f128_ps(s3, s7, 0x31));
    }
  }
  for (std::int64_t u = 0; u < tile; ++u)  // features past the last multiple of 8
    for (std::int64_t f = m_vec; f < m; ++f)
      wt[f * tile + u] = u >= width ? 0.0f : (base ? base[f] : 0.0f) + (src[u] ? src[u][f] : 0.0f);
}
#endif

// How a call is cut: tiles of `tile` users, and each tile's items in `parts` ranges (more than
// one only when there are fewer tiles than threads).
struct Plan {
  std::int64_t tile = kMaxTile, n_tiles = 0, parts = 1;
  int threads = 1;
  bool avx2 = false;

  Plan(const DenseRows& users, const CsrView& items, int requested) {
    LIKEABLE_CHECK(items.n_cols == users.n_cols, "items have ", items.n_cols, " features, the weights have ",
                   users.n_cols);
    tile = users.n_users > 16 ? 32 : users.n_users > 8 ? 16 : 8;
    while (tile > 8 && users.n_cols * tile * 4 > kTileBytes) tile /= 2;
    n_tiles = (users.n_users + tile - 1) / tile;
    threads = threads_for_work(static_cast<double>(users.n_users) * static_cast<double>(items.nnz() + items.n_rows),
                               resolve_threads(requested));
    if (n_tiles > 0 && n_tiles < threads)
      parts = std::max<std::int64_t>(1, std::min<std::int64_t>((threads + n_tiles - 1) / n_tiles,
                                                               items.n_rows / kMinPartItems));
    avx2 = simd::use(kAvx2Fma);
  }
  std::int64_t part_begin(std::int64_t p, std::int64_t n_items) const { return p * n_items / parts; }

  // Transposes tile t's weights into wt (resized to n_cols * tile); returns the tile's width.
  std::int64_t transpose(const DenseRows& users, std::int64_t t, std::vector<float>& wt) const {
    const std::int64_t u0 = t * tile, width = std::min(tile, users.n_users - u0);
    const float* src[kMaxTile];
    for (std::int64_t u = 0; u < tile; ++u) src[u] = u < width ? users.row_of(u0 + u) : nullptr;
    wt.resize(static_cast<std::size_t>(checked_mul(users.n_cols, tile)));
#ifdef LIKEABLE_X86_KERNELS
    if (avx2) {
      transpose_avx2(src, width, tile, users.base, users.n_cols, wt.data());
      return width;
    }
#endif
    transpose_portable(src, width, tile, users.base, users.n_cols, wt.data());
    return width;
  }
};

void check_rows(const DenseRows& users) {
  if (users.select == nullptr) return;
  for (std::int64_t u = 0; u < users.n_users; ++u)
    LIKEABLE_CHECK(users.select[u] >= -1, "user row ", users.select[u], " is out of range");
}

}  // namespace

void score_all(const DenseRows& users, const CsrView& items, float* out, int threads) {
  check_rows(users);
  const Plan plan(users, items, threads);
  const std::int64_t n_items = items.n_rows, tile = plan.tile;
  if (users.n_users == 0 || n_items == 0) return;
  std::vector<std::vector<float>> wt_of(plan.threads), acc_of(plan.threads);
  parallel_for(plan.n_tiles * plan.parts, 1, plan.threads, [&](std::int64_t begin, std::int64_t end, int tid) {
    std::vector<float>& wt = wt_of[tid];
    std::vector<float>& acc = acc_of[tid];
    acc.resize(static_cast<std::size_t>(kItemBlock * tile));
    for (std::int64_t unit = begin; unit < end; ++unit) {
      const std::int64_t t = unit / plan.parts, p = unit % plan.parts;
      const std::int64_t width = plan.transpose(users, t, wt);
      const std::int64_t e = plan.part_begin(p + 1, n_items);
      for (std::int64_t i0 = plan.part_begin(p, n_items); i0 < e; i0 += kItemBlock) {
        const std::int64_t i1 = std::min(e, i0 + kItemBlock);
        if (tile == 32) store_items<4>(wt.data(), items, i0, i1, acc.data(), plan.avx2);
        else if (tile == 16) store_items<2>(wt.data(), items, i0, i1, acc.data(), plan.avx2);
        else store_items<1>(wt.data(), items, i0, i1, acc.data(), plan.avx2);
        for (std::int64_t u = 0; u < width; ++u) {
          float* dst = out + (t * tile + u) * n_items;
          for (std::int64_t i = i0; i < i1; ++i) dst[i] = acc[(i - i0) * tile + u];
        }
      }
    }
  });
}

void top_k(const DenseRows& users, const CsrView& items, std::int64_t k, std::int64_t* ids, float* scores,
           int threads) {
  LIKEABLE_CHECK(k >= 1, "k must be >= 1, got ", k);
  check_rows(users);
  const Plan plan(users, items, threads);
  const std::int64_t n_items = items.n_rows, tile = plan.tile, n_users = users.n_users;
  const std::int64_t cap = std::min(k, n_items);  // heap slots per user and part
  auto pad = [&](std::int64_t u, std::int64_t from) {
    for (std::int64_t j = from; j < k; ++j) {
      ids[u * k + j] = -1;
      scores[u * k + j] = -std::numeric_limits<float>::infinity();
    }
  };
  if (n_users == 0) return;
  if (cap == 0) {
    for (std::int64_t u = 0; u < n_users; ++u) pad(u, 0);
    return;
  }
  // Heap slots for every (part, padded user): parts > 1 merges them after the parallel loop.
  const std::int64_t slots_per_part = checked_mul(checked_mul(plan.n_tiles, tile), cap);
  std::vector<float> keys(static_cast<std::size_t>(checked_mul(slots_per_part, plan.parts)));
  std::vector<std::int64_t> slot_ids(keys.size());
  std::vector<std::int64_t> kept(static_cast<std::size_t>(plan.parts * plan.n_tiles * tile), 0);
  std::vector<std::vector<float>> wt_of(plan.threads);
  parallel_for(plan.n_tiles * plan.parts, 1, plan.threads, [&](std::int64_t begin, std::int64_t end, int tid) {
    std::vector<float>& wt = wt_of[tid];
    for (std::int64_t unit = begin; unit < end; ++unit) {
      const std::int64_t t = unit / plan.parts, p = unit % plan.parts;
      const std::int64_t width = plan.transpose(users, t, wt);
      std::vector<TopHits> heaps;
      heaps.reserve(tile);
      float bar[kMaxTile];
      for (std::int64_t u = 0; u < tile; ++u) {
        const std::int64_t slot = p * slots_per_part + (t * tile + u) * cap;
        heaps.emplace_back(keys.data() + slot, slot_ids.data() + slot, cap);
        bar[u] = u < width ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity();
      }
      const std::int64_t i0 = plan.part_begin(p, n_items), i1 = plan.part_begin(p + 1, n_items);
      if (tile == 32) select_items<4>(wt.data(), items, i0, i1, heaps.data(), bar, plan.avx2);
      else if (tile == 16) select_items<2>(wt.data(), items, i0, i1, heaps.data(), bar, plan.avx2);
      else select_items<1>(wt.data(), items, i0, i1, heaps.data(), bar, plan.avx2);
      for (std::int64_t u = 0; u < width; ++u) {
        const std::int64_t user = t * tile + u;
        if (plan.parts == 1) {
          heaps[u].write_best_first(ids + user * k, scores + user * k);
          pad(user, cap);
        } else {
          kept[p * plan.n_tiles * tile + user] = heaps[u].size();
        }
      }
    }
  });
  if (plan.parts == 1) return;
  // Merge each user's parts into one heap (the order is total, so the result does not depend
  // on how the items were split).
  parallel_for(n_users, 64, plan.threads, [&](std::int64_t begin, std::int64_t end, int) {
    std::vector<float> merged_keys(static_cast<std::size_t>(cap));
    std::vector<std::int64_t> merged_ids(static_cast<std::size_t>(cap));
    for (std::int64_t u = begin; u < end; ++u) {
      TopHits merged(merged_keys.data(), merged_ids.data(), cap);
      for (std::int64_t p = 0; p < plan.parts; ++p) {
        const std::int64_t slot = p * slots_per_part + u * cap;
        for (std::int64_t j = 0; j < kept[p * plan.n_tiles * tile + u]; ++j)
          merged.push(keys[slot + j], slot_ids[slot + j]);
      }
      merged.write_best_first(ids + u * k, scores + u * k);
      pad(u, cap);
    }
  });
}

}  // namespace likeable::tile_scores
