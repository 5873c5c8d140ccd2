// Queries answered by scoring every row: dense or mostly-dense queries, such as a user's
// weights over every feature. Their features' columns hold most of the index, so the exact
// kind's scatter touches nearly every row and the approximate kind's block bounds cannot prune
// (a summary keeps a block's largest components; a dense query also weighs the rest), which
// made approximate search both slower than brute force and silently inaccurate. Both kinds
// instead score a batch of such queries against every row with the tiled kernel of
// core/tile_scores.h (a tile of queries transposed once, each row read once per tile, a running
// top-k per query in registers).
#include <algorithm>
#include <vector>

#include "core/parallel.h"
#include "core/tile_scores.h"
#include "core/topk.h"
#include "index/index.h"

namespace likeable {
namespace {

constexpr std::int64_t kBatch = 256;                    // queries scored together (8 tiles of 32)
constexpr std::int64_t kDenseBytes = std::int64_t{64} << 20;  // a batch of CSR queries made dense

}  // namespace

void SparseIndex::search_all_rows(const QueryBatch& queries, const SearchParams& params, std::int64_t* ids,
                                  float* scores, std::vector<char>& done) const {
  const std::int64_t n_queries = queries.n_queries, n_cols = this->n_cols(), k = params.k;
  if (n_queries == 0 || n_rows() == 0) return;
  // Which queries: the entries their features' columns hold (what a scatter would touch).
  const std::int64_t limit = all_rows_cost(queries.dense != nullptr);
  const std::int64_t* col_nnz = common_.col_nnz.data();
  std::vector<char> chosen_flag(static_cast<std::size_t>(n_queries), 0);
  parallel_for(n_queries, 64, params.threads, [&](std::int64_t begin, std::int64_t end, int) {
    for (std::int64_t qi = begin; qi < end; ++qi) {
      std::int64_t cost = 0;
      if (queries.sparse != nullptr) {
        const CsrView& csr = *queries.sparse;
        for (std::int64_t p = csr.indptr[qi]; p < csr.indptr[qi + 1]; ++p) cost += col_nnz[csr.indices[p]];
      } else {
        const float* row = queries.dense + qi * n_cols;
        for (std::int64_t j = 0; j < n_cols; ++j) cost += row[j] != 0.0f ? col_nnz[j] : 0;
      }
      chosen_flag[qi] = cost > limit;
    }
  });
  std::vector<std::int64_t> chosen;
  for (std::int64_t qi = 0; qi < n_queries; ++qi)
    if (chosen_flag[qi]) chosen.push_back(qi);
  if (chosen.empty()) return;
  done.swap(chosen_flag);

  // Each chosen query's running top k over the row chunks (one chunk for the exact kind).
  const std::int64_t n_chosen = static_cast<std::int64_t>(chosen.size());
  std::vector<float> keys(static_cast<std::size_t>(checked_mul(n_chosen, k)));
  std::vector<std::int64_t> heap_ids(keys.size());
  std::vector<TopHits> heaps;
  heaps.reserve(chosen.size());
  for (std::int64_t c = 0; c < n_chosen; ++c) heaps.emplace_back(keys.data() + c * k, heap_ids.data() + c * k, k);
  const std::int64_t batch =
      queries.dense != nullptr ? kBatch : std::clamp<std::int64_t>(kDenseBytes / (4 * n_cols), 8, kBatch);
  std::vector<float> dense;
  std::vector<std::int64_t> part_ids;
  std::vector<float> part_scores;
  for_each_row_chunk(
      [&](const CsrView& rows, std::int64_t first) {
        for (std::int64_t b0 = 0; b0 < n_chosen; b0 += batch) {
          const std::int64_t n = std::min(batch, n_chosen - b0);
          tile_scores::DenseRows users;
          users.n_users = n;
          users.n_cols = n_cols;
          if (queries.dense != nullptr) {
            users.matrix = queries.dense;
            users.select = chosen.data() + b0;
          } else {  // CSR queries made dense (repeated features add up, as the per-query paths do)
            const CsrView& csr = *queries.sparse;
            dense.assign(static_cast<std::size_t>(checked_mul(n, n_cols)), 0.0f);
            for (std::int64_t i = 0; i < n; ++i) {
              const std::int64_t qi = chosen[b0 + i];
              for (std::int64_t p = csr.indptr[qi]; p < csr.indptr[qi + 1]; ++p)
                dense[i * n_cols + csr.indices[p]] += csr.values[p];
            }
            users.matrix = dense.data();
          }
          part_ids.resize(static_cast<std::size_t>(n * k));
          part_scores.resize(part_ids.size());
          tile_scores::top_k(users, rows, k, part_ids.data(), part_scores.data(), params.threads);
          for (std::int64_t i = 0; i < n; ++i)
            for (std::int64_t j = 0; j < k && part_ids[i * k + j] >= 0; ++j)
              heaps[b0 + i].push(part_scores[i * k + j], part_ids[i * k + j] + first);
        }
      },
      params.threads);
  for (std::int64_t c = 0; c < n_chosen; ++c) heaps[c].write_best_first(ids + chosen[c] * k, scores + chosen[c] * k);
}

}  // namespace likeable
