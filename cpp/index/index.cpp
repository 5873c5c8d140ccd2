// What both index kinds share: the checked entry points, the parallel loop over queries, and
// the ordering of top activations.
#include "index/index.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/parallel.h"
#include "index/approximate.h"
#include "index/exact.h"
#include "index/search_scratch.h"

namespace likeable {

std::shared_ptr<SparseIndex> SparseIndex::build(const CsrView& codes, const IndexParams& params) {
  LIKEABLE_CHECK(params.n_postings >= 1, "n_postings must be >= 1, got ", params.n_postings);
  LIKEABLE_CHECK(params.block_fraction > 0 && params.block_fraction <= 1,
                 "block_fraction must be in (0, 1], got ", params.block_fraction);
  LIKEABLE_CHECK(params.summary_energy > 0 && params.summary_energy <= 1,
                 "summary_energy must be in (0, 1], got ", params.summary_energy);
  LIKEABLE_CHECK(params.doc_cut >= 1, "doc_cut must be >= 1, got ", params.doc_cut);
  LIKEABLE_CHECK(codes.n_rows <= INT32_MAX, "at most 2^31-1 rows can be indexed, got ", codes.n_rows);
  std::shared_ptr<SparseIndex> index;
  if (params.approximate) index = ApproxIndex::build(codes, params);
  else index = ExactIndex::build(codes, params);
  index->common_.max_abs_value = max_abs(codes.values, codes.nnz());
  return index;
}

void check_score_range(const QueryBatch& queries, double max_abs) {
  // A quarter of FLT_MAX leaves room for the rounding of every partial sum.
  const double limit = static_cast<double>(std::numeric_limits<float>::max()) / 4;
  for (std::int64_t qi = 0; qi < queries.n_queries; ++qi) {
    double l1 = 0;
    if (queries.sparse != nullptr) {
      const CsrView& csr = *queries.sparse;
      for (std::int64_t p = csr.indptr[qi]; p < csr.indptr[qi + 1]; ++p) l1 += std::fabs(csr.values[p]);
    } else {
      const float* row = queries.dense + qi * queries.n_cols;
      for (std::int64_t j = 0; j < queries.n_cols; ++j) l1 += std::fabs(row[j]);
    }
    LIKEABLE_CHECK(l1 <= limit && l1 * max_abs <= limit, "query ", qi, " could score beyond float32 (sum |q_j| = ", l1,
                   ", largest |value| indexed = ", max_abs, "): scale the queries or the codes down");
  }
}

void SparseIndex::search(const QueryBatch& queries, const SearchParams& params, std::int64_t* ids,
                         float* scores) const {
  LIKEABLE_CHECK(params.k >= 1, "k must be >= 1, got ", params.k);
  LIKEABLE_CHECK(params.heap_factor > 0, "heap_factor must be > 0, got ", params.heap_factor);
  LIKEABLE_CHECK(queries.n_cols == n_cols(), "queries have ", queries.n_cols, " features, the index has ", n_cols());
  check_score_range(queries, common_.max_abs_value);
  const std::int64_t k = params.k, n_cols = this->n_cols();
  const bool exact = !approximate();
  std::vector<char> done;
  search_all_rows(queries, params, ids, scores, done);
  // Small batches on one thread: spinning up a team costs more than a few queries.
  const std::int64_t chunk = 4;
  parallel_for(queries.n_queries, chunk, params.threads, [&](std::int64_t begin, std::int64_t end, int) {
    SearchScratch& s = SearchScratch::for_this_thread();
    s.reserve(n_rows(), n_cols, exact, k);
    for (std::int64_t qi = begin; qi < end; ++qi) {
      if (!done.empty() && done[qi]) continue;
      Query q;
      if (queries.sparse != nullptr) {
        const CsrView& csr = *queries.sparse;
        q = Query{csr.indices + csr.indptr[qi], csr.values + csr.indptr[qi], csr.indptr[qi + 1] - csr.indptr[qi]};
      } else {
        const float* row = queries.dense + qi * n_cols;
        s.q_idx.clear();
        s.q_val.clear();
        for (std::int64_t j = 0; j < n_cols; ++j) {
          if (row[j] != 0.0f) {
            s.q_idx.push_back(static_cast<std::int32_t>(j));
            s.q_val.push_back(row[j]);
          }
        }
        q = Query{s.q_idx.data(), s.q_val.data(), static_cast<std::int64_t>(s.q_idx.size())};
      }
      std::int64_t* out_ids = ids + qi * k;
      float* out_scores = scores + qi * k;
      if (n_rows() == 0) s.hits(k).write_best_first(out_ids, out_scores);
      else search_one(q, s, params, out_ids, out_scores);
    }
  });
}

void SparseIndex::top_activations(std::int32_t feature, std::int64_t n, int sign, std::vector<std::int64_t>& rows,
                                  std::vector<float>& values) const {
  LIKEABLE_CHECK(feature >= 0 && feature < n_cols(), "feature ", feature, " is outside [0, ", n_cols(), ")");
  LIKEABLE_CHECK(n >= 0, "n must be >= 0, got ", n);
  LIKEABLE_CHECK(sign == 1 || sign == -1, "sign must be +1 or -1, got ", sign);
  std::vector<std::pair<float, std::int64_t>> hits;  // (signed value, row)
  collect_feature(feature, n, sign, hits);
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

}  // namespace likeable
