#include "index/index.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <utility>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace likeable {

namespace {

// 4: the records are stored in search order (record_order), row r's at row_unit[r]. 3:
//    approximate indexes store one record per row (fwd_rows, in row order) and postings as record
//    locations (post_loc). 2: compact forward index in separate arrays (fwd_indices as u16 when n_cols <=
//    65536, fwd_half, fwd_row_scale) and postings as row ids (post_rows). 1: float32 forward
//    index. Version-1 to -3 approximate files are converted to the version-4 layout on load.
constexpr std::uint32_t kIndexVersion = 4;
constexpr const char* kIndexKind = "SIDX";

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
inline int bit_width(std::uint64_t x) {
  int w = 0;
  for (; x != 0; x >>= 1) ++w;
  return w;
}

constexpr std::int64_t kPrefetchRows = 8;  // rows whose records are fetched together in search

struct Hit {
  float score;
  std::int64_t id;
};
// Better = higher score, then lower row id. As the heap's "less", it keeps the worst hit on top.
inline bool better(const Hit& a, const Hit& b) {
  return a.score > b.score || (a.score == b.score && a.id < b.id);
}

// Fixed-size top-k over a reused vector (no allocation once its capacity is reached).
struct TopK {
  std::vector<Hit>* heap;
  std::size_t k;
  bool full() const { return heap->size() == k; }
  const Hit& worst() const { return heap->front(); }
  void push(float score, std::int64_t id) {
    const Hit h{score, id};
    if (heap->size() < k) {
      heap->push_back(h);
      std::push_heap(heap->begin(), heap->end(), better);
    } else if (better(h, heap->front())) {
      std::pop_heap(heap->begin(), heap->end(), better);
      heap->back() = h;
      std::push_heap(heap->begin(), heap->end(), better);
    }
  }
  void write(std::int64_t* ids, float* scores) {
    std::sort(heap->begin(), heap->end(), better);
    std::size_t i = 0;
    for (; i < heap->size(); ++i) {
      ids[i] = (*heap)[i].id;
      scores[i] = (*heap)[i].score;
    }
    for (; i < k; ++i) {
      ids[i] = -1;
      scores[i] = -std::numeric_limits<float>::infinity();
    }
    heap->clear();
  }
};

// Selects, in place, the smallest prefix of `items` (in descending `mass`) whose mass reaches
// `target`; returns its length. Expected O(n) (a weighted quickselect) where a sort would be
// O(n log n) for each of millions of block summaries.
template <class Item, class MassFn>
std::size_t select_mass_prefix(Item* items, std::size_t n, double target, MassFn mass) {
  std::size_t lo = 0, hi = n;  // items[0, lo) are taken; the answer ends in [lo, hi]
  while (hi > lo) {
    if (target <= 0) return lo;
    const float pivot = mass(items[lo + (hi - lo) / 2]);
    // 3-way partition of [lo, hi) into > pivot, == pivot, < pivot.
    std::size_t gt = lo, i = lo, lt = hi;
    while (i < lt) {
      const float m = mass(items[i]);
      if (m > pivot) std::swap(items[gt++], items[i++]);
      else if (m < pivot) std::swap(items[i], items[--lt]);
      else ++i;
    }
    double sum_gt = 0;
    for (std::size_t j = lo; j < gt; ++j) sum_gt += mass(items[j]);
    if (sum_gt >= target) {
      hi = gt;
      continue;
    }
    const double sum_eq = static_cast<double>(pivot) * static_cast<double>(lt - gt);
    if (sum_gt + sum_eq >= target) {
      const double need = target - sum_gt;
      std::size_t take = pivot > 0 ? static_cast<std::size_t>(std::ceil(need / pivot)) : lt - gt;
      return gt + std::min(take, lt - gt);
    }
    target -= sum_gt + sum_eq;
    lo = lt;
  }
  return lo;
}

// IEEE binary16 conversions, hand-written because the portable build has no F16C instructions
// and a library call per value would cost more than the memory traffic it saves.
// Round to nearest even (F. Giesen's float_to_half_fast3_rtne); |f| < 65504 assumed.
inline std::uint16_t float_to_half(float f) {
  std::uint32_t x;
  std::memcpy(&x, &f, 4);
  const std::uint32_t sign = x & 0x80000000u;
  x ^= sign;
  std::uint16_t out;
  if (x < 0x38800000u) {  // below 2^-14: a half subnormal (or zero); let the FPU round it
    float t;
    std::memcpy(&t, &x, 4);
    t += 0.5f;
    std::uint32_t tb;
    std::memcpy(&tb, &t, 4);
    out = static_cast<std::uint16_t>(tb - 0x3f000000u);
  } else {
    const std::uint32_t mant_odd = (x >> 13) & 1u;
    x += (static_cast<std::uint32_t>(15 - 127) << 23) + 0xfffu;
    x += mant_odd;
    out = static_cast<std::uint16_t>(x >> 13);
  }
  return static_cast<std::uint16_t>(out | (sign >> 16));
}
// Exact for every finite half: move the bits into float32 and rebias the exponent by 2^112
// (which also normalises subnormals).
inline float half_to_float(std::uint16_t h) {
  const std::uint32_t bits = (static_cast<std::uint32_t>(h & 0x8000u) << 16) | (static_cast<std::uint32_t>(h & 0x7fffu) << 13);
  float f;
  std::memcpy(&f, &bits, 4);
  return f * 0x1p112f;
}

// Top k of scores[0, n) (rows ascending, so an equal score never displaces the current k-th).
// Most rows fail the test against the k-th score: blocks of 16 are rejected with one max.
void scan_scores(const float* scores, std::int64_t n, TopK& top) {
  std::int64_t r = 0;
  for (; r < n && !top.full(); ++r) top.push(scores[r], r);
  for (; r + 16 <= n; r += 16) {
#if defined(__SSE2__)
    // Baseline x86-64 has SSE: four compares and one movemask per 16 rows instead of a serial
    // chain of 15 max (the scan was as costly as the scatter on 4k-row indexes).
    const __m128 kth = _mm_set1_ps(top.worst().score);
    const __m128 any = _mm_or_ps(_mm_or_ps(_mm_cmpgt_ps(_mm_loadu_ps(scores + r), kth),
                                           _mm_cmpgt_ps(_mm_loadu_ps(scores + r + 4), kth)),
                                 _mm_or_ps(_mm_cmpgt_ps(_mm_loadu_ps(scores + r + 8), kth),
                                           _mm_cmpgt_ps(_mm_loadu_ps(scores + r + 12), kth)));
    if (_mm_movemask_ps(any) == 0) continue;
#else
    float m = scores[r];
    for (int i = 1; i < 16; ++i) m = std::max(m, scores[r + i]);
    if (!(m > top.worst().score)) continue;  // NaN-free: scores are finite sums of finite values
#endif
    for (int i = 0; i < 16; ++i)
      if (scores[r + i] > top.worst().score) top.push(scores[r + i], r + i);
  }
  for (; r < n; ++r)
    if (scores[r] > top.worst().score) top.push(scores[r], r);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define LIKEABLE_HALF_DOT_AVX2 1
// LIKEABLE_NO_SIMD=1 (read once per process) forces the scalar kernels, so tests can check them
// on machines that have AVX2.
inline bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c") &&
                          __builtin_cpu_supports("fma") && std::getenv("LIKEABLE_NO_SIMD") == nullptr;
  return has;
}
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
  for (; p < n; ++p) {
    const std::uint32_t bits = (static_cast<std::uint32_t>(half[p] & 0x8000u) << 16) |
                               (static_cast<std::uint32_t>(half[p] & 0x7fffu) << 13);
    float f;
    std::memcpy(&f, &bits, 4);
    tail += q[ids[p]] * (f * 0x1p112f);
  }
  return _mm_cvtss_f32(s4) + tail;
}

// Summary bound of an unsigned index's block: sum over entries of max(q_f, 0) * hi_e (u8). Same
// dispatch and reasoning as half_dot_avx2; a block's summary holds ~100 entries.
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
#else
inline bool cpu_has_avx2() { return false; }
#endif

inline float half_dot(const std::uint16_t* ids, const std::uint16_t* half, std::int64_t n, const float* q) {
  // Four partial sums: one accumulator chains every add on the previous (~4 cycles each), which
  // cost more than the loads for a row of ~100 entries.
  float acc0 = 0, acc1 = 0, acc2 = 0, acc3 = 0;
  std::int64_t p = 0;
  for (; p + 4 <= n; p += 4) {
    acc0 += q[ids[p]] * half_to_float(half[p]);
    acc1 += q[ids[p + 1]] * half_to_float(half[p + 1]);
    acc2 += q[ids[p + 2]] * half_to_float(half[p + 2]);
    acc3 += q[ids[p + 3]] * half_to_float(half[p + 3]);
  }
  for (; p < n; ++p) acc0 += q[ids[p]] * half_to_float(half[p]);
  return (acc0 + acc1) + (acc2 + acc3);
}
// Records of indexes with n_cols > 65536 store each id as two u16 units (little-endian u32).
inline float half_dot_wide(const std::uint16_t* id_units, const std::uint16_t* half, std::int64_t n, const float* q) {
  float acc0 = 0, acc1 = 0;
  std::int64_t p = 0;
  for (; p + 2 <= n; p += 2) {
    acc0 += q[read_u32(id_units + 2 * p)] * half_to_float(half[p]);
    acc1 += q[read_u32(id_units + 2 * p + 2)] * half_to_float(half[p + 1]);
  }
  for (; p < n; ++p) acc0 += q[read_u32(id_units + 2 * p)] * half_to_float(half[p]);
  return acc0 + acc1;
}

}  // namespace

// Per-thread buffers, grown on demand and cached for the thread's life, so a search call does
// not allocate per query. Invariant between queries: `scores`, `q_dense` and `visited` are zero.
struct SparseIndex::Scratch {
  std::vector<float> scores;
  std::vector<std::int32_t> touched;  // exact mode: rows touched by this query (scatter path)
  std::vector<float> q_dense;
  std::vector<std::uint64_t> visited;
  std::vector<std::int32_t> visited_rows;
  std::vector<Hit> heap;
  std::vector<std::int32_t> q_idx;
  std::vector<float> q_val;
  std::vector<std::int32_t> cut;
  std::vector<std::pair<float, std::int64_t>> block_order;

  void reserve(std::int64_t n_rows, std::int64_t n_cols, bool exact, std::int64_t k) {
    if (exact && scores.size() < static_cast<std::size_t>(n_rows)) scores.resize(n_rows, 0.0f);
    if (q_dense.size() < static_cast<std::size_t>(n_cols)) q_dense.resize(n_cols, 0.0f);
    if (!exact && visited.size() < static_cast<std::size_t>(n_rows / 64 + 1)) visited.resize(n_rows / 64 + 1, 0);
    heap.reserve(k);
  }
  static Scratch& for_this_thread() {
    thread_local Scratch scratch;
    return scratch;
  }
};

// ---------------------------------------------------------------------------------------------
// Build

SparseIndex::SparseIndex(const CsrView& codes, const IndexParams& params) : params_(params) {
  LIKEABLE_CHECK(params.n_postings >= 1, "n_postings must be >= 1, got ", params.n_postings);
  LIKEABLE_CHECK(params.block_fraction > 0 && params.block_fraction <= 1,
                 "block_fraction must be in (0, 1], got ", params.block_fraction);
  LIKEABLE_CHECK(params.summary_energy > 0 && params.summary_energy <= 1,
                 "summary_energy must be in (0, 1], got ", params.summary_energy);
  LIKEABLE_CHECK(params.doc_cut >= 1, "doc_cut must be >= 1, got ", params.doc_cut);
  LIKEABLE_CHECK(codes.n_rows <= INT32_MAX, "at most 2^31-1 rows can be indexed, got ", codes.n_rows);
  approximate_ = params.approximate;
  n_rows_ = codes.n_rows;
  n_cols_ = codes.n_cols;
  owned_ = std::make_shared<Owned>();
  build_forward(codes);
  std::vector<std::int64_t> col_ptr;
  std::vector<std::int32_t> col_rows;
  std::vector<float> col_values;
  build_columns(col_ptr, col_rows, col_values);
  owned_->col_nnz.resize(n_cols_);
  for (std::int64_t j = 0; j < n_cols_; ++j) owned_->col_nnz[j] = col_ptr[j + 1] - col_ptr[j];
  if (approximate_) {
    build_blocks(col_ptr, col_rows, col_values);
  } else {
    owned_->col_ptr = std::move(col_ptr);
    owned_->col_rows = std::move(col_rows);
    owned_->col_values = std::move(col_values);
  }
  point_at_owned();
  if (approximate_) {
    auto& o = *owned_;
    pack_from_floats(fwd_indices_, fwd_values_, o.post_rows.data(), static_cast<std::int64_t>(o.post_rows.size()));
    // The float forward index and row ids were only needed to build: drop them.
    std::vector<std::int32_t>().swap(o.fwd_indices);
    std::vector<float>().swap(o.fwd_values);
    std::vector<std::int32_t>().swap(o.post_rows);
    fwd_indices_ = nullptr;
    fwd_values_ = nullptr;
  }
}

namespace {
// Round-to-nearest-even halves of values / s, s the power of two just above the largest |value|
// (so the division is exact and every |value / s| < 1); returns s.
float halves_of_row(const float* values, std::int64_t n, std::uint16_t* out) {
  float largest = 0;
  for (std::int64_t i = 0; i < n; ++i) largest = std::max(largest, std::fabs(values[i]));
  int exponent = 0;
  if (largest > 0) std::frexp(largest, &exponent);  // largest = m * 2^exponent, m in [0.5, 1)
  const float scale = largest > 0 ? std::ldexp(1.0f, std::min(exponent, 127)) : 1.0f;
  for (std::int64_t i = 0; i < n; ++i) out[i] = float_to_half(values[i] / scale);
  return scale;
}

}  // namespace

std::vector<std::int32_t> SparseIndex::record_order(const std::int32_t* post_rows) const {
  // Re-scoring is bound by memory latency (~1,000 cycles per row record on the 2-core dev box
  // when its lines are fetched alone), so rows that search reads together should sit together:
  // then a visited block is a few sequential runs, not one miss per row. A row lies in ~15
  // lists but is stored once, so its place is the first block it belongs to in the order of
  // how often search visits a block: large blocks (their summaries bound high and are visited
  // first) of popular features (their lists are cut from more queries), i.e. by block length
  // times the feature's full column length. 200k-row synthetic corpus, query_cut 8: 30% less
  // time per query than row order, the same results.
  std::vector<std::int64_t> blocks(n_blocks_);
  std::vector<double> weight(n_blocks_);
  for (std::int64_t j = 0; j < n_cols_; ++j)
    for (std::int64_t blk = list_block_ptr_[j]; blk < list_block_ptr_[j + 1]; ++blk)
      weight[blk] = static_cast<double>(block_row_ptr_[blk + 1] - block_row_ptr_[blk]) * static_cast<double>(col_nnz_[j]);
  std::iota(blocks.begin(), blocks.end(), 0);
  std::stable_sort(blocks.begin(), blocks.end(), [&](std::int64_t a, std::int64_t b) { return weight[a] > weight[b]; });
  std::vector<std::int32_t> order;
  order.reserve(static_cast<std::size_t>(n_rows_));
  std::vector<char> placed(static_cast<std::size_t>(n_rows_), 0);
  auto place = [&](std::int32_t r) {
    if (!placed[r]) {
      placed[r] = 1;
      order.push_back(r);
    }
  };
  for (std::int64_t blk : blocks)
    for (std::int64_t p = block_row_ptr_[blk]; p < block_row_ptr_[blk + 1]; ++p) place(post_rows[p]);
  for (std::int64_t r = 0; r < n_rows_; ++r) place(static_cast<std::int32_t>(r));  // rows in no list
  return order;
}

template <class RowFill>
void SparseIndex::pack_forward(RowFill&& fill, const std::int32_t* post_rows, std::int64_t n_post) {
  auto& o = *owned_;
  const std::int64_t width = record_width();
  o.row_unit.assign(static_cast<std::size_t>(n_rows_), 0);
  std::int64_t units = 0;
  for (std::int32_t r : record_order(post_rows)) {
    o.row_unit[r] = units;
    units += kRecordHeader + width * (fwd_indptr_[r + 1] - fwd_indptr_[r]);
  }
  row_unit_ = o.row_unit.data();
  fwd_units_ = units;
  o.fwd_rows.assign(static_cast<std::size_t>(units), 0);
  std::int64_t longest = 0;
  for (std::int64_t r = 0; r < n_rows_; ++r) longest = std::max(longest, fwd_indptr_[r + 1] - fwd_indptr_[r]);
  set_location_width(longest, units);
  parallel_for(n_rows_, 4096, params_.threads, [&](std::int64_t begin, std::int64_t end, int) {
    for (std::int64_t r = begin; r < end; ++r) {
      std::uint16_t* rec = o.fwd_rows.data() + record_unit(r);
      const std::int64_t len = fwd_indptr_[r + 1] - fwd_indptr_[r];
      const std::uint32_t id = static_cast<std::uint32_t>(r);
      std::memcpy(rec, &id, 4);
      const float scale = fill(r, rec + kRecordHeader, rec + kRecordHeader + (width - 1) * len);
      std::memcpy(rec + 2, &scale, 4);
    }
  });
  if (narrow_loc_) o.post_loc32.resize(n_post);
  else o.post_loc64.resize(n_post);
  for (std::int64_t p = 0; p < n_post; ++p) {
    const std::int64_t r = post_rows[p];
    const std::uint64_t loc = (static_cast<std::uint64_t>(record_unit(r)) << loc_len_bits_) |
                              static_cast<std::uint64_t>(fwd_indptr_[r + 1] - fwd_indptr_[r]);
    if (narrow_loc_) o.post_loc32[p] = static_cast<std::uint32_t>(loc);
    else o.post_loc64[p] = loc;
  }
  fwd_rows_ = o.fwd_rows.data();
  post_loc32_ = narrow_loc_ ? o.post_loc32.data() : nullptr;
  post_loc64_ = narrow_loc_ ? nullptr : o.post_loc64.data();
}

void SparseIndex::set_location_width(std::int64_t longest_row, std::int64_t units) {
  // A posting is (record unit << loc_len_bits_) | row length: a u32 when both fit, else a u64.
  loc_len_bits_ = std::max(1, bit_width(static_cast<std::uint64_t>(longest_row)));
  narrow_loc_ = bit_width(static_cast<std::uint64_t>(units)) + loc_len_bits_ <= 32;
}

void SparseIndex::pack_from_floats(const std::int32_t* ids, const float* values, const std::int32_t* post_rows,
                                   std::int64_t n_post) {
  const bool narrow = n_cols_ <= 65536;
  pack_forward(
      [&](std::int64_t r, std::uint16_t* id_units, std::uint16_t* halves) {
        const std::int64_t b = fwd_indptr_[r], len = fwd_indptr_[r + 1] - b;
        for (std::int64_t i = 0; i < len; ++i) {
          if (narrow) id_units[i] = static_cast<std::uint16_t>(ids[b + i]);
          else std::memcpy(id_units + 2 * i, ids + b + i, 4);
        }
        return halves_of_row(values + b, len, halves);
      },
      post_rows, n_post);
}

void SparseIndex::build_forward(const CsrView& codes) {
  // Rows sorted by feature id, duplicates summed and zeros dropped (binary search by feature in
  // top_activations needs sorted rows; duplicate ids would be listed twice).
  const std::int64_t n = codes.n_rows;
  std::vector<std::int64_t> row_len(n, 0);
  std::vector<std::int32_t> idx(codes.nnz());
  std::vector<float> val(codes.nnz());
  std::atomic<bool> any_negative{false};
  parallel_for(n, 4096, params_.threads, [&](std::int64_t begin, std::int64_t end, int) {
    std::vector<std::pair<std::int32_t, float>> row;
    bool negative = false;
    for (std::int64_t r = begin; r < end; ++r) {
      const std::int64_t b = codes.indptr[r], e = codes.indptr[r + 1];
      row.clear();
      for (std::int64_t i = b; i < e; ++i) row.emplace_back(codes.indices[i], codes.values[i]);
      std::sort(row.begin(), row.end(),
                [](const auto& x, const auto& y) { return x.first < y.first; });
      std::int64_t out = b;
      for (std::size_t i = 0; i < row.size();) {
        std::int32_t f = row[i].first;
        float v = 0;
        for (; i < row.size() && row[i].first == f; ++i) v += row[i].second;
        if (v != 0) {
          idx[out] = f;
          val[out] = v;
          negative |= v < 0;
          ++out;
        }
      }
      row_len[r] = out - b;
    }
    if (negative) any_negative.store(true);
  });
  signed_ = any_negative.load();
  auto& o = *owned_;
  o.fwd_indptr.assign(n + 1, 0);
  for (std::int64_t r = 0; r < n; ++r) o.fwd_indptr[r + 1] = o.fwd_indptr[r] + row_len[r];
  o.fwd_indices.resize(o.fwd_indptr[n]);
  o.fwd_values.resize(o.fwd_indptr[n]);
  parallel_for(n, 4096, params_.threads, [&](std::int64_t begin, std::int64_t end, int) {
    for (std::int64_t r = begin; r < end; ++r) {
      std::copy_n(idx.data() + codes.indptr[r], row_len[r], o.fwd_indices.data() + o.fwd_indptr[r]);
      std::copy_n(val.data() + codes.indptr[r], row_len[r], o.fwd_values.data() + o.fwd_indptr[r]);
    }
  });
  fwd_indptr_ = o.fwd_indptr.data();
  fwd_indices_ = o.fwd_indices.data();
  fwd_values_ = o.fwd_values.data();
}

void SparseIndex::build_columns(std::vector<std::int64_t>& col_ptr, std::vector<std::int32_t>& col_rows,
                                std::vector<float>& col_values) const {
  const std::int64_t nnz = fwd_indptr_[n_rows_];
  col_ptr.assign(n_cols_ + 1, 0);
  for (std::int64_t i = 0; i < nnz; ++i) ++col_ptr[fwd_indices_[i] + 1];
  for (std::int64_t j = 0; j < n_cols_; ++j) col_ptr[j + 1] += col_ptr[j];
  col_rows.resize(nnz);
  col_values.resize(nnz);
  std::vector<std::int64_t> fill(col_ptr.begin(), col_ptr.end() - 1);
  for (std::int64_t r = 0; r < n_rows_; ++r) {  // rows ascending within each column
    for (std::int64_t i = fwd_indptr_[r]; i < fwd_indptr_[r + 1]; ++i) {
      const std::int64_t pos = fill[fwd_indices_[i]]++;
      col_rows[pos] = static_cast<std::int32_t>(r);
      col_values[pos] = fwd_values_[i];
    }
  }
}

namespace {
struct ListBlocks {  // one feature's blocks, before concatenation
  std::vector<std::int64_t> block_len;
  std::vector<std::int32_t> rows;
  std::vector<std::int64_t> sum_len;
  std::vector<std::int32_t> sum_features;
  std::vector<std::uint8_t> sum_hi, sum_lo;
  std::vector<float> hi_scale, lo_scale;
};

struct BuildScratch {
  std::vector<std::int32_t> order, cluster, centroid_head, link_next, link_centroid, touched_centroids;
  std::vector<float> link_value, centroid_score;
  std::vector<std::pair<std::int32_t, float>> top_comp;
  std::vector<float> hi, lo;
  std::vector<std::int32_t> touched_features;
  std::vector<std::int64_t> cluster_count;
  std::vector<std::int32_t> grouped;
  std::vector<char> dissolved;
};

constexpr std::int64_t kSmallCluster = 2;

inline std::uint8_t quantise_up(float x, float scale) {
  if (scale <= 0 || x <= 0) return 0;
  const float q = std::ceil(x / scale);
  return static_cast<std::uint8_t>(std::min(q, 255.0f));
}
}  // namespace

void SparseIndex::build_blocks(const std::vector<std::int64_t>& col_ptr, const std::vector<std::int32_t>& col_rows,
                               const std::vector<float>& col_values) {
  std::vector<ListBlocks> lists(n_cols_);
  const int threads = resolve_threads(params_.threads);
  std::vector<BuildScratch> scratch(threads);
  const std::int64_t doc_cut = params_.doc_cut;

  // The components of each row used to cluster it: its doc_cut largest |x_j| (computed once,
  // not once per posting list the row appears in).
  std::vector<std::int32_t> top_feat(checked_mul(n_rows_, doc_cut), -1);
  std::vector<float> top_val(top_feat.size(), 0.0f);
  parallel_for(n_rows_, 4096, threads, [&](std::int64_t begin, std::int64_t end, int) {
    std::vector<std::pair<std::int32_t, float>> row;
    for (std::int64_t r = begin; r < end; ++r) {
      row.clear();
      for (std::int64_t i = fwd_indptr_[r]; i < fwd_indptr_[r + 1]; ++i) row.emplace_back(fwd_indices_[i], fwd_values_[i]);
      if (static_cast<std::int64_t>(row.size()) > doc_cut) {
        std::nth_element(row.begin(), row.begin() + doc_cut, row.end(),
                         [](const auto& a, const auto& b) { return std::fabs(a.second) > std::fabs(b.second); });
        row.resize(doc_cut);
      }
      for (std::size_t i = 0; i < row.size(); ++i) {
        top_feat[r * doc_cut + i] = row[i].first;
        top_val[r * doc_cut + i] = row[i].second;
      }
    }
  });
  auto row_top = [&](std::int32_t r, std::vector<std::pair<std::int32_t, float>>& out) {
    out.clear();
    for (std::int64_t i = r * doc_cut; i < (r + 1) * doc_cut && top_feat[i] >= 0; ++i)
      out.emplace_back(top_feat[i], top_val[i]);
  };

  // Seismic's global pruning: one threshold on |x| for every list, chosen so that lists hold
  // n_postings entries on average, none more than 1.5x that (Seismic's max_fraction default).
  const std::int64_t nnz_total = nnz();
  const std::int64_t budget = static_cast<std::int64_t>(
      std::min<double>(static_cast<double>(params_.n_postings) * static_cast<double>(n_cols_), 9e18));
  float global_threshold = 0.0f;
  if (budget < nnz_total) {
    std::vector<float> mags(fwd_values_, fwd_values_ + nnz_total);
    for (float& m : mags) m = std::fabs(m);
    std::nth_element(mags.begin(), mags.begin() + (nnz_total - budget), mags.end());
    global_threshold = mags[nnz_total - budget];
  }
  const std::int64_t list_cap = std::max<std::int64_t>(1, (params_.n_postings * 3 + 1) / 2);

  parallel_for(n_cols_, 16, threads, [&](std::int64_t begin, std::int64_t end, int tid) {
    BuildScratch& s = scratch[tid];
    if (s.centroid_head.empty()) {
      s.centroid_head.assign(n_cols_, -1);
      s.hi.assign(n_cols_, 0.0f);
      s.lo.assign(n_cols_, 0.0f);
    }
    for (std::int64_t j = begin; j < end; ++j) {
      ListBlocks& out = lists[j];
      const std::int64_t b = col_ptr[j], len = col_ptr[j + 1] - b;
      if (len == 0) continue;
      // 1. Prune: keep entries with |x_j| >= the global threshold, at most list_cap of them
      //    (largest |x_j| first, ties: lower row), then rows ascending. The kept entries are
      //    always a prefix of the column in that order, which top_activations relies on.
      s.order.clear();
      for (std::int64_t i = 0; i < len; ++i)
        if (std::fabs(col_values[b + i]) >= global_threshold) s.order.push_back(static_cast<std::int32_t>(i));
      std::int64_t kept = static_cast<std::int64_t>(s.order.size());
      if (kept > list_cap) {
        kept = list_cap;
        std::nth_element(s.order.begin(), s.order.begin() + kept, s.order.end(), [&](std::int32_t x, std::int32_t y) {
          const float ax = std::fabs(col_values[b + x]), ay = std::fabs(col_values[b + y]);
          return ax > ay || (ax == ay && x < y);
        });
        s.order.resize(kept);
        std::sort(s.order.begin(), s.order.end());
      }
      if (kept == 0) continue;
      // 2. Cluster: n_centroids rows drawn at random; each row joins the centroid with the largest
      //    inner product over both vectors' doc_cut largest components (Seismic's recipe).
      const std::int64_t n_centroids =
          std::min<std::int64_t>(kept, std::max<std::int64_t>(1, static_cast<std::int64_t>(
                                                                     std::ceil(params_.block_fraction * kept))));
      s.cluster.assign(kept, 0);
      if (n_centroids > 1) {
        std::mt19937_64 gen(params_.seed * 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(j));
        std::vector<std::int32_t>& pick = s.grouped;
        pick.resize(kept);
        std::iota(pick.begin(), pick.end(), 0);
        for (std::int64_t c = 0; c < n_centroids; ++c) {
          std::uniform_int_distribution<std::int64_t> dist(c, kept - 1);
          std::swap(pick[c], pick[dist(gen)]);
        }
        s.link_next.clear();
        s.link_centroid.clear();
        s.link_value.clear();
        s.touched_features.clear();
        for (std::int64_t c = 0; c < n_centroids; ++c) {
          // Centroids enter with every component (Seismic's recipe), rows probe with their
          // doc_cut largest. With both sides cut, many rows met no centroid and went to a
          // leftover block whose loose summary cost recall at equal search settings (HH codes:
          // 16,125 blocks, most lists with a leftover one, against 14,082 now).
          const std::int32_t cr = col_rows[b + s.order[pick[c]]];
          s.top_comp.clear();
          for (std::int64_t p = fwd_indptr_[cr]; p < fwd_indptr_[cr + 1]; ++p)
            s.top_comp.emplace_back(fwd_indices_[p], fwd_values_[p]);
          for (const auto& [f, v] : s.top_comp) {
            if (s.centroid_head[f] == -1) s.touched_features.push_back(f);
            s.link_next.push_back(s.centroid_head[f]);
            s.link_centroid.push_back(static_cast<std::int32_t>(c));
            s.link_value.push_back(v);
            s.centroid_head[f] = static_cast<std::int32_t>(s.link_next.size() - 1);
          }
        }
        s.centroid_score.assign(n_centroids, 0.0f);
        s.dissolved.assign(n_centroids, 0);
        // Each row joins the best-scoring centroid not dissolved; rows that meet none of them go
        // to a leftover cluster (index n_centroids) rather than spoil a real one.
        auto assign = [&](std::int64_t i) {
          const std::int32_t row = col_rows[b + s.order[i]];
          s.touched_centroids.clear();
          auto probe = [&](std::int32_t f, float v) {
            for (std::int32_t l = s.centroid_head[f]; l != -1; l = s.link_next[l]) {
              const std::int32_t c = s.link_centroid[l];
              if (s.dissolved[c]) continue;
              if (s.centroid_score[c] == 0.0f) s.touched_centroids.push_back(c);
              s.centroid_score[c] += v * s.link_value[l];
              if (s.centroid_score[c] == 0.0f) s.centroid_score[c] = 1e-30f;  // keep it marked touched
            }
          };
          row_top(row, s.top_comp);
          for (const auto& [f, v] : s.top_comp) probe(f, v);
          // A row whose largest components meet no centroid tries all of its components.
          if (s.touched_centroids.empty())
            for (std::int64_t p = fwd_indptr_[row]; p < fwd_indptr_[row + 1]; ++p) probe(fwd_indices_[p], fwd_values_[p]);
          std::int32_t best = static_cast<std::int32_t>(n_centroids);
          float best_score = -std::numeric_limits<float>::infinity();
          for (std::int32_t c : s.touched_centroids) {
            const float sc = s.centroid_score[c];
            if (sc > best_score || (sc == best_score && c < best)) {
              best_score = sc;
              best = c;
            }
            s.centroid_score[c] = 0.0f;
          }
          s.cluster[i] = best;
        };
        for (std::int64_t i = 0; i < kept; ++i) assign(i);
        // Clusters of at most kSmallCluster rows are dissolved and their rows join the best of
        // the others (Seismic's min_cluster_size, same default). A block of one or two rows has
        // a summary that, pruned to summary_energy of its mass, underestimates its rows the most:
        // on a 200k-row synthetic corpus at blocks 0.2, query_cut 8, recall 0.945 -> 0.954.
        s.cluster_count.assign(n_centroids + 1, 0);
        for (std::int64_t i = 0; i < kept; ++i) ++s.cluster_count[s.cluster[i]];
        bool any_dissolved = false, all_dissolved = true;
        for (std::int64_t c = 0; c < n_centroids; ++c) {
          if (s.cluster_count[c] <= kSmallCluster) s.dissolved[c] = any_dissolved = true;
          else all_dissolved = false;
        }
        if (any_dissolved && !all_dissolved)
          for (std::int64_t i = 0; i < kept; ++i)
            if (s.cluster[i] < n_centroids && s.dissolved[s.cluster[i]]) assign(i);
        for (std::int32_t f : s.touched_features) s.centroid_head[f] = -1;
      }
      // 3. Group rows by cluster (rows ascending inside a block); empty clusters vanish.
      s.cluster_count.assign(n_centroids + 2, 0);
      for (std::int64_t i = 0; i < kept; ++i) ++s.cluster_count[s.cluster[i] + 1];
      for (std::int64_t c = 0; c <= n_centroids; ++c) s.cluster_count[c + 1] += s.cluster_count[c];
      out.rows.resize(kept);
      {
        std::vector<std::int64_t> fill(s.cluster_count.begin(), s.cluster_count.end() - 1);
        for (std::int64_t i = 0; i < kept; ++i) out.rows[fill[s.cluster[i]]++] = col_rows[b + s.order[i]];
      }
      // 4. Summaries: per feature max(0, max x) and min(0, min x) over the block, pruned to
      //    summary_energy of their L1 mass, quantised to u8 rounding away from zero.
      for (std::int64_t c = 0; c <= n_centroids; ++c) {
        const std::int64_t rb = s.cluster_count[c], re = s.cluster_count[c + 1];
        if (re == rb) continue;
        out.block_len.push_back(re - rb);
        s.touched_features.clear();
        for (std::int64_t i = rb; i < re; ++i) {
          const std::int32_t r = out.rows[i];
          for (std::int64_t p = fwd_indptr_[r]; p < fwd_indptr_[r + 1]; ++p) {
            const std::int32_t f = fwd_indices_[p];
            const float v = fwd_values_[p];
            if (s.hi[f] == 0.0f && s.lo[f] == 0.0f) s.touched_features.push_back(f);
            if (v > s.hi[f]) s.hi[f] = v;
            if (v < s.lo[f]) s.lo[f] = v;
          }
        }
        double total = 0;
        for (std::int32_t f : s.touched_features) total += s.hi[f] - s.lo[f];
        auto mass = [&](std::int32_t f) { return s.hi[f] - s.lo[f]; };
        std::size_t keep = select_mass_prefix(s.touched_features.data(), s.touched_features.size(),
                                              params_.summary_energy * total, mass);
        if (keep == 0 && !s.touched_features.empty()) keep = 1;
        std::sort(s.touched_features.begin(), s.touched_features.begin() + keep);  // gathers in order
        float hi_max = 0, lo_max = 0;
        for (std::size_t i = 0; i < keep; ++i) {
          hi_max = std::max(hi_max, s.hi[s.touched_features[i]]);
          lo_max = std::max(lo_max, -s.lo[s.touched_features[i]]);
        }
        const float hi_scale = hi_max / 255.0f, lo_scale = lo_max / 255.0f;
        out.hi_scale.push_back(hi_scale);
        out.lo_scale.push_back(lo_scale);
        out.sum_len.push_back(static_cast<std::int64_t>(keep));
        for (std::size_t i = 0; i < keep; ++i) {
          const std::int32_t f = s.touched_features[i];
          out.sum_features.push_back(f);
          out.sum_hi.push_back(quantise_up(s.hi[f], hi_scale));
          if (signed_) out.sum_lo.push_back(quantise_up(-s.lo[f], lo_scale));
        }
        for (std::int32_t f : s.touched_features) s.hi[f] = s.lo[f] = 0.0f;
      }
    }
  });

  // Concatenate the per-feature pieces.
  auto& o = *owned_;
  o.list_block_ptr.assign(n_cols_ + 1, 0);
  std::vector<std::int64_t> row_start(n_cols_ + 1, 0), sum_start(n_cols_ + 1, 0);
  for (std::int64_t j = 0; j < n_cols_; ++j) {
    o.list_block_ptr[j + 1] = o.list_block_ptr[j] + static_cast<std::int64_t>(lists[j].block_len.size());
    row_start[j + 1] = row_start[j] + static_cast<std::int64_t>(lists[j].rows.size());
    sum_start[j + 1] = sum_start[j] + static_cast<std::int64_t>(lists[j].sum_features.size());
  }
  n_blocks_ = o.list_block_ptr[n_cols_];
  o.block_row_ptr.assign(n_blocks_ + 1, 0);
  o.block_sum_ptr.assign(n_blocks_ + 1, 0);
  o.block_hi_scale.resize(n_blocks_);
  o.block_lo_scale.resize(signed_ ? n_blocks_ : 0);
  o.post_rows.resize(row_start[n_cols_]);
  const bool narrow = n_cols_ <= 65536;
  if (narrow) o.sum_features16.resize(sum_start[n_cols_]);
  else o.sum_features32.resize(sum_start[n_cols_]);
  o.sum_hi.resize(sum_start[n_cols_]);
  o.sum_lo.resize(signed_ ? sum_start[n_cols_] : 0);
  parallel_for(n_cols_, 256, threads, [&](std::int64_t begin, std::int64_t end, int) {
    for (std::int64_t j = begin; j < end; ++j) {
      ListBlocks& l = lists[j];
      std::int64_t rpos = row_start[j], spos = sum_start[j];
      for (std::size_t i = 0; i < l.block_len.size(); ++i) {
        const std::int64_t blk = o.list_block_ptr[j] + static_cast<std::int64_t>(i);
        rpos += l.block_len[i];
        spos += l.sum_len[i];
        o.block_row_ptr[blk + 1] = rpos;
        o.block_sum_ptr[blk + 1] = spos;
        o.block_hi_scale[blk] = l.hi_scale[i];
        if (signed_) o.block_lo_scale[blk] = l.lo_scale[i];
      }
      std::copy(l.rows.begin(), l.rows.end(), o.post_rows.begin() + row_start[j]);
      if (narrow)
        for (std::size_t i = 0; i < l.sum_features.size(); ++i)
          o.sum_features16[sum_start[j] + i] = static_cast<std::uint16_t>(l.sum_features[i]);
      else
        std::copy(l.sum_features.begin(), l.sum_features.end(), o.sum_features32.begin() + sum_start[j]);
      std::copy(l.sum_hi.begin(), l.sum_hi.end(), o.sum_hi.begin() + sum_start[j]);
      if (signed_) std::copy(l.sum_lo.begin(), l.sum_lo.end(), o.sum_lo.begin() + sum_start[j]);
      ListBlocks().block_len.swap(l.block_len);  // release as we go
      l = ListBlocks();
    }
  });
}

void SparseIndex::point_at_owned() {
  auto& o = *owned_;
  fwd_indptr_ = o.fwd_indptr.data();
  fwd_indices_ = o.fwd_indices.data();
  fwd_values_ = o.fwd_values.data();
  col_nnz_ = o.col_nnz.data();
  if (!approximate_) {
    col_ptr_ = o.col_ptr.data();
    col_rows_ = o.col_rows.data();
    col_values_ = o.col_values.data();
  } else {
    list_block_ptr_ = o.list_block_ptr.data();
    block_row_ptr_ = o.block_row_ptr.data();
    block_sum_ptr_ = o.block_sum_ptr.data();
    sum_features16_ = n_cols_ <= 65536 ? o.sum_features16.data() : nullptr;
    sum_features32_ = n_cols_ > 65536 ? o.sum_features32.data() : nullptr;
    sum_hi_ = o.sum_hi.data();
    sum_lo_ = signed_ ? o.sum_lo.data() : nullptr;
    block_hi_scale_ = o.block_hi_scale.data();
    block_lo_scale_ = signed_ ? o.block_lo_scale.data() : nullptr;
  }
}

std::int64_t SparseIndex::n_postings_stored() const {
  return approximate_ ? block_row_ptr_[n_blocks_] : nnz();
}
std::vector<std::int64_t> SparseIndex::block_lengths() const {
  std::vector<std::int64_t> out(static_cast<std::size_t>(approximate_ ? n_blocks_ : 0));
  for (std::size_t b = 0; b < out.size(); ++b) out[b] = block_row_ptr_[b + 1] - block_row_ptr_[b];
  return out;
}
std::int64_t SparseIndex::n_summary_entries() const { return approximate_ ? block_sum_ptr_[n_blocks_] : 0; }

// ---------------------------------------------------------------------------------------------
// Search

inline float SparseIndex::row_dot(std::int64_t row, const float* q_dense) const {
  float acc = 0;
  for (std::int64_t p = fwd_indptr_[row]; p < fwd_indptr_[row + 1]; ++p) acc += q_dense[fwd_indices_[p]] * fwd_values_[p];
  return acc;
}

// q . x for the record `rec` (approximate mode) of a row with `len` entries.
inline float SparseIndex::record_dot(const std::uint16_t* rec, std::int64_t len, const float* q_dense) const {
  const std::uint16_t* ids = rec + kRecordHeader;
  const float scale = read_f32(rec + 2);
  if (n_cols_ <= 65536) {
#ifdef LIKEABLE_HALF_DOT_AVX2
    if (cpu_has_avx2()) return half_dot_avx2(ids, ids + len, len, q_dense) * scale;
#endif
    return half_dot(ids, ids + len, len, q_dense) * scale;
  }
  return half_dot_wide(ids, ids + 2 * len, len, q_dense) * scale;
}

float SparseIndex::record_value(const std::uint16_t* rec, std::int64_t len, std::int32_t feature) const {
  const std::uint16_t* ids = rec + kRecordHeader;
  std::int64_t lo = 0, hi = len;  // first entry with id >= feature (ids ascend)
  const bool narrow = n_cols_ <= 65536;
  while (lo < hi) {
    const std::int64_t mid = lo + (hi - lo) / 2;
    const std::int64_t id = narrow ? ids[mid] : static_cast<std::int64_t>(read_u32(ids + 2 * mid));
    if (id < feature) lo = mid + 1;
    else hi = mid;
  }
  if (lo == len) return 0.0f;
  const std::int64_t id = narrow ? ids[lo] : static_cast<std::int64_t>(read_u32(ids + 2 * lo));
  if (id != feature) return 0.0f;
  const std::uint16_t* halves = ids + (narrow ? len : 2 * len);
  return half_to_float(halves[lo]) * read_f32(rec + 2);
}

float SparseIndex::value_at(std::int64_t row, std::int32_t feature) const {
  if (approximate_) return record_value(fwd_rows_ + record_unit(row), fwd_indptr_[row + 1] - fwd_indptr_[row], feature);
  const std::int32_t* b = fwd_indices_ + fwd_indptr_[row];
  const std::int32_t* e = fwd_indices_ + fwd_indptr_[row + 1];
  const std::int32_t* it = std::lower_bound(b, e, feature);
  return (it != e && *it == feature) ? fwd_values_[it - fwd_indices_] : 0.0f;
}

void SparseIndex::search_exact_one(const std::int32_t* q_idx, const float* q_val, std::int64_t q_nnz, Scratch& s,
                                   std::int64_t k, std::int64_t* ids, float* scores) const {
  float* acc = s.scores.data();
  std::int64_t scatter_cost = 0;
  for (std::int64_t i = 0; i < q_nnz; ++i) scatter_cost += col_nnz_[q_idx[i]];
  TopK top{&s.heap, static_cast<std::size_t>(k)};
  if (scatter_cost >= n_rows_ / 4 && scatter_cost <= nnz() / 2) {
    // Many postings (a typical query touches most rows): a plain scatter with no per-posting
    // bookkeeping, then one branch-light scan of every row against the k-th score and a memset.
    // Listing touched rows (below) costs a dependent append per posting, which here is more
    // than the full scan it saves. Columns hold rows ascending, and so does the scan, which
    // gives the tie rule (lower row first) and puts rows scoring exactly 0 in their place.
    const std::int64_t* col_ptr = col_ptr_;
    const std::int32_t* col_rows = col_rows_;
    const float* col_values = col_values_;
    for (std::int64_t i = 0; i < q_nnz; ++i) {
      const float w = q_val[i];
      const std::int32_t j = q_idx[i];
      const std::int64_t p_end = col_ptr[j + 1];
      for (std::int64_t p = col_ptr[j]; p < p_end; ++p) acc[col_rows[p]] += w * col_values[p];
    }
    scan_scores(acc, n_rows_, top);
    std::memset(acc, 0, sizeof(float) * static_cast<std::size_t>(n_rows_));
  } else if (scatter_cost <= nnz() / 2) {
    // Few postings touched: scatter-accumulate the query's columns, listing each row on its first
    // touch (its sum is still 0) so that the top-k scan and the reset visit those rows only, not
    // all n_rows. A sum that cancels to exactly 0 and moves again lists its row twice: the scan
    // below marks rows it has taken with NaN, so a second listing is skipped.
    if (s.touched.size() < static_cast<std::size_t>(scatter_cost)) s.touched.resize(scatter_cost);
    std::int32_t* touched = s.touched.data();
    std::int64_t n_touched = 0;
    const std::int64_t* col_ptr = col_ptr_;
    const std::int32_t* col_rows = col_rows_;
    const float* col_values = col_values_;
    for (std::int64_t i = 0; i < q_nnz; ++i) {
      const float w = q_val[i];
      const std::int32_t j = q_idx[i];
      const std::int64_t p_end = col_ptr[j + 1];
      for (std::int64_t p = col_ptr[j]; p < p_end; ++p) {
        const std::int32_t r = col_rows[p];
        const float before = acc[r];
        touched[n_touched] = r;
        n_touched += before == 0.0f;  // branch-free append
        acc[r] = before + w * col_values[p];
      }
    }
    const float taken = std::numeric_limits<float>::quiet_NaN();
    for (std::int64_t t = 0; t < n_touched; ++t) {
      const std::int32_t r = touched[t];
      const float v = acc[r];
      if (v == 0.0f || v != v) continue;  // a zero (handled below) or already taken
      if (!top.full() || better(Hit{v, r}, top.worst())) top.push(v, r);
      acc[r] = taken;
    }
    // Rows scoring exactly 0 (untouched, or cancelled) are all equal: the best of them are the
    // lowest ids, added only when they can reach the top k.
    if (!top.full() || top.worst().score < 0.0f) {
      std::int64_t added = 0;
      for (std::int64_t r = 0; r < n_rows_ && added < k; ++r) {
        if (acc[r] == 0.0f) {
          top.push(0.0f, r);
          ++added;
        }
      }
    }
    for (std::int64_t t = 0; t < n_touched; ++t) acc[touched[t]] = 0.0f;
  } else {
    // A dense-ish query: one pass over the forward index, gathering query weights.
    float* q = s.q_dense.data();
    for (std::int64_t i = 0; i < q_nnz; ++i) q[q_idx[i]] += q_val[i];
    for (std::int64_t r = 0; r < n_rows_; ++r) acc[r] = row_dot(r, q);
    for (std::int64_t i = 0; i < q_nnz; ++i) q[q_idx[i]] = 0.0f;
    scan_scores(acc, n_rows_, top);
    std::memset(acc, 0, sizeof(float) * static_cast<std::size_t>(n_rows_));
  }
  top.write(ids, scores);
}

void SparseIndex::search_approx_one(const std::int32_t* q_idx, const float* q_val, std::int64_t q_nnz, Scratch& s,
                                    const SearchParams& params, std::int64_t* ids, float* scores) const {
  float* q = s.q_dense.data();
  for (std::int64_t i = 0; i < q_nnz; ++i) q[q_idx[i]] += q_val[i];
  // The query_cut components with the largest |q_j| pick the posting lists to visit.
  s.cut.clear();
  for (std::int64_t i = 0; i < q_nnz; ++i)
    if (q[q_idx[i]] != 0.0f && (i == 0 || q_idx[i] != q_idx[i - 1])) s.cut.push_back(q_idx[i]);
  std::sort(s.cut.begin(), s.cut.end());
  s.cut.erase(std::unique(s.cut.begin(), s.cut.end()), s.cut.end());
  auto by_weight = [q](std::int32_t a, std::int32_t b) {
    const float wa = std::fabs(q[a]), wb = std::fabs(q[b]);
    return wa > wb || (wa == wb && a < b);
  };
  const std::size_t n_cut = params.query_cut > 0 ? std::min<std::size_t>(params.query_cut, s.cut.size()) : s.cut.size();
  std::partial_sort(s.cut.begin(), s.cut.begin() + n_cut, s.cut.end(), by_weight);

  TopK top{&s.heap, static_cast<std::size_t>(params.k)};
  const float hf = static_cast<float>(params.heap_factor);
  const bool use_avx2 = cpu_has_avx2();
  const std::uint64_t len_mask = (std::uint64_t{1} << loc_len_bits_) - 1;
  const std::int64_t width = record_width();
  for (std::size_t c = 0; c < n_cut; ++c) {
    const std::int32_t j = s.cut[c];
    const std::int64_t b0 = list_block_ptr_[j], b1 = list_block_ptr_[j + 1];
    s.block_order.clear();
    for (std::int64_t blk = b0; blk < b1; ++blk) {
      float pos = 0, neg = 0;
      const std::int64_t e0 = block_sum_ptr_[blk], e1 = block_sum_ptr_[blk + 1];
      if (signed_) {
        for (std::int64_t e = e0; e < e1; ++e) {
          const float w = q[sum_features16_ ? sum_features16_[e] : sum_features32_[e]];
          if (w > 0) pos += w * sum_hi_[e];
          else neg -= w * sum_lo_[e];
        }
        s.block_order.emplace_back(pos * block_hi_scale_[blk] + neg * block_lo_scale_[blk], blk);
      } else {
        if (use_avx2 && sum_features16_) {
#ifdef LIKEABLE_HALF_DOT_AVX2
          pos = summary_dot_avx2(sum_features16_ + e0, sum_hi_ + e0, e1 - e0, q);
#endif
        } else if (sum_features16_) {
          for (std::int64_t e = e0; e < e1; ++e) pos += std::max(q[sum_features16_[e]], 0.0f) * sum_hi_[e];
        } else {
          for (std::int64_t e = e0; e < e1; ++e) pos += std::max(q[sum_features32_[e]], 0.0f) * sum_hi_[e];
        }
        s.block_order.emplace_back(pos * block_hi_scale_[blk], blk);
      }
    }
    std::sort(s.block_order.begin(), s.block_order.end(),
              [](const auto& a, const auto& b) { return a.first > b.first; });
    for (std::size_t o = 0; o < s.block_order.size(); ++o) {
      const std::int64_t blk = s.block_order[o].second;
      const float bound = s.block_order[o].first;
      if (top.full()) {
        const float kth = top.worst().score;
        const float threshold = kth >= 0 ? kth * hf : kth / hf;
        if (bound < threshold) break;  // blocks come in descending bound: the rest fail too
      }
      // The block's rows go in chunks of kPrefetchRows, each in two passes: prefetch every cache
      // line of every record in the chunk, so their misses overlap, then re-score them. A
      // posting is its row's record location, so no offsets are loaded first; the row id (for
      // the visited check and the result) sits in the record's first line. Chunks of 8 beat
      // whole blocks (the large blocks that search visits hold ~30 rows, more lines than the
      // core keeps in flight) and a rolling prefetch distance, both measured on the dev box.
      const std::int64_t p_end = block_row_ptr_[blk + 1];
      for (std::int64_t chunk = block_row_ptr_[blk]; chunk < p_end; chunk += kPrefetchRows) {
        const std::int64_t chunk_end = std::min(p_end, chunk + kPrefetchRows);
        for (std::int64_t p = chunk; p < chunk_end; ++p) {
          const std::uint64_t loc = loc_at(p);
          const std::int64_t len = static_cast<std::int64_t>(loc & len_mask);
          const std::uintptr_t begin = reinterpret_cast<std::uintptr_t>(fwd_rows_ + (loc >> loc_len_bits_));
          const std::uintptr_t end = begin + 2 * static_cast<std::uintptr_t>(kRecordHeader + width * len);
          for (std::uintptr_t line = begin & ~std::uintptr_t{63}; line < end; line += 64)
            __builtin_prefetch(reinterpret_cast<const void*>(line));
        }
        for (std::int64_t p = chunk; p < chunk_end; ++p) {
          const std::uint64_t loc = loc_at(p);
          const std::uint16_t* rec = fwd_rows_ + (loc >> loc_len_bits_);
          const std::int32_t r = static_cast<std::int32_t>(read_u32(rec));
          std::uint64_t& word = s.visited[r >> 6];
          const std::uint64_t bit = std::uint64_t{1} << (r & 63);
          if (word & bit) continue;
          word |= bit;
          s.visited_rows.push_back(r);
          top.push(record_dot(rec, static_cast<std::int64_t>(loc & len_mask), q), r);
        }
      }
    }
  }
  top.write(ids, scores);
  for (std::int32_t r : s.visited_rows) s.visited[r >> 6] = 0;
  s.visited_rows.clear();
  for (std::int64_t i = 0; i < q_nnz; ++i) q[q_idx[i]] = 0.0f;
}

void SparseIndex::search(const QueryBatch& queries, const SearchParams& params, std::int64_t* ids,
                         float* scores) const {
  LIKEABLE_CHECK(params.k >= 1, "k must be >= 1, got ", params.k);
  LIKEABLE_CHECK(params.heap_factor > 0, "heap_factor must be > 0, got ", params.heap_factor);
  LIKEABLE_CHECK(queries.n_cols == n_cols_, "queries have ", queries.n_cols, " features, the index has ", n_cols_);
  const std::int64_t k = params.k;
  // Small batches on one thread: spinning up a team costs more than a few queries.
  const std::int64_t chunk = 4;
  parallel_for(queries.n_queries, chunk, params.threads, [&](std::int64_t begin, std::int64_t end, int) {
    Scratch& s = Scratch::for_this_thread();
    s.reserve(n_rows_, n_cols_, !approximate_, k);
    for (std::int64_t qi = begin; qi < end; ++qi) {
      const std::int32_t* idx;
      const float* val;
      std::int64_t q_nnz;
      if (queries.sparse != nullptr) {
        const CsrView& csr = *queries.sparse;
        idx = csr.indices + csr.indptr[qi];
        val = csr.values + csr.indptr[qi];
        q_nnz = csr.indptr[qi + 1] - csr.indptr[qi];
      } else {
        const float* row = queries.dense + qi * n_cols_;
        s.q_idx.clear();
        s.q_val.clear();
        for (std::int64_t j = 0; j < n_cols_; ++j) {
          if (row[j] != 0.0f) {
            s.q_idx.push_back(static_cast<std::int32_t>(j));
            s.q_val.push_back(row[j]);
          }
        }
        idx = s.q_idx.data();
        val = s.q_val.data();
        q_nnz = static_cast<std::int64_t>(s.q_idx.size());
      }
      std::int64_t* out_ids = ids + qi * k;
      float* out_scores = scores + qi * k;
      if (n_rows_ == 0) {
        TopK top{&s.heap, static_cast<std::size_t>(k)};
        top.write(out_ids, out_scores);
      } else if (approximate_) {
        search_approx_one(idx, val, q_nnz, s, params, out_ids, out_scores);
      } else {
        search_exact_one(idx, val, q_nnz, s, k, out_ids, out_scores);
      }
    }
  });
}

void SparseIndex::top_activations(std::int32_t feature, std::int64_t n, int sign, std::vector<std::int64_t>& rows,
                                  std::vector<float>& values) const {
  LIKEABLE_CHECK(feature >= 0 && feature < n_cols_, "feature ", feature, " is outside [0, ", n_cols_, ")");
  LIKEABLE_CHECK(n >= 0, "n must be >= 0, got ", n);
  LIKEABLE_CHECK(sign == 1 || sign == -1, "sign must be +1 or -1, got ", sign);
  std::vector<std::pair<float, std::int64_t>> hits;  // (signed value, row)
  auto collect = [&](std::int64_t r, float v) {
    if (v * static_cast<float>(sign) > 0) hits.emplace_back(v * static_cast<float>(sign), r);
  };
  if (!approximate_) {
    for (std::int64_t p = col_ptr_[feature]; p < col_ptr_[feature + 1]; ++p) collect(col_rows_[p], col_values_[p]);
  } else {
    const std::int64_t p0 = block_row_ptr_[list_block_ptr_[feature]];
    const std::int64_t p1 = block_row_ptr_[list_block_ptr_[feature + 1]];
    const std::uint64_t len_mask = (std::uint64_t{1} << loc_len_bits_) - 1;
    for (std::int64_t p = p0; p < p1; ++p) {
      const std::uint64_t loc = loc_at(p);
      const std::uint16_t* rec = fwd_rows_ + (loc >> loc_len_bits_);
      collect(read_u32(rec), record_value(rec, static_cast<std::int64_t>(loc & len_mask), feature));
    }
    // The pruned list kept the largest |x_j| (ties: lower row), so its n best of one sign are the
    // column's n best unless it was pruned and holds fewer than n of that sign.
    const bool complete = (p1 - p0) == col_nnz_[feature] || static_cast<std::int64_t>(hits.size()) >= n;
    if (!complete) {
      hits.clear();
      for (std::int64_t r = 0; r < n_rows_; ++r) collect(r, value_at(r, feature));
    }
  }
  auto order = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  const std::size_t take = std::min<std::size_t>(static_cast<std::size_t>(n), hits.size());
  std::partial_sort(hits.begin(), hits.begin() + take, hits.end(), order);
  rows.resize(take);
  values.resize(take);
  for (std::size_t i = 0; i < take; ++i) {
    rows[i] = hits[i].second;
    values[i] = hits[i].first * static_cast<float>(sign);
  }
}

// ---------------------------------------------------------------------------------------------
// Files

io::SectionWriter SparseIndex::writer(std::vector<std::int64_t>& meta, std::vector<double>& fparams) const {
  meta = {n_rows_, n_cols_, approximate_ ? 1 : 0, signed_ ? 1 : 0, n_blocks_, params_.n_postings, params_.doc_cut,
          static_cast<std::int64_t>(params_.seed)};
  fparams = {params_.block_fraction, params_.summary_energy};
  io::SectionWriter w(kIndexKind, kIndexVersion);
  w.add("meta", meta);
  w.add("params", fparams);
  w.add("fwd_indptr", fwd_indptr_, n_rows_ + 1);
  w.add("col_nnz", col_nnz_, n_cols_);
  if (!approximate_) {
    w.add("fwd_indices", fwd_indices_, nnz());
    w.add("fwd_values", fwd_values_, nnz());
    w.add("col_ptr", col_ptr_, n_cols_ + 1);
    w.add("col_rows", col_rows_, nnz());
    w.add("col_values", col_values_, nnz());
  } else {
    const std::int64_t n_post = block_row_ptr_[n_blocks_], n_sum = block_sum_ptr_[n_blocks_];
    w.add("fwd_rows", fwd_rows_, static_cast<std::size_t>(fwd_units_));
    w.add("row_unit", row_unit_, n_rows_);
    w.add("list_block_ptr", list_block_ptr_, n_cols_ + 1);
    w.add("block_row_ptr", block_row_ptr_, n_blocks_ + 1);
    if (narrow_loc_) w.add("post_loc", post_loc32_, n_post);
    else w.add("post_loc", post_loc64_, n_post);
    w.add("block_sum_ptr", block_sum_ptr_, n_blocks_ + 1);
    if (n_cols_ <= 65536) w.add("sum_features", sum_features16_, n_sum);
    else w.add("sum_features", sum_features32_, n_sum);
    w.add("sum_hi", sum_hi_, n_sum);
    w.add("block_hi_scale", block_hi_scale_, n_blocks_);
    if (signed_) {
      w.add("sum_lo", sum_lo_, n_sum);
      w.add("block_lo_scale", block_lo_scale_, n_blocks_);
    }
  }
  return w;
}

std::size_t SparseIndex::file_bytes() const {
  std::vector<std::int64_t> meta;
  std::vector<double> fparams;
  return writer(meta, fparams).total_bytes();
}

std::vector<std::uint8_t> SparseIndex::to_bytes() const {
  std::vector<std::int64_t> meta;
  std::vector<double> fparams;
  return writer(meta, fparams).to_bytes();
}

void SparseIndex::save(const std::string& path) const {
  std::vector<std::int64_t> meta;
  std::vector<double> fparams;
  writer(meta, fparams).save(path);
}

namespace {
template <class T>
void check_monotone(const T* ptr, std::int64_t n, std::int64_t last, const std::string& source, const char* name) {
  if (ptr[0] != 0) throw FormatError(concat(source, ": ", name, " does not start at 0"));
  for (std::int64_t i = 0; i < n; ++i)
    if (ptr[i + 1] < ptr[i]) throw FormatError(concat(source, ": ", name, " decreases at ", i));
  if (ptr[n] != last) throw FormatError(concat(source, ": ", name, " ends at ", ptr[n], ", expected ", last));
}
template <class T>
void check_ids(const T* ids, std::int64_t n, std::int64_t bound, const std::string& source, const char* name) {
  for (std::int64_t i = 0; i < n; ++i)
    if (static_cast<std::int64_t>(ids[i]) < 0 || static_cast<std::int64_t>(ids[i]) >= bound)
      throw FormatError(concat(source, ": ", name, "[", i, "] = ", static_cast<std::int64_t>(ids[i]),
                               " is outside [0, ", bound, ")"));
}
}  // namespace

std::shared_ptr<SparseIndex> SparseIndex::load(std::shared_ptr<io::Buffer> buffer, const std::string& source,
                                               bool verify_checksums) {
  io::SectionReader rd(std::move(buffer), kIndexKind, kIndexVersion, source, verify_checksums);
  std::shared_ptr<SparseIndex> idx(new SparseIndex());
  idx->mapped_ = rd.buffer();
  const std::int64_t* meta = rd.get<std::int64_t>("meta", 8);
  const double* fparams = rd.get<double>("params", 2);
  idx->n_rows_ = meta[0];
  idx->n_cols_ = meta[1];
  idx->approximate_ = meta[2] != 0;
  idx->signed_ = meta[3] != 0;
  idx->n_blocks_ = meta[4];
  idx->params_.approximate = idx->approximate_;
  idx->params_.n_postings = meta[5];
  idx->params_.doc_cut = meta[6];
  idx->params_.seed = static_cast<std::uint64_t>(meta[7]);
  idx->params_.block_fraction = fparams[0];
  idx->params_.summary_energy = fparams[1];
  const std::int64_t n_rows = idx->n_rows_, n_cols = idx->n_cols_, n_blocks = idx->n_blocks_;
  if (n_rows < 0 || n_rows > INT32_MAX || n_cols < 0 || n_cols > INT32_MAX || n_blocks < 0)
    throw FormatError(concat(source, ": implausible sizes in the header"));
  // Structure is checked as well as checksums: a file that passes both cannot make search read
  // outside its arrays (O(size of the index), a fraction of the checksum pass).
  idx->fwd_indptr_ = rd.get<std::int64_t>("fwd_indptr", n_rows + 1);
  idx->col_nnz_ = rd.get<std::int64_t>("col_nnz", n_cols);
  const bool narrow = n_cols <= 65536;
  if (!idx->approximate_) {
    const std::int64_t nnz = static_cast<std::int64_t>(rd.count<float>("fwd_values"));
    check_monotone(idx->fwd_indptr_, n_rows, nnz, source, "fwd_indptr");
    idx->fwd_indices_ = rd.get<std::int32_t>("fwd_indices", nnz);
    idx->fwd_values_ = rd.get<float>("fwd_values", nnz);
    check_ids(idx->fwd_indices_, nnz, n_cols, source, "fwd_indices");
    idx->col_ptr_ = rd.get<std::int64_t>("col_ptr", n_cols + 1);
    check_monotone(idx->col_ptr_, n_cols, nnz, source, "col_ptr");
    idx->col_rows_ = rd.get<std::int32_t>("col_rows", nnz);
    idx->col_values_ = rd.get<float>("col_values", nnz);
    check_ids(idx->col_rows_, nnz, n_rows, source, "col_rows");
    for (std::int64_t j = 0; j < n_cols; ++j)
      if (idx->col_nnz_[j] != idx->col_ptr_[j + 1] - idx->col_ptr_[j])
        throw FormatError(concat(source, ": col_nnz disagrees with col_ptr at ", j));
    return idx;
  }
  idx->list_block_ptr_ = rd.get<std::int64_t>("list_block_ptr", n_cols + 1);
  check_monotone(idx->list_block_ptr_, n_cols, n_blocks, source, "list_block_ptr");
  idx->block_row_ptr_ = rd.get<std::int64_t>("block_row_ptr", n_blocks + 1);
  idx->block_sum_ptr_ = rd.get<std::int64_t>("block_sum_ptr", n_blocks + 1);
  const std::int64_t n_sum = static_cast<std::int64_t>(rd.count<std::uint8_t>("sum_hi"));
  check_monotone(idx->block_sum_ptr_, n_blocks, n_sum, source, "block_sum_ptr");
  if (narrow) {
    idx->sum_features16_ = rd.get<std::uint16_t>("sum_features", n_sum);
    check_ids(idx->sum_features16_, n_sum, n_cols, source, "sum_features");
  } else {
    idx->sum_features32_ = rd.get<std::int32_t>("sum_features", n_sum);
    check_ids(idx->sum_features32_, n_sum, n_cols, source, "sum_features");
  }
  idx->sum_hi_ = rd.get<std::uint8_t>("sum_hi", n_sum);
  idx->block_hi_scale_ = rd.get<float>("block_hi_scale", n_blocks);
  if (idx->signed_) {
    idx->sum_lo_ = rd.get<std::uint8_t>("sum_lo", n_sum);
    idx->block_lo_scale_ = rd.get<float>("block_lo_scale", n_blocks);
  }
  const std::int64_t width = idx->record_width();

  if (!rd.has("fwd_rows")) {
    // Versions 1 and 2: row ids as postings and a separate forward index, converted here into
    // the current records (v2 values are copied bit for bit, so results do not change).
    const std::int64_t n_post = static_cast<std::int64_t>(rd.count<std::int32_t>("post_rows"));
    check_monotone(idx->block_row_ptr_, n_blocks, n_post, source, "block_row_ptr");
    const std::int32_t* post_rows = rd.get<std::int32_t>("post_rows", n_post);
    check_ids(post_rows, n_post, n_rows, source, "post_rows");
    idx->owned_ = std::make_shared<Owned>();
    if (rd.has("fwd_half")) {
      const std::int64_t nnz = static_cast<std::int64_t>(rd.count<std::uint16_t>("fwd_half"));
      check_monotone(idx->fwd_indptr_, n_rows, nnz, source, "fwd_indptr");
      const std::uint16_t* half = rd.get<std::uint16_t>("fwd_half", nnz);
      const float* row_scale = rd.get<float>("fwd_row_scale", n_rows);
      const std::uint16_t* ids16 = narrow ? rd.get<std::uint16_t>("fwd_indices", nnz) : nullptr;
      const std::int32_t* ids32 = narrow ? nullptr : rd.get<std::int32_t>("fwd_indices", nnz);
      if (narrow) check_ids(ids16, nnz, n_cols, source, "fwd_indices");
      else check_ids(ids32, nnz, n_cols, source, "fwd_indices");
      const std::int64_t* indptr = idx->fwd_indptr_;
      idx->pack_forward(
          [&](std::int64_t r, std::uint16_t* id_units, std::uint16_t* halves) {
            const std::int64_t b = indptr[r], len = indptr[r + 1] - b;
            if (narrow) std::copy_n(ids16 + b, len, id_units);
            else std::memcpy(id_units, ids32 + b, static_cast<std::size_t>(4 * len));
            std::copy_n(half + b, len, halves);
            return row_scale[r];
          },
          post_rows, n_post);
    } else {
      const std::int64_t nnz = static_cast<std::int64_t>(rd.count<float>("fwd_values"));
      check_monotone(idx->fwd_indptr_, n_rows, nnz, source, "fwd_indptr");
      const std::int32_t* ids = rd.get<std::int32_t>("fwd_indices", nnz);
      check_ids(ids, nnz, n_cols, source, "fwd_indices");
      idx->pack_from_floats(ids, rd.get<float>("fwd_values", nnz), post_rows, n_post);
    }
    return idx;
  }

  // Versions 3 and 4: one array of records; version 3 keeps them in row order (row r's record
  // at unit 4 r + width fwd_indptr[r]), version 4 says where each starts (row_unit).
  const std::int64_t units = static_cast<std::int64_t>(rd.count<std::uint16_t>("fwd_rows"));
  const std::int64_t entry_units = units - kRecordHeader * n_rows;
  if (entry_units < 0 || entry_units % width != 0)
    throw FormatError(concat(source, ": fwd_rows holds ", units, " units, not ", kRecordHeader,
                             " per row plus whole entries"));
  check_monotone(idx->fwd_indptr_, n_rows, entry_units / width, source, "fwd_indptr");
  const std::uint16_t* fwd_rows = rd.get<std::uint16_t>("fwd_rows", units);
  const bool row_order = !rd.has("row_unit");
  std::vector<std::int64_t> row_order_unit;
  if (row_order) {
    row_order_unit.resize(static_cast<std::size_t>(n_rows));
    for (std::int64_t r = 0; r < n_rows; ++r) row_order_unit[r] = kRecordHeader * r + width * idx->fwd_indptr_[r];
    idx->row_unit_ = row_order_unit.data();
  } else {
    idx->row_unit_ = rd.get<std::int64_t>("row_unit", n_rows);
  }
  idx->fwd_rows_ = fwd_rows;
  idx->fwd_units_ = units;
  std::int64_t longest = 0;
  for (std::int64_t r = 0; r < n_rows; ++r) {
    const std::int64_t len = idx->fwd_indptr_[r + 1] - idx->fwd_indptr_[r];
    longest = std::max(longest, len);
    const std::int64_t unit = idx->row_unit_[r];
    if (unit < 0 || unit > units - kRecordHeader - width * len)
      throw FormatError(concat(source, ": row_unit[", r, "] = ", unit, " puts its record outside fwd_rows"));
    const std::uint16_t* rec = fwd_rows + unit;
    const float scale = read_f32(rec + 2);
    if (read_u32(rec) != static_cast<std::uint32_t>(r) || !(scale > 0) || !std::isfinite(scale))
      throw FormatError(concat(source, ": the record of row ", r, " is damaged"));
    const std::uint16_t* ids = rec + kRecordHeader;
    for (std::int64_t i = 0; i < len; ++i) {
      const std::int64_t id = narrow ? ids[i] : static_cast<std::int64_t>(read_u32(ids + 2 * i));
      if (id >= n_cols)
        throw FormatError(concat(source, ": row ", r, " holds feature ", id, ", outside [0, ", n_cols, ")"));
    }
  }
  idx->set_location_width(longest, units);
  const std::int64_t n_post = static_cast<std::int64_t>(idx->narrow_loc_ ? rd.count<std::uint32_t>("post_loc")
                                                                        : rd.count<std::uint64_t>("post_loc"));
  check_monotone(idx->block_row_ptr_, n_blocks, n_post, source, "block_row_ptr");
  if (idx->narrow_loc_) idx->post_loc32_ = rd.get<std::uint32_t>("post_loc", n_post);
  else idx->post_loc64_ = rd.get<std::uint64_t>("post_loc", n_post);
  const std::uint64_t len_mask = (std::uint64_t{1} << idx->loc_len_bits_) - 1;
  for (std::int64_t p = 0; p < n_post; ++p) {
    // Every posting must name the start of a record and that row's length.
    const std::uint64_t loc = idx->loc_at(p);
    const std::uint64_t unit = loc >> idx->loc_len_bits_;
    const std::uint32_t r = unit + kRecordHeader <= static_cast<std::uint64_t>(units) ? read_u32(fwd_rows + unit) : ~0u;
    if (r >= static_cast<std::uint64_t>(n_rows) || static_cast<std::uint64_t>(idx->record_unit(r)) != unit ||
        (loc & len_mask) != static_cast<std::uint64_t>(idx->fwd_indptr_[r + 1] - idx->fwd_indptr_[r]))
      throw FormatError(concat(source, ": post_loc[", p, "] does not point at a row's record"));
  }
  if (row_order) {
    // Version 3: re-lay the records in search order (a copy, like versions 1 and 2; values bit
    // for bit, so results do not change).
    std::vector<std::int32_t> post_rows(static_cast<std::size_t>(n_post));
    for (std::int64_t p = 0; p < n_post; ++p) post_rows[p] = static_cast<std::int32_t>(read_u32(fwd_rows + (idx->loc_at(p) >> idx->loc_len_bits_)));
    const std::int64_t* old_unit = idx->row_unit_;
    const std::int64_t* indptr = idx->fwd_indptr_;
    idx->owned_ = std::make_shared<Owned>();
    idx->pack_forward(
        [&](std::int64_t r, std::uint16_t* id_units, std::uint16_t* halves) {
          const std::uint16_t* rec = fwd_rows + old_unit[r];
          const std::int64_t len = indptr[r + 1] - indptr[r];
          std::copy_n(rec + kRecordHeader, (width - 1) * len, id_units);
          std::copy_n(rec + kRecordHeader + (width - 1) * len, len, halves);
          return read_f32(rec + 2);
        },
        post_rows.data(), n_post);
  }
  return idx;
}

// ---------------------------------------------------------------------------------------------
void brute_force_search(const CsrView& codes, const QueryBatch& queries, std::int64_t k, int threads,
                        std::int64_t* ids, float* scores) {
  LIKEABLE_CHECK(k >= 1, "k must be >= 1, got ", k);
  LIKEABLE_CHECK(queries.n_cols == codes.n_cols, "queries have ", queries.n_cols, " features, codes have ", codes.n_cols);
  parallel_for(queries.n_queries, 1, threads, [&](std::int64_t begin, std::int64_t end, int) {
    std::vector<double> q(codes.n_cols);
    std::vector<Hit> heap;
    for (std::int64_t qi = begin; qi < end; ++qi) {
      std::fill(q.begin(), q.end(), 0.0);
      if (queries.sparse) {
        const CsrView& c = *queries.sparse;
        for (std::int64_t p = c.indptr[qi]; p < c.indptr[qi + 1]; ++p) q[c.indices[p]] += c.values[p];
      } else {
        for (std::int64_t j = 0; j < codes.n_cols; ++j) q[j] = queries.dense[qi * codes.n_cols + j];
      }
      TopK top{&heap, static_cast<std::size_t>(k)};
      for (std::int64_t r = 0; r < codes.n_rows; ++r) {
        double acc = 0;
        for (std::int64_t p = codes.indptr[r]; p < codes.indptr[r + 1]; ++p) acc += q[codes.indices[p]] * codes.values[p];
        top.push(static_cast<float>(acc), r);
      }
      top.write(ids + qi * k, scores + qi * k);
    }
  });
}

CsrView SparseIndex::forward_view() const {
  if (approximate_) return CsrView{};  // compact records only
  return CsrView{fwd_indptr_, fwd_indices_, fwd_values_, n_rows_, n_cols_};
}

}  // namespace likeable
