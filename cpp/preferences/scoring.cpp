#include "preferences/scoring.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "core/tile_scores.h"

namespace likeable::scoring {
namespace {

void check_rows(const UserWeights& w, const std::int64_t* user_rows, std::int64_t n) {
  for (std::int64_t u = 0; u < n; ++u)
    LIKEABLE_CHECK(user_rows[u] >= -1 && user_rows[u] < w.n_rows, "user row ", user_rows[u], " out of range for ", w.n_rows,
                   " fitted users");
}

// A user's weights are population + offsets[row]: the tile kernels add them while transposing.
tile_scores::DenseRows as_dense_rows(const UserWeights& w, const std::int64_t* user_rows, std::int64_t n_users) {
  return tile_scores::DenseRows{w.population, w.n_rows > 0 ? w.offsets : nullptr, user_rows, n_users, w.n_features};
}

}  // namespace

void score_users_items(const UserWeights& weights, const std::int64_t* user_rows, std::int64_t n_users,
                       const CsrView& items, float* out, int threads) {
  LIKEABLE_CHECK(items.n_cols == weights.n_features, "items have ", items.n_cols, " features, the model has ",
                 weights.n_features);
  check_rows(weights, user_rows, n_users);
  tile_scores::score_all(as_dense_rows(weights, user_rows, n_users), items, out, threads);
}

void top_items(const UserWeights& weights, const std::int64_t* user_rows, std::int64_t n_users,
               const CsrView& items, std::int64_t k, std::int64_t* ids, float* scores, int threads) {
  LIKEABLE_CHECK(items.n_cols == weights.n_features, "items have ", items.n_cols, " features, the model has ",
                 weights.n_features);
  check_rows(weights, user_rows, n_users);
  tile_scores::top_k(as_dense_rows(weights, user_rows, n_users), items, k, ids, scores, threads);
}

void predict_pairs(const UserWeights& weights, const std::int64_t* user_rows, const CsrView& pairs,
                   const float* base_logit, float* proba, int threads, bool logits) {
  LIKEABLE_CHECK(pairs.n_cols == weights.n_features, "pairs have ", pairs.n_cols, " features, the model has ",
                 weights.n_features);
  check_rows(weights, user_rows, pairs.n_rows);
  const std::int64_t m = weights.n_features;
  parallel_for(pairs.n_rows, 4096, threads, [&](std::int64_t begin, std::int64_t end, int) {
    for (std::int64_t i = begin; i < end; ++i) {
      const std::int64_t row = user_rows[i];
      const float* off = row >= 0 ? weights.offsets + row * m : nullptr;
      double eta = base_logit ? base_logit[i] : 0.0;
      for (std::int64_t q = pairs.row_begin(i); q < pairs.row_end(i); ++q) {
        const std::int32_t f = pairs.indices[q];
        eta += static_cast<double>(pairs.values[q]) * (weights.population[f] + (off ? off[f] : 0.0f));
      }
      if (logits) {
        proba[i] = static_cast<float>(eta);
        continue;
      }
      proba[i] = static_cast<float>(eta >= 0 ? 1.0 / (1.0 + std::exp(-eta)) : std::exp(eta) / (1.0 + std::exp(eta)));
    }
  });
}

void gather_weights(const UserWeights& weights, const std::int64_t* user_rows, std::int64_t n_users,
                    float* out, int threads) {
  check_rows(weights, user_rows, n_users);
  const std::int64_t m = weights.n_features;
  parallel_for(n_users, 64, threads, [&](std::int64_t begin, std::int64_t end, int) {
    for (std::int64_t u = begin; u < end; ++u) {
      const std::int64_t row = user_rows[u];
      const float* off = row >= 0 ? weights.offsets + row * m : nullptr;
      float* dst = out + u * m;
      for (std::int64_t f = 0; f < m; ++f) dst[f] = weights.population[f] + (off ? off[f] : 0.0f);
    }
  });
}

}  // namespace likeable::scoring
