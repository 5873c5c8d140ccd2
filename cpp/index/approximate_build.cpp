// Building an approximate index: prune every posting list with one global threshold, cluster
// each list's rows into blocks, summarise each block, then lay out the row records.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <utility>

#include "index/approximate.h"
#include "core/simd.h"
#include "index/forward.h"

namespace likeable {
namespace {

// A cluster of at most this many rows is dissolved (Seismic's min_cluster_size, same default).
constexpr std::int64_t kSmallCluster = 2;

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

inline std::uint8_t quantise_up(float x, float scale) {
  if (scale <= 0 || x <= 0) return 0;
  const float q = std::ceil(x / scale);
  return static_cast<std::uint8_t>(std::min(q, 255.0f));
}

using Component = std::pair<std::int32_t, float>;  // (feature, value)

// The components of each row used to cluster it: its doc_cut largest |x_j| (computed once,
// not once per posting list the row appears in).
struct RowTops {
  std::int64_t doc_cut = 0;
  std::vector<std::int32_t> feature;  // n_rows x doc_cut, -1 past a short row's end
  std::vector<float> value;

  RowTops(const ForwardRows& fwd, std::int64_t n_rows, std::int64_t cut, int threads)
      : doc_cut(cut), feature(checked_mul(n_rows, cut), -1), value(feature.size(), 0.0f) {
    parallel_for(n_rows, 4096, threads, [&](std::int64_t begin, std::int64_t end, int) {
      std::vector<Component> row;
      for (std::int64_t r = begin; r < end; ++r) {
        row.clear();
        for (std::int64_t i = fwd.indptr[r]; i < fwd.indptr[r + 1]; ++i) row.emplace_back(fwd.indices[i], fwd.values[i]);
        if (static_cast<std::int64_t>(row.size()) > doc_cut) {
          std::nth_element(row.begin(), row.begin() + doc_cut, row.end(),
                           [](const auto& a, const auto& b) { return std::fabs(a.second) > std::fabs(b.second); });
          row.resize(doc_cut);
        }
        for (std::size_t i = 0; i < row.size(); ++i) {
          feature[r * doc_cut + i] = row[i].first;
          value[r * doc_cut + i] = row[i].second;
        }
      }
    });
  }
  void of(std::int32_t r, std::vector<Component>& out) const {
    out.clear();
    for (std::int64_t i = r * doc_cut; i < (r + 1) * doc_cut && feature[i] >= 0; ++i)
      out.emplace_back(feature[i], value[i]);
  }
};

// Seismic's global pruning: one threshold on |x| for every list, chosen so that lists hold
// n_postings entries on average.
float global_threshold(const ForwardRows& fwd, std::int64_t n_postings, std::int64_t n_cols) {
  const std::int64_t nnz_total = static_cast<std::int64_t>(fwd.values.size());
  const std::int64_t budget = static_cast<std::int64_t>(
      std::min<double>(static_cast<double>(n_postings) * static_cast<double>(n_cols), 9e18));
  if (budget >= nnz_total) return 0.0f;
  std::vector<float> mags(fwd.values.begin(), fwd.values.end());
  for (float& m : mags) m = std::fabs(m);
  std::nth_element(mags.begin(), mags.begin() + (nnz_total - budget), mags.end());
  return mags[nnz_total - budget];
}

struct ListBlocks {  // one feature's blocks, before concatenation
  std::vector<std::int64_t> block_len;
  std::vector<std::int32_t> rows;
  std::vector<std::int64_t> sum_len;
  std::vector<std::int32_t> sum_features;
  std::vector<std::uint8_t> sum_hi, sum_lo;
  std::vector<float> hi_scale, lo_scale;
};

// Turns posting lists into blocks, one list at a time, with scratch sized by n_cols (one
// builder per thread).
class ListBuilder {
 public:
  ListBuilder(const ForwardRows& fwd, const Columns& cols, const RowTops& tops, const IndexParams& params,
              bool is_signed, std::int64_t n_cols, float threshold)
      : fwd_(fwd), cols_(cols), tops_(tops), params_(params), signed_(is_signed), threshold_(threshold),
        // no list longer than 1.5 n_postings (Seismic's max_fraction default)
        list_cap_(std::max<std::int64_t>(1, (params.n_postings * 3 + 1) / 2)),
        centroid_head_(n_cols, -1), hi_(n_cols, 0.0f), lo_(n_cols, 0.0f) {}

  void build(std::int64_t j, ListBlocks& out) {
    col_begin_ = cols_.ptr[j];
    if (cols_.ptr[j + 1] == col_begin_) return;
    const std::int64_t kept = prune(cols_.ptr[j + 1] - col_begin_);
    if (kept == 0) return;
    const std::int64_t n_centroids =
        std::min<std::int64_t>(kept, std::max<std::int64_t>(1, static_cast<std::int64_t>(
                                                                   std::ceil(params_.block_fraction * kept))));
    cluster_.assign(kept, 0);
    if (n_centroids > 1) cluster(j, kept, n_centroids);
    group(kept, n_centroids, out);
    for (std::int64_t c = 0; c <= n_centroids; ++c) summarise(cluster_count_[c], cluster_count_[c + 1], out);
  }

 private:
  std::int32_t row_of(std::int64_t i) const { return cols_.rows[col_begin_ + order_[i]]; }

  // Keeps the list's entries with |x_j| >= the global threshold, at most list_cap of them
  // (largest |x_j| first, ties: lower row), then rows ascending, in order_; returns how many.
  // The kept entries are always a prefix of the column in that order, which top_activations
  // relies on.
  std::int64_t prune(std::int64_t len) {
    const float* values = cols_.values.data() + col_begin_;
    order_.clear();
    for (std::int64_t i = 0; i < len; ++i)
      if (std::fabs(values[i]) >= threshold_) order_.push_back(static_cast<std::int32_t>(i));
    std::int64_t kept = static_cast<std::int64_t>(order_.size());
    if (kept > list_cap_) {
      kept = list_cap_;
      std::nth_element(order_.begin(), order_.begin() + kept, order_.end(), [&](std::int32_t x, std::int32_t y) {
        const float ax = std::fabs(values[x]), ay = std::fabs(values[y]);
        return ax > ay || (ax == ay && x < y);
      });
      order_.resize(kept);
      std::sort(order_.begin(), order_.end());
    }
    return kept;
  }

  // n_centroids rows drawn at random; each row joins the centroid with the largest inner
  // product over both vectors' components (Seismic's recipe) -> cluster_ (n_centroids: none).
  void cluster(std::int64_t j, std::int64_t kept, std::int64_t n_centroids) {
    index_centroids(pick_centroids(j, kept, n_centroids), n_centroids);
    centroid_score_.assign(n_centroids, 0.0f);
    dissolved_.assign(n_centroids, 0);
    for (std::int64_t i = 0; i < kept; ++i) assign(i, n_centroids);
    dissolve_small_clusters(kept, n_centroids);
    for (std::int32_t f : touched_features_) centroid_head_[f] = -1;
  }

  // The first n_centroids of a partial Fisher-Yates shuffle of [0, kept), seeded per list.
  const std::vector<std::int32_t>& pick_centroids(std::int64_t j, std::int64_t kept, std::int64_t n_centroids) {
    std::mt19937_64 gen(params_.seed * 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(j));
    pick_.resize(kept);
    std::iota(pick_.begin(), pick_.end(), 0);
    for (std::int64_t c = 0; c < n_centroids; ++c) {
      std::uniform_int_distribution<std::int64_t> dist(c, kept - 1);
      std::swap(pick_[c], pick_[dist(gen)]);
    }
    return pick_;
  }

  // Links every component of every centroid under its feature (centroid_head_ -> link_*).
  void index_centroids(const std::vector<std::int32_t>& pick, std::int64_t n_centroids) {
    link_next_.clear();
    link_centroid_.clear();
    link_value_.clear();
    touched_features_.clear();
    for (std::int64_t c = 0; c < n_centroids; ++c) {
      // Centroids enter with every component (Seismic's recipe), rows probe with their
      // doc_cut largest. With both sides cut, many rows met no centroid and went to a
      // leftover block whose loose summary cost recall at equal search settings (HH codes:
      // 16,125 blocks, most lists with a leftover one, against 14,082 now).
      const std::int32_t cr = row_of(pick[c]);
      for (std::int64_t p = fwd_.indptr[cr]; p < fwd_.indptr[cr + 1]; ++p) {
        const std::int32_t f = fwd_.indices[p];
        if (centroid_head_[f] == -1) touched_features_.push_back(f);
        link_next_.push_back(centroid_head_[f]);
        link_centroid_.push_back(static_cast<std::int32_t>(c));
        link_value_.push_back(fwd_.values[p]);
        centroid_head_[f] = static_cast<std::int32_t>(link_next_.size() - 1);
      }
    }
  }

  // Row i joins the best-scoring centroid not dissolved; rows that meet none of them go to a
  // leftover cluster (index n_centroids) rather than spoil a real one.
  void assign(std::int64_t i, std::int64_t n_centroids) {
    const std::int32_t row = row_of(i);
    touched_centroids_.clear();
    auto probe = [&](std::int32_t f, float v) {
      for (std::int32_t l = centroid_head_[f]; l != -1; l = link_next_[l]) {
        const std::int32_t c = link_centroid_[l];
        if (dissolved_[c]) continue;
        if (centroid_score_[c] == 0.0f) touched_centroids_.push_back(c);
        centroid_score_[c] += v * link_value_[l];
        if (centroid_score_[c] == 0.0f) centroid_score_[c] = 1e-30f;  // keep it marked touched
      }
    };
    tops_.of(row, components_);
    for (const auto& [f, v] : components_) probe(f, v);
    // A row whose largest components meet no centroid tries all of its components.
    if (touched_centroids_.empty())
      for (std::int64_t p = fwd_.indptr[row]; p < fwd_.indptr[row + 1]; ++p) probe(fwd_.indices[p], fwd_.values[p]);
    std::int32_t best = static_cast<std::int32_t>(n_centroids);
    float best_score = -std::numeric_limits<float>::infinity();
    for (std::int32_t c : touched_centroids_) {
      const float sc = centroid_score_[c];
      if (sc > best_score || (sc == best_score && c < best)) {
        best_score = sc;
        best = c;
      }
      centroid_score_[c] = 0.0f;
    }
    cluster_[i] = best;
  }

  // Clusters of at most kSmallCluster rows are dissolved and their rows join the best of the
  // others. A block of one or two rows has a summary that, pruned to summary_energy of its
  // mass, underestimates its rows the most: on a 200k-row synthetic corpus at blocks 0.2,
  // query_cut 8, recall 0.945 -> 0.954.
  void dissolve_small_clusters(std::int64_t kept, std::int64_t n_centroids) {
    cluster_count_.assign(n_centroids + 1, 0);
    for (std::int64_t i = 0; i < kept; ++i) ++cluster_count_[cluster_[i]];
    bool any_dissolved = false, all_dissolved = true;
    for (std::int64_t c = 0; c < n_centroids; ++c) {
      if (cluster_count_[c] <= kSmallCluster) dissolved_[c] = any_dissolved = true;
      else all_dissolved = false;
    }
    if (any_dissolved && !all_dissolved)
      for (std::int64_t i = 0; i < kept; ++i)
        if (cluster_[i] < n_centroids && dissolved_[cluster_[i]]) assign(i, n_centroids);
  }

  // Rows grouped by cluster into out.rows (rows ascending inside a block); cluster c's rows are
  // [cluster_count_[c], cluster_count_[c + 1]) (empty clusters vanish later).
  void group(std::int64_t kept, std::int64_t n_centroids, ListBlocks& out) {
    cluster_count_.assign(n_centroids + 2, 0);
    for (std::int64_t i = 0; i < kept; ++i) ++cluster_count_[cluster_[i] + 1];
    for (std::int64_t c = 0; c <= n_centroids; ++c) cluster_count_[c + 1] += cluster_count_[c];
    out.rows.resize(kept);
    std::vector<std::int64_t> fill(cluster_count_.begin(), cluster_count_.end() - 1);
    for (std::int64_t i = 0; i < kept; ++i) out.rows[fill[cluster_[i]]++] = row_of(i);
  }

  // The block of out.rows[rb, re): per feature max(0, max x) and min(0, min x) over its rows,
  // pruned to summary_energy of their L1 mass, quantised to u8 rounding away from zero.
  void summarise(std::int64_t rb, std::int64_t re, ListBlocks& out) {
    if (re == rb) return;
    out.block_len.push_back(re - rb);
    touched_features_.clear();
    for (std::int64_t i = rb; i < re; ++i) {
      const std::int32_t r = out.rows[i];
      for (std::int64_t p = fwd_.indptr[r]; p < fwd_.indptr[r + 1]; ++p) {
        const std::int32_t f = fwd_.indices[p];
        const float v = fwd_.values[p];
        if (hi_[f] == 0.0f && lo_[f] == 0.0f) touched_features_.push_back(f);
        if (v > hi_[f]) hi_[f] = v;
        if (v < lo_[f]) lo_[f] = v;
      }
    }
    double total = 0;
    for (std::int32_t f : touched_features_) total += hi_[f] - lo_[f];
    auto mass = [&](std::int32_t f) { return hi_[f] - lo_[f]; };
    std::size_t keep = select_mass_prefix(touched_features_.data(), touched_features_.size(),
                                          params_.summary_energy * total, mass);
    if (keep == 0 && !touched_features_.empty()) keep = 1;
    std::sort(touched_features_.begin(), touched_features_.begin() + keep);  // gathers in order
    float hi_max = 0, lo_max = 0;
    for (std::size_t i = 0; i < keep; ++i) {
      hi_max = std::max(hi_max, hi_[touched_features_[i]]);
      lo_max = std::max(lo_max, -lo_[touched_features_[i]]);
    }
    const float hi_scale = hi_max / 255.0f, lo_scale = lo_max / 255.0f;
    out.hi_scale.push_back(hi_scale);
    out.lo_scale.push_back(lo_scale);
    out.sum_len.push_back(static_cast<std::int64_t>(keep));
    for (std::size_t i = 0; i < keep; ++i) {
      const std::int32_t f = touched_features_[i];
      out.sum_features.push_back(f);
      out.sum_hi.push_back(quantise_up(hi_[f], hi_scale));
      if (signed_) out.sum_lo.push_back(quantise_up(-lo_[f], lo_scale));
    }
    for (std::int32_t f : touched_features_) hi_[f] = lo_[f] = 0.0f;
  }

  const ForwardRows& fwd_;
  const Columns& cols_;
  const RowTops& tops_;
  const IndexParams& params_;
  const bool signed_;
  const float threshold_;
  const std::int64_t list_cap_;
  std::int64_t col_begin_ = 0;  // the current list's column starts here
  std::vector<std::int32_t> order_;    // kept entries (positions in the column)
  std::vector<std::int32_t> cluster_;  // per kept entry
  std::vector<std::int32_t> pick_;
  // Centroids' components, linked per feature: centroid_head_[f] -> link_next_ chain.
  std::vector<std::int32_t> centroid_head_, link_next_, link_centroid_, touched_centroids_;
  std::vector<float> link_value_, centroid_score_;
  std::vector<char> dissolved_;
  std::vector<std::int64_t> cluster_count_;
  std::vector<Component> components_;
  std::vector<float> hi_, lo_;  // per feature, zero between blocks
  std::vector<std::int32_t> touched_features_;
};

// Every list's blocks in one layout; post_rows gets each posting's row.
BlockLayout concatenate(std::vector<ListBlocks>& lists, std::int64_t n_cols, bool is_signed, int threads,
                        std::vector<std::int32_t>& post_rows) {
  std::vector<std::int64_t> list_block_ptr(n_cols + 1, 0), row_start(n_cols + 1, 0), sum_start(n_cols + 1, 0);
  for (std::int64_t j = 0; j < n_cols; ++j) {
    list_block_ptr[j + 1] = list_block_ptr[j] + static_cast<std::int64_t>(lists[j].block_len.size());
    row_start[j + 1] = row_start[j] + static_cast<std::int64_t>(lists[j].rows.size());
    sum_start[j + 1] = sum_start[j] + static_cast<std::int64_t>(lists[j].sum_features.size());
  }
  const std::int64_t n_blocks = list_block_ptr[n_cols];
  std::vector<std::int64_t> block_row_ptr(n_blocks + 1, 0), block_sum_ptr(n_blocks + 1, 0);
  std::vector<float> hi_scale(n_blocks), lo_scale(is_signed ? n_blocks : 0);
  post_rows.resize(row_start[n_cols]);
  const bool narrow = n_cols <= 65536;
  std::vector<std::uint16_t> features16(narrow ? sum_start[n_cols] : 0);
  std::vector<std::int32_t> features32(narrow ? 0 : sum_start[n_cols]);
  std::vector<std::uint8_t> sum_hi(sum_start[n_cols]), sum_lo(is_signed ? sum_start[n_cols] : 0);
  parallel_for(n_cols, 256, threads, [&](std::int64_t begin, std::int64_t end, int) {
    for (std::int64_t j = begin; j < end; ++j) {
      ListBlocks& l = lists[j];
      std::int64_t rpos = row_start[j], spos = sum_start[j];
      for (std::size_t i = 0; i < l.block_len.size(); ++i) {
        const std::int64_t blk = list_block_ptr[j] + static_cast<std::int64_t>(i);
        rpos += l.block_len[i];
        spos += l.sum_len[i];
        block_row_ptr[blk + 1] = rpos;
        block_sum_ptr[blk + 1] = spos;
        hi_scale[blk] = l.hi_scale[i];
        if (is_signed) lo_scale[blk] = l.lo_scale[i];
      }
      std::copy(l.rows.begin(), l.rows.end(), post_rows.begin() + row_start[j]);
      if (narrow)
        for (std::size_t i = 0; i < l.sum_features.size(); ++i)
          features16[sum_start[j] + i] = static_cast<std::uint16_t>(l.sum_features[i]);
      else
        std::copy(l.sum_features.begin(), l.sum_features.end(), features32.begin() + sum_start[j]);
      std::copy(l.sum_hi.begin(), l.sum_hi.end(), sum_hi.begin() + sum_start[j]);
      if (is_signed) std::copy(l.sum_lo.begin(), l.sum_lo.end(), sum_lo.begin() + sum_start[j]);
      l = ListBlocks();  // release as we go
    }
  });
  BlockLayout out;
  out.n_blocks = n_blocks;
  out.list_block_ptr = Array<std::int64_t>(std::move(list_block_ptr));
  out.block_row_ptr = Array<std::int64_t>(std::move(block_row_ptr));
  out.block_sum_ptr = Array<std::int64_t>(std::move(block_sum_ptr));
  out.sum_features16 = Array<std::uint16_t>(std::move(features16));
  out.sum_features32 = Array<std::int32_t>(std::move(features32));
  out.sum_hi = Array<std::uint8_t>(std::move(sum_hi));
  out.sum_lo = Array<std::uint8_t>(std::move(sum_lo));
  out.block_hi_scale = Array<float>(std::move(hi_scale));
  out.block_lo_scale = Array<float>(std::move(lo_scale));
  return out;
}

// Pruned, clustered and summarised posting lists of every feature.
BlockLayout build_blocks(const ForwardRows& fwd, const Columns& cols, const IndexCommon& common,
                         std::vector<std::int32_t>& post_rows) {
  const IndexParams& params = common.params;
  const std::int64_t n_cols = common.n_cols;
  const int threads = resolve_threads(params.threads);
  const RowTops tops(fwd, common.n_rows, params.doc_cut, threads);
  const float threshold = global_threshold(fwd, params.n_postings, n_cols);
  std::vector<ListBlocks> lists(n_cols);
  std::vector<std::unique_ptr<ListBuilder>> builders(threads);  // per thread, made on first use
  parallel_for(n_cols, 16, threads, [&](std::int64_t begin, std::int64_t end, int tid) {
    if (!builders[tid])
      builders[tid] = std::make_unique<ListBuilder>(fwd, cols, tops, params, common.is_signed, n_cols, threshold);
    for (std::int64_t j = begin; j < end; ++j) builders[tid]->build(j, lists[j]);
  });
  builders.clear();
  return concatenate(lists, n_cols, common.is_signed, threads, post_rows);
}

}  // namespace

float halves_of_row(const float* values, std::int64_t n, std::uint16_t* out) {
  float largest = 0;
  for (std::int64_t i = 0; i < n; ++i) largest = std::max(largest, std::fabs(values[i]));
  int exponent = 0;
  if (largest > 0) std::frexp(largest, &exponent);  // largest = m * 2^exponent, m in [0.5, 1)
  const float scale = largest > 0 ? std::ldexp(1.0f, std::min(exponent, 127)) : 1.0f;
  for (std::int64_t i = 0; i < n; ++i) out[i] = simd::float_to_half(values[i] / scale);
  return scale;
}

RecordLayout pack_records_from_floats(const IndexCommon& common, const BlockLayout& blocks,
                                      const std::int32_t* post_rows, std::int64_t n_post,
                                      const std::int32_t* indices, const float* values) {
  const bool narrow = common.n_cols <= 65536;
  const std::int64_t* indptr = common.fwd_indptr.data();
  return pack_records(common, blocks, post_rows, n_post,
                      [&](std::int64_t r, std::uint16_t* id_units, std::uint16_t* halves) {
                        const std::int64_t b = indptr[r], len = indptr[r + 1] - b;
                        for (std::int64_t i = 0; i < len; ++i) {
                          if (narrow) id_units[i] = static_cast<std::uint16_t>(indices[b + i]);
                          else std::memcpy(id_units + 2 * i, indices + b + i, 4);
                        }
                        return halves_of_row(values + b, len, halves);
                      });
}

std::vector<std::int32_t> record_order(const IndexCommon& common, const BlockLayout& blocks,
                                       const std::int32_t* post_rows) {
  // Re-scoring is bound by memory latency (~1,000 cycles per row record on the 2-core dev box
  // when its lines are fetched alone), so rows that search reads together should sit together:
  // then a visited block is a few sequential runs, not one miss per row. A row lies in ~15
  // lists but is stored once, so its place is the first block it belongs to in the order of
  // how often search visits a block: large blocks (their summaries bound high and are visited
  // first) of popular features (their lists are cut from more queries), i.e. by block length
  // times the feature's full column length. 200k-row synthetic corpus, query_cut 8: 30% less
  // time per query than row order, the same results.
  const std::int64_t n_blocks = blocks.n_blocks, n_rows = common.n_rows;
  std::vector<std::int64_t> order_of_blocks(n_blocks);
  std::vector<double> weight(n_blocks);
  for (std::int64_t j = 0; j < common.n_cols; ++j)
    for (std::int64_t blk = blocks.list_block_ptr[j]; blk < blocks.list_block_ptr[j + 1]; ++blk)
      weight[blk] = static_cast<double>(blocks.block_row_ptr[blk + 1] - blocks.block_row_ptr[blk]) *
                    static_cast<double>(common.col_nnz[j]);
  std::iota(order_of_blocks.begin(), order_of_blocks.end(), 0);
  std::stable_sort(order_of_blocks.begin(), order_of_blocks.end(),
                   [&](std::int64_t a, std::int64_t b) { return weight[a] > weight[b]; });
  std::vector<std::int32_t> order;
  order.reserve(static_cast<std::size_t>(n_rows));
  std::vector<char> placed(static_cast<std::size_t>(n_rows), 0);
  auto place = [&](std::int32_t r) {
    if (!placed[r]) {
      placed[r] = 1;
      order.push_back(r);
    }
  };
  for (std::int64_t blk : order_of_blocks)
    for (std::int64_t p = blocks.block_row_ptr[blk]; p < blocks.block_row_ptr[blk + 1]; ++p) place(post_rows[p]);
  for (std::int64_t r = 0; r < n_rows; ++r) place(static_cast<std::int32_t>(r));  // rows in no list
  return order;
}

std::shared_ptr<ApproxIndex> ApproxIndex::build(const CsrView& codes, const IndexParams& params) {
  ForwardRows fwd = build_forward(codes, params.threads);
  IndexCommon common;
  common.params = params;
  common.is_signed = fwd.any_negative;
  common.n_rows = codes.n_rows;
  common.n_cols = codes.n_cols;
  std::vector<std::int32_t> post_rows;
  ApproxLayout layout;
  {
    const Columns cols = build_columns(fwd, codes.n_rows, codes.n_cols);
    common.col_nnz = Array<std::int64_t>(column_lengths(cols, codes.n_cols));
    common.fwd_indptr = Array<std::int64_t>::view(fwd.indptr.data(), fwd.indptr.size());
    layout.blocks = build_blocks(fwd, cols, common, post_rows);
  }
  using Summaries = IndexParams::Summaries;
  const bool by_feature =
      params.summaries == Summaries::kByFeature ||
      (params.summaries == Summaries::kSmaller &&
       summary_bytes_by_feature(layout.blocks, common.n_cols, common.is_signed) <
           summary_bytes_by_block(layout.blocks, common.n_cols, common.is_signed));
  if (by_feature) store_summaries_by_feature(layout.blocks, common.n_cols, common.is_signed, params.threads);
  // Records from the float forward index, which (like the row ids) was only needed to build.
  layout.records = pack_records_from_floats(common, layout.blocks, post_rows.data(),
                                            static_cast<std::int64_t>(post_rows.size()), fwd.indices.data(),
                                            fwd.values.data());
  common.fwd_indptr = Array<std::int64_t>(std::move(fwd.indptr));
  return std::make_shared<ApproxIndex>(std::move(common), std::move(layout));
}

}  // namespace likeable
