// Search and top activations of the approximate index.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/parallel.h"
#include "index/approximate.h"
#include "index/kernels.h"
#include "index/search_scratch.h"

namespace likeable {

using index_kernels::read_f32;
using index_kernels::read_u32;

namespace {
constexpr std::int64_t kPrefetchRows = 16;
constexpr std::size_t kFirstSorted = 32;  // blocks put in order before a list's first is visited

// Every cache line of [begin, end).
template <class T>
void prefetch_lines(const T* begin, const T* end) {
  const char* p = reinterpret_cast<const char*>(reinterpret_cast<std::uintptr_t>(begin) & ~std::uintptr_t{63});
  for (; p < reinterpret_cast<const char*>(end); p += 64) __builtin_prefetch(p);
}  // rows whose records are fetched together in search
}  // namespace

std::vector<std::int64_t> ApproxIndex::block_lengths() const {
  const Array<std::int64_t>& ptr = layout_.blocks.block_row_ptr;
  std::vector<std::int64_t> out(static_cast<std::size_t>(n_blocks()));
  for (std::size_t b = 0; b < out.size(); ++b) out[b] = ptr[b + 1] - ptr[b];
  return out;
}

inline float ApproxIndex::record_dot(const std::uint16_t* rec, std::int64_t len, const float* q_dense,
                                     bool use_avx2) const {
  const std::uint16_t* ids = rec + kRecordHeader;
  const float scale = read_f32(rec + 2);
  if (n_cols() <= 65536) {
#ifdef LIKEABLE_X86_KERNELS
    if (use_avx2) return index_kernels::half_dot_avx2(ids, ids + len, len, q_dense) * scale;
#endif
    return index_kernels::half_dot(ids, ids + len, len, q_dense) * scale;
  }
  return index_kernels::half_dot_wide(ids, ids + 2 * len, len, q_dense) * scale;
}

float ApproxIndex::record_value(const std::uint16_t* rec, std::int64_t len, std::int32_t feature) const {
  const std::uint16_t* ids = rec + kRecordHeader;
  std::int64_t lo = 0, hi = len;  // first entry with id >= feature (ids ascend)
  const bool narrow = n_cols() <= 65536;
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
  return simd::half_to_float(halves[lo]) * read_f32(rec + 2);
}

inline float ApproxIndex::block_bound(std::int64_t blk, const float* q, bool use_avx2) const {
  const BlockLayout& L = layout_.blocks;
  const std::int64_t e0 = L.block_sum_ptr[blk], e1 = L.block_sum_ptr[blk + 1];
  const bool narrow = n_cols() <= 65536;
  const std::uint16_t* f16 = L.sum_features16.data();
  const std::int32_t* f32 = L.sum_features32.data();
  const std::uint8_t* hi = L.sum_hi.data();
  if (is_signed()) {
    const std::uint8_t* lo = L.sum_lo.data();
    float pos = 0, neg = 0;
    for (std::int64_t e = e0; e < e1; ++e) {
      const float w = q[narrow ? f16[e] : f32[e]];
      if (w > 0) pos += w * hi[e];
      else neg -= w * lo[e];
    }
    return pos * L.block_hi_scale[blk] + neg * L.block_lo_scale[blk];
  }
  float pos = 0;
#ifdef LIKEABLE_X86_KERNELS
  if (use_avx2 && narrow) return index_kernels::summary_dot_avx2(f16 + e0, hi + e0, e1 - e0, q) * L.block_hi_scale[blk];
#else
  (void)use_avx2;
#endif
  if (narrow) pos = index_kernels::summary_dot(f16 + e0, hi + e0, e1 - e0, q);
  else pos = index_kernels::summary_dot(f32 + e0, hi + e0, e1 - e0, q);
  return pos * L.block_hi_scale[blk];
}

void ApproxIndex::bounds_by_feature(const std::int32_t* lists, std::size_t n_lists, SearchScratch& s,
                                    const float* q) const {
  const BlockLayout& L = layout_.blocks;
  const FeatureSummaries& fs = L.by_feature;
  const bool is_signed = this->is_signed();
  const std::int64_t width = FeatureSummaries::entry_width(is_signed);
  const std::uint8_t* entries = fs.entries.data();
  // The query features that can add to a bound (unsigned index: the positive ones).
  s.q_weighed.clear();
  for (const std::int32_t f : s.q_features)
    if (is_signed || q[f] > 0) s.q_weighed.push_back(f);
  const std::size_t n_f = s.q_weighed.size();
  // One group lookup per (visited list, query feature), in the order they are summed.
  s.q_runs.clear();
  for (std::size_t l = 0; l < n_lists; ++l) {
    const std::int64_t n_chunks = FeatureSummaries::chunks_of(L.list_block_ptr[lists[l] + 1] - L.list_block_ptr[lists[l]]);
    for (const std::int32_t f : s.q_weighed) s.q_runs.push_back({lists[l], f * n_chunks, 0});
  }
  // Finding a feature's entries takes three dependent loads (a sample of the bit vector, its
  // words, then the entries), each likely a cache miss. They go as a pipeline kLookahead runs
  // deep per stage: while run i is summed, run i + kLookahead's entries, i + 2 * kLookahead's
  // words and i + 3 * kLookahead's sample are fetched, about as many misses as the core tracks.
  constexpr std::size_t kLookahead = 8;
  SearchScratch::Run* runs = s.q_runs.data();
  const std::size_t n_runs = s.q_runs.size();
  auto fetch_sample = [&](std::size_t i) {
    if (i < n_runs && runs[i].group > 0) __builtin_prefetch(fs.sample_for(runs[i].list, runs[i].group));
  };
  auto fetch_words = [&](std::size_t i) {
    if (i < n_runs && runs[i].group > 0)
      __builtin_prefetch(fs.words(runs[i].list) + (*fs.sample_for(runs[i].list, runs[i].group) >> 6));
  };
  auto find_entries = [&](std::size_t i) {
    if (i >= n_runs) return;
    runs[i].start = fs.group_start(runs[i].list, runs[i].group);
    // A feature's entries in a list of 400 blocks take ~40 bytes, so often two cache lines.
    const std::uint8_t* first = entries + (fs.list_entry_ptr[runs[i].list] + runs[i].start - runs[i].group) * width;
    __builtin_prefetch(first);
    __builtin_prefetch(first + 64);
  };
  for (std::size_t i = 0; i < 3 * kLookahead; ++i) fetch_sample(i);
  for (std::size_t i = 0; i < 2 * kLookahead; ++i) fetch_words(i);
  for (std::size_t i = 0; i < kLookahead; ++i) find_entries(i);
  // Sums per list, in ascending feature order (the order the block-by-block loop sums a block's
  // entries in), into every visited list's bounds (one per block, in list order).
  s.list_bounds.clear();
  s.list_bound_ptr.assign(1, 0);
  std::size_t i = 0;  // the run being summed
  for (std::size_t l = 0; l < n_lists; ++l) {
    const std::int64_t j = lists[l], b0 = L.list_block_ptr[j], n_blocks = L.list_block_ptr[j + 1] - b0;
    const std::int64_t n_chunks = FeatureSummaries::chunks_of(n_blocks), e0 = fs.list_entry_ptr[j];
    if (s.bound_pos.size() < static_cast<std::size_t>(n_blocks)) {
      s.bound_pos.resize(n_blocks);
      s.bound_neg.resize(n_blocks);
    }
    float* pos = s.bound_pos.data();
    float* neg = s.bound_neg.data();
    std::fill(pos, pos + n_blocks, 0.0f);
    if (is_signed) std::fill(neg, neg + n_blocks, 0.0f);
    const std::uint64_t* words = fs.words(j);
    if (l + 1 < n_lists) {  // the next list's block scales (read in the last loop below), while this one is summed
      const std::int64_t next = lists[l + 1];
      prefetch_lines(L.block_hi_scale.data() + L.list_block_ptr[next], L.block_hi_scale.data() + L.list_block_ptr[next + 1]);
      if (is_signed)
        prefetch_lines(L.block_lo_scale.data() + L.list_block_ptr[next], L.block_lo_scale.data() + L.list_block_ptr[next + 1]);
    }
    for (std::size_t f = 0; f < n_f; ++f, ++i) {
      fetch_sample(i + 3 * kLookahead);
      fetch_words(i + 2 * kLookahead);
      find_entries(i + kLookahead);
      const float w = q[s.q_weighed[f]];
      // The feature's groups, one per chunk, follow one another: each ends at the next 0.
      std::int64_t at = runs[i].start;
      for (std::int64_t k = 0, g = runs[i].group; k < n_chunks; ++k, ++g) {
        const std::int64_t end = FeatureSummaries::next_zero(words, at);
        const std::uint8_t* e = entries + (e0 + at - g) * width;
        const std::uint8_t* e_end = entries + (e0 + end - g) * width;
        float* pos_k = pos + k * kChunkBlocks;
        float* neg_k = neg + k * kChunkBlocks;
        if (w > 0) {
          for (; e < e_end; e += width) pos_k[e[0]] += w * e[1];
        } else {
          for (; e < e_end; e += width) neg_k[e[0]] -= w * e[2];
        }
        at = end + 1;
      }
    }
    const float* hi_scale = L.block_hi_scale.data() + b0;
    const float* lo_scale = is_signed ? L.block_lo_scale.data() + b0 : nullptr;
    for (std::int64_t b = 0; b < n_blocks; ++b) {
      float bound = pos[b] * hi_scale[b];
      if (is_signed) bound += neg[b] * lo_scale[b];
      s.list_bounds.push_back(bound);
    }
    s.list_bound_ptr.push_back(static_cast<std::int64_t>(s.list_bounds.size()));
  }
}

void ApproxIndex::search_one(const Query& query, SearchScratch& s, const SearchParams& params, std::int64_t* ids,
                             float* scores) const {
  const std::int32_t* q_idx = query.idx;
  const float* q_val = query.val;
  const std::int64_t q_nnz = query.nnz;
  float* q = s.q_dense.data();
  for (std::int64_t i = 0; i < q_nnz; ++i) q[q_idx[i]] += q_val[i];
  // The query_cut components with the largest |q_j| pick the posting lists to visit.
  s.cut.clear();
  for (std::int64_t i = 0; i < q_nnz; ++i)
    if (q[q_idx[i]] != 0.0f && (i == 0 || q_idx[i] != q_idx[i - 1])) s.cut.push_back(q_idx[i]);
  std::sort(s.cut.begin(), s.cut.end());
  s.cut.erase(std::unique(s.cut.begin(), s.cut.end()), s.cut.end());
  const bool by_feature = layout_.blocks.by_feature.present();
  if (by_feature) s.q_features.assign(s.cut.begin(), s.cut.end());
  auto by_weight = [q](std::int32_t a, std::int32_t b) {
    const float wa = std::fabs(q[a]), wb = std::fabs(q[b]);
    return wa > wb || (wa == wb && a < b);
  };
  const std::size_t n_cut = params.query_cut > 0 ? std::min<std::size_t>(params.query_cut, s.cut.size()) : s.cut.size();
  std::partial_sort(s.cut.begin(), s.cut.begin() + n_cut, s.cut.end(), by_weight);

  TopHits top = s.hits(params.k);
  const float hf = static_cast<float>(params.heap_factor);
  const bool use_avx2 = simd::use(index_kernels::kAvx2Kernels);
  const BlockLayout& blocks = layout_.blocks;
  const RecordLayout& records = layout_.records;
  const std::uint16_t* units = records.units.data();
  const int len_bits = records.loc.len_bits;
  const std::uint64_t len_mask = records.loc.len_mask();
  const std::int64_t width = record_width(n_cols());
  if (by_feature) bounds_by_feature(s.cut.data(), n_cut, s, q);  // every visited list's, at once
  for (std::size_t c = 0; c < n_cut; ++c) {
    const std::int32_t j = s.cut[c];
    const std::int64_t b0 = blocks.list_block_ptr[j], b1 = blocks.list_block_ptr[j + 1];
    // Blocks that can still beat the k-th score, in descending bound (ties: lower block). The
    // k-th score only rises, so a block below the bar now would stop the loop below anyway.
    float bar = -std::numeric_limits<float>::infinity();
    if (top.full()) bar = top.worst_key() >= 0 ? top.worst_key() * hf : top.worst_key() / hf;
    s.block_order.clear();
    if (by_feature) {
      const float* bound = s.list_bounds.data() + s.list_bound_ptr[c];
      for (std::int64_t b = 0; b < b1 - b0; ++b)
        if (bound[b] >= bar) s.block_order.emplace_back(bound[b], b0 + b);
    } else {
      for (std::int64_t blk = b0; blk < b1; ++blk) {
        const float bound = block_bound(blk, q, use_avx2);
        if (bound >= bar) s.block_order.emplace_back(bound, blk);
      }
    }
    // Sorted only as far as the loop below gets: it usually stops after a tenth of the blocks,
    // so the order is extended in doubling steps (partial sorts) instead of sorted whole.
    auto higher = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
    std::size_t sorted = std::min<std::size_t>(kFirstSorted, s.block_order.size());
    std::partial_sort(s.block_order.begin(), s.block_order.begin() + sorted, s.block_order.end(), higher);
    // Each block costs three dependent misses (its posting range, its postings, their records):
    // the next blocks' first two are fetched ahead, so that they overlap this block's records.
    const std::size_t n_order = s.block_order.size();
    for (std::size_t o = 0; o < std::min<std::size_t>(2, n_order); ++o)
      __builtin_prefetch(blocks.block_row_ptr.data() + s.block_order[o].second);
    for (std::size_t o = 0; o < n_order; ++o) {
      if (o + 2 >= sorted && sorted < n_order) {  // two ahead: the prefetches below read them
        const std::size_t more = std::min(n_order, 2 * sorted);
        std::partial_sort(s.block_order.begin() + sorted, s.block_order.begin() + more, s.block_order.end(), higher);
        sorted = more;
      }
      const std::int64_t blk = s.block_order[o].second;
      const float bound = s.block_order[o].first;
      if (top.full()) {
        const float kth = top.worst_key();
        const float threshold = kth >= 0 ? kth * hf : kth / hf;
        if (bound < threshold) break;  // blocks come in descending bound: the rest fail too
      }
      if (o + 2 < n_order) __builtin_prefetch(blocks.block_row_ptr.data() + s.block_order[o + 2].second);
      if (o + 1 < n_order) records.prefetch_postings(blocks.block_row_ptr[s.block_order[o + 1].second]);
      // The block's rows go in chunks of kPrefetchRows, each in two passes: prefetch every cache
      // line of every record in the chunk, so their misses overlap, then re-score them. A
      // posting is its row's record location, so no offsets are loaded first; the row id (for
      // the visited check and the result) sits in the record's first line. Chunks of 8 beat
      // whole blocks (the large blocks that search visits hold ~30 rows, more lines than the
      // core keeps in flight) and a rolling prefetch distance, both measured on the AMD dev box;
      // on the Intel one (2 MiB L2) 16 is 2-5% faster than 8, 4 is 10% slower, and a rolling
      // distance of 8 or 16 is 15-20% slower (SAE corpus, alternated builds).
      const std::int64_t p_end = blocks.block_row_ptr[blk + 1];
      for (std::int64_t chunk = blocks.block_row_ptr[blk]; chunk < p_end; chunk += kPrefetchRows) {
        const std::int64_t chunk_end = std::min(p_end, chunk + kPrefetchRows);
        for (std::int64_t p = chunk; p < chunk_end; ++p) {
          const std::uint64_t loc = records.location(p);
          const std::int64_t len = static_cast<std::int64_t>(loc & len_mask);
          const std::uint16_t* rec = units + (loc >> len_bits);
          prefetch_lines(rec, rec + kRecordHeader + width * len);
        }
        for (std::int64_t p = chunk; p < chunk_end; ++p) {
          const std::uint64_t loc = records.location(p);
          const std::uint16_t* rec = units + (loc >> len_bits);
          const std::int32_t r = static_cast<std::int32_t>(read_u32(rec));
          std::uint64_t& word = s.visited[r >> 6];
          const std::uint64_t bit = std::uint64_t{1} << (r & 63);
          if (word & bit) continue;
          word |= bit;
          s.visited_rows.push_back(r);
          top.push(record_dot(rec, static_cast<std::int64_t>(loc & len_mask), q, use_avx2), r);
        }
      }
    }
  }
  top.write_best_first(ids, scores);
  for (std::int32_t r : s.visited_rows) s.visited[r >> 6] = 0;
  s.visited_rows.clear();
  for (std::int64_t i = 0; i < q_nnz; ++i) q[q_idx[i]] = 0.0f;
}

void ApproxIndex::for_each_row_chunk(const RowChunkFn& fn, int threads) const {
  constexpr std::int64_t kChunkRows = 65536;
  const RecordLayout& records = layout_.records;
  const bool narrow = n_cols() <= 65536;
  std::vector<std::int64_t> indptr;
  std::vector<std::int32_t> indices;
  std::vector<float> values;
  for (std::int64_t first = 0; first < n_rows(); first += kChunkRows) {
    const std::int64_t count = std::min(kChunkRows, n_rows() - first), base = common_.fwd_indptr[first];
    indptr.resize(static_cast<std::size_t>(count + 1));
    for (std::int64_t r = 0; r <= count; ++r) indptr[r] = common_.fwd_indptr[first + r] - base;
    indices.resize(static_cast<std::size_t>(indptr[count]));
    values.resize(indices.size());
    parallel_for(count, 1024, threads, [&](std::int64_t begin, std::int64_t end, int) {
      for (std::int64_t r = begin; r < end; ++r) {
        const std::uint16_t* rec = records.units.data() + records.row_unit[first + r];
        const std::int64_t len = indptr[r + 1] - indptr[r];
        const std::uint16_t* ids = rec + kRecordHeader;
        const std::uint16_t* halves = ids + (narrow ? len : 2 * len);
        const float scale = read_f32(rec + 2);  // a power of two: x = half * scale exactly
        for (std::int64_t p = 0; p < len; ++p) {
          indices[indptr[r] + p] = narrow ? ids[p] : static_cast<std::int32_t>(read_u32(ids + 2 * p));
          values[indptr[r] + p] = simd::half_to_float(halves[p]) * scale;
        }
      }
    });
    fn(CsrView{indptr.data(), indices.data(), values.data(), count, n_cols()}, first);
  }
}

void ApproxIndex::collect_feature(std::int32_t feature, std::int64_t n, int sign,
                                  std::vector<std::pair<float, std::int64_t>>& hits) const {
  const BlockLayout& blocks = layout_.blocks;
  const RecordLayout& records = layout_.records;
  const float s = static_cast<float>(sign);
  auto collect = [&](std::int64_t r, float v) {
    if (v * s > 0) hits.emplace_back(v * s, r);
  };
  const std::int64_t p0 = blocks.block_row_ptr[blocks.list_block_ptr[feature]];
  const std::int64_t p1 = blocks.block_row_ptr[blocks.list_block_ptr[feature + 1]];
  const std::uint64_t len_mask = records.loc.len_mask();
  for (std::int64_t p = p0; p < p1; ++p) {
    const std::uint64_t loc = records.location(p);
    const std::uint16_t* rec = records.units.data() + (loc >> records.loc.len_bits);
    collect(read_u32(rec), record_value(rec, static_cast<std::int64_t>(loc & len_mask), feature));
  }
  // The pruned list kept the largest |x_j| (ties: lower row), so its n best of one sign are the
  // column's n best unless it was pruned and holds fewer than n of that sign.
  const bool complete = (p1 - p0) == common_.col_nnz[feature] || static_cast<std::int64_t>(hits.size()) >= n;
  if (!complete) {
    hits.clear();
    for (std::int64_t r = 0; r < n_rows(); ++r)
      collect(r, record_value(records.units.data() + records.row_unit[r], common_.row_length(r), feature));
  }
}

}  // namespace likeable
