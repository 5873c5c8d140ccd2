#include "index/brute_force.h"

#include <algorithm>
#include <vector>

#include "core/parallel.h"
#include "core/topk.h"

namespace likeable {

void brute_force_search(const CsrView& codes, const QueryBatch& queries, std::int64_t k, int threads,
                        std::int64_t* ids, float* scores) {
  LIKEABLE_CHECK(k >= 1, "k must be >= 1, got ", k);
  LIKEABLE_CHECK(queries.n_cols == codes.n_cols, "queries have ", queries.n_cols, " features, codes have ", codes.n_cols);
  check_score_range(queries, max_abs(codes.values, codes.nnz()));  // the rule the indexes follow
  parallel_for(queries.n_queries, 1, threads, [&](std::int64_t begin, std::int64_t end, int) {
    std::vector<double> q(codes.n_cols);
    std::vector<float> keys(k);
    std::vector<std::int64_t> rows(k);
    for (std::int64_t qi = begin; qi < end; ++qi) {
      std::fill(q.begin(), q.end(), 0.0);
      if (queries.sparse) {
        const CsrView& c = *queries.sparse;
        for (std::int64_t p = c.indptr[qi]; p < c.indptr[qi + 1]; ++p) q[c.indices[p]] += c.values[p];
      } else {
        for (std::int64_t j = 0; j < codes.n_cols; ++j) q[j] = queries.dense[qi * codes.n_cols + j];
      }
      TopHits top(keys.data(), rows.data(), k);
      for (std::int64_t r = 0; r < codes.n_rows; ++r) {
        double acc = 0;
        for (std::int64_t p = codes.indptr[r]; p < codes.indptr[r + 1]; ++p) acc += q[codes.indices[p]] * codes.values[p];
        top.push(static_cast<float>(acc), r);
      }
      top.write_best_first(ids + qi * k, scores + qi * k);
    }
  });
}

}  // namespace likeable
