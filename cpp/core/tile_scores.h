// Dense rows ("users": a weight for every feature) against sparse rows ("items"): every
// user's score for every item, or each user's k best items, a tile of users at a time. The
// scores of a tile are consumed while they are in registers, so top_k never builds the
// users x items matrix (the same shape as the encoder's GEMM + running top-K).
//
// Used by preferences scoring (UserPreferences.score / top_items) and by the exact index for
// dense queries. Hand-written rather than BLAS because the items are sparse: a dense GEMM would
// multiply mostly zeros (K = 32 of M = 4096 is 0.8% dense), and scipy's CSR x dense streams
// every user's weights once per non-zero.
#pragma once

#include <cstdint>

#include "core/sparse.h"

namespace likeable::tile_scores {

// User u's weights are base (when not null) plus row_of(u) of `matrix` (when that is not null).
// With `select`, user u reads matrix row select[u] (< 0: base only); without, row u.
struct DenseRows {
  const float* base = nullptr;           // n_cols, or null (zeros)
  const float* matrix = nullptr;         // row-major, n_cols per row, or null
  const std::int64_t* select = nullptr;  // n_users, or null
  std::int64_t n_users = 0;
  std::int64_t n_cols = 0;

  const float* row_of(std::int64_t u) const {
    if (matrix == nullptr) return nullptr;
    if (select == nullptr) return matrix + u * n_cols;
    return select[u] >= 0 ? matrix + select[u] * n_cols : nullptr;
  }
};

// out (n_users x items.n_rows, row-major) = w_u . item_i. Each score is one sequential sum over
// the item's entries in CSR order (fused multiply-adds on the AVX2 path).
void score_all(const DenseRows& users, const CsrView& items, float* out, int threads);

// ids/scores (n_users x k, row-major): each user's k items of largest score, best first (ties:
// lower item id), padded with -1 / -inf when k > n_items. Scores equal score_all's bit for bit.
void top_k(const DenseRows& users, const CsrView& items, std::int64_t k, std::int64_t* ids, float* scores,
           int threads);

}  // namespace likeable::tile_scores
