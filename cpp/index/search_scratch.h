// Per-thread buffers of search, grown on demand and cached for the thread's life, so a search
// call does not allocate per query. Invariant between queries: `scores`, `q_dense` and
// `visited` are zero.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "core/topk.h"

namespace likeable {

struct SearchScratch {
  // Both kinds.
  std::vector<float> q_dense;                // the query scattered over the features
  std::vector<float> heap_keys;              // the running top-k's slots
  std::vector<std::int64_t> heap_ids;
  std::vector<std::int32_t> q_idx;           // a dense query's non-zeros
  std::vector<float> q_val;
  // Exact index.
  std::vector<float> scores;                 // per row
  std::vector<std::int32_t> touched;         // rows touched by this query (scatter path)
  // Approximate index.
  std::vector<std::uint64_t> visited;        // one bit per row
  std::vector<std::int32_t> visited_rows;
  std::vector<std::int32_t> cut;             // the lists visited, by |q_j|
  std::vector<std::pair<float, std::int64_t>> block_order;  // (bound, block)
  std::vector<std::int32_t> q_features;      // the query's features, ascending (summaries by feature)
  std::vector<float> bound_pos, bound_neg;   // a list's block bounds being summed (by feature)
  struct Run {                               // a query feature's entries in one visited list
    std::int32_t list;
    std::int64_t group;                      // its first group: feature * the list's chunks
    std::int64_t start;                      // where that group starts in the list's bits
  };
  std::vector<std::int32_t> q_weighed;       // the query features that add to bounds
  std::vector<Run> q_runs;
  std::vector<float> list_bounds;            // every visited list's block bounds, in list order
  std::vector<std::int64_t> list_bound_ptr;

  void reserve(std::int64_t n_rows, std::int64_t n_cols, bool exact, std::int64_t k) {
    if (exact && scores.size() < static_cast<std::size_t>(n_rows)) scores.resize(n_rows, 0.0f);
    if (q_dense.size() < static_cast<std::size_t>(n_cols)) q_dense.resize(n_cols, 0.0f);
    if (!exact && visited.size() < static_cast<std::size_t>(n_rows / 64 + 1)) visited.resize(n_rows / 64 + 1, 0);
    if (heap_keys.size() < static_cast<std::size_t>(k)) {
      heap_keys.resize(k);
      heap_ids.resize(k);
    }
  }
  // An empty top-k heap over this thread's slots.
  TopHits hits(std::int64_t k) { return TopHits(heap_keys.data(), heap_ids.data(), k); }

  static SearchScratch& for_this_thread() {
    thread_local SearchScratch scratch;
    return scratch;
  }
};

}  // namespace likeable
