// Scoring users against sparse items: utilities and per-(pair, user) probabilities.
// A user's weights are population + offsets[row] (row < 0: an unseen user, population only).
#pragma once

#include <cstdint>

#include "core/errors.h"
#include "core/parallel.h"
#include "core/sparse.h"

namespace likeable::scoring {

// Dense per-user weights, stored as population (n_features) plus a row-major offset matrix.
struct UserWeights {
  const float* population = nullptr;  // n_features
  const float* offsets = nullptr;     // n_rows x n_features (may be null when n_rows == 0)
  std::int64_t n_rows = 0;
  std::int64_t n_features = 0;
};

// out (n_users x items.n_rows, row-major) = items . w(user_rows[u]) (core/tile_scores.h: a tile
// of users' weights is transposed once and every item's few features gathered from it).
void score_users_items(const UserWeights& weights, const std::int64_t* user_rows, std::int64_t n_users,
                       const CsrView& items, float* out, int threads);

// Each user's k items of largest score (ids/scores n_users x k, best first, ties: lower item),
// selected while the scores are in registers: the users x items matrix is never built.
void top_items(const UserWeights& weights, const std::int64_t* user_rows, std::int64_t n_users,
               const CsrView& items, std::int64_t k, std::int64_t* ids, float* scores, int threads);

// proba[i] = sigmoid(pairs_i . w(user_rows[i]) + base_logit[i]); base_logit may be null.
void predict_pairs(const UserWeights& weights, const std::int64_t* user_rows, const CsrView& pairs,
                   const float* base_logit, float* proba, int threads, bool logits = false);

// Dense weights of the given users, n_users x n_features.
void gather_weights(const UserWeights& weights, const std::int64_t* user_rows, std::int64_t n_users,
                    float* out, int threads);

}  // namespace likeable::scoring
