#include "index/exact.h"

#include <cstring>
#include <limits>

#include "index/forward.h"
#include "index/kernels.h"
#include "index/search_scratch.h"

namespace likeable {

std::shared_ptr<ExactIndex> ExactIndex::build(const CsrView& codes, const IndexParams& params) {
  ForwardRows fwd = build_forward(codes, params.threads);
  Columns cols = build_columns(fwd, codes.n_rows, codes.n_cols);
  IndexCommon common;
  common.params = params;
  common.is_signed = fwd.any_negative;
  common.n_rows = codes.n_rows;
  common.n_cols = codes.n_cols;
  common.col_nnz = Array<std::int64_t>(column_lengths(cols, codes.n_cols));
  common.fwd_indptr = Array<std::int64_t>(std::move(fwd.indptr));
  ExactLayout layout;
  layout.fwd_indices = Array<std::int32_t>(std::move(fwd.indices));
  layout.fwd_values = Array<float>(std::move(fwd.values));
  layout.col_ptr = Array<std::int64_t>(std::move(cols.ptr));
  layout.col_rows = Array<std::int32_t>(std::move(cols.rows));
  layout.col_values = Array<float>(std::move(cols.values));
  return std::make_shared<ExactIndex>(std::move(common), std::move(layout));
}

void ExactIndex::for_each_row_chunk(const RowChunkFn& fn, int) const { fn(forward_view(), 0); }

CsrView ExactIndex::forward_view() const {
  return CsrView{common_.fwd_indptr.data(), layout_.fwd_indices.data(), layout_.fwd_values.data(), n_rows(),
                 n_cols()};
}

void ExactIndex::search_one(const Query& query, SearchScratch& s, const SearchParams& params, std::int64_t* ids,
                            float* scores) const {
  const std::int32_t* q_idx = query.idx;
  const float* q_val = query.val;
  const std::int64_t q_nnz = query.nnz, k = params.k, n_rows = this->n_rows();
  const std::int64_t* col_ptr = layout_.col_ptr.data();
  const std::int32_t* col_rows = layout_.col_rows.data();
  const float* col_values = layout_.col_values.data();
  float* acc = s.scores.data();
  std::int64_t scatter_cost = 0;
  for (std::int64_t i = 0; i < q_nnz; ++i) scatter_cost += common_.col_nnz[q_idx[i]];
  TopHits top = s.hits(k);
  // Queries above all_rows_cost (nnz / 2) never come here: they are scored against every row
  // in batches (all_rows.cpp).
  if (scatter_cost >= n_rows / 4) {
    // Many postings (a typical query touches most rows): a plain scatter with no per-posting
    // bookkeeping, then one branch-light scan of every row against the k-th score and a memset.
    // Listing touched rows (below) costs a dependent append per posting, which here is more
    // than the full scan it saves. Columns hold rows ascending, and so does the scan, which
    // gives the tie rule (lower row first) and puts rows scoring exactly 0 in their place.
    for (std::int64_t i = 0; i < q_nnz; ++i) {
      const float w = q_val[i];
      const std::int32_t j = q_idx[i];
      const std::int64_t p_end = col_ptr[j + 1];
      for (std::int64_t p = col_ptr[j]; p < p_end; ++p) acc[col_rows[p]] += w * col_values[p];
    }
    index_kernels::scan_scores(acc, n_rows, top);
    std::memset(acc, 0, sizeof(float) * static_cast<std::size_t>(n_rows));
  } else {
    // Few postings touched: scatter-accumulate the query's columns, listing each row on its first
    // touch (its sum is still 0) so that the top-k scan and the reset visit those rows only, not
    // all n_rows. A sum that cancels to exactly 0 and moves again lists its row twice: the scan
    // below marks rows it has taken with NaN, so a second listing is skipped.
    if (s.touched.size() < static_cast<std::size_t>(scatter_cost)) s.touched.resize(scatter_cost);
    std::int32_t* touched = s.touched.data();
    std::int64_t n_touched = 0;
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
      top.push(v, r);
      acc[r] = taken;
    }
    // Rows scoring exactly 0 (untouched, or cancelled) are all equal: the best of them are the
    // lowest ids, added only when they can reach the top k.
    if (!top.full() || top.worst_key() < 0.0f) {
      std::int64_t added = 0;
      for (std::int64_t r = 0; r < n_rows && added < k; ++r) {
        if (acc[r] == 0.0f) {
          top.push(0.0f, r);
          ++added;
        }
      }
    }
    for (std::int64_t t = 0; t < n_touched; ++t) acc[touched[t]] = 0.0f;
  }
  top.write_best_first(ids, scores);
}

void ExactIndex::collect_feature(std::int32_t feature, std::int64_t, int sign,
                                 std::vector<std::pair<float, std::int64_t>>& hits) const {
  const float s = static_cast<float>(sign);
  for (std::int64_t p = layout_.col_ptr[feature]; p < layout_.col_ptr[feature + 1]; ++p) {
    const float v = layout_.col_values[p];
    if (v * s > 0) hits.emplace_back(v * s, layout_.col_rows[p]);
  }
}

}  // namespace likeable
