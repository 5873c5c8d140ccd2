#include "scoring.h"

#include <cmath>
#include <vector>

namespace likeable::scoring {
namespace {

void check_rows(const UserWeights& w, const std::int64_t* user_rows, std::int64_t n) {
  for (std::int64_t u = 0; u < n; ++u)
    LIKEABLE_CHECK(user_rows[u] >= -1 && user_rows[u] < w.n_rows, "user row ", user_rows[u], " out of range for ", w.n_rows,
                   " fitted users");
}

// Tile of users scored together: 32 floats per feature = two cache lines, wide enough for the
// compiler to vectorise the inner loop, small enough that a 4k-feature tile (512 KiB) stays in L2.
constexpr std::int64_t kUserTile = 32;

}  // namespace

void score_users_items(const UserWeights& weights, const std::int64_t* user_rows, std::int64_t n_users,
                       const CsrView& items, float* out, int threads) {
  LIKEABLE_CHECK(items.n_cols == weights.n_features, "items have ", items.n_cols, " features, the model has ",
                 weights.n_features);
  check_rows(weights, user_rows, n_users);
  const std::int64_t m = weights.n_features, n_items = items.n_rows;
  const std::int64_t n_tiles = (n_users + kUserTile - 1) / kUserTile;
  threads = resolve_threads(threads);
  std::vector<std::vector<float>> scratch(threads);
  parallel_for(n_tiles, 1, threads, [&](std::int64_t tb, std::int64_t te, int tid) {
    auto& tile = scratch[tid];
    tile.resize(checked_mul(m, kUserTile));
    alignas(64) float acc[kUserTile];
    for (std::int64_t t = tb; t < te; ++t) {
      const std::int64_t u0 = t * kUserTile, width = std::min(kUserTile, n_users - u0);
      // Feature-major tile: tile[f * 32 + u] = weight of user u0+u on feature f.
      for (std::int64_t u = 0; u < kUserTile; ++u) {
        const std::int64_t row = u < width ? user_rows[u0 + u] : -1;
        const float* off = row >= 0 ? weights.offsets + row * m : nullptr;
        if (u >= width) {
          for (std::int64_t f = 0; f < m; ++f) tile[f * kUserTile + u] = 0.0f;
        } else if (off) {
          for (std::int64_t f = 0; f < m; ++f) tile[f * kUserTile + u] = weights.population[f] + off[f];
        } else {
          for (std::int64_t f = 0; f < m; ++f) tile[f * kUserTile + u] = weights.population[f];
        }
      }
      for (std::int64_t i = 0; i < n_items; ++i) {
        for (std::int64_t u = 0; u < kUserTile; ++u) acc[u] = 0.0f;
        for (std::int64_t q = items.row_begin(i); q < items.row_end(i); ++q) {
          const float v = items.values[q];
          const float* wf = tile.data() + static_cast<std::int64_t>(items.indices[q]) * kUserTile;
          for (std::int64_t u = 0; u < kUserTile; ++u) acc[u] += v * wf[u];
        }
        for (std::int64_t u = 0; u < width; ++u) out[(u0 + u) * n_items + i] = acc[u];
      }
    }
  });
}

void predict_pairs(const UserWeights& weights, const std::int64_t* user_rows, const CsrView& pairs,
                   const float* base_logit, float* proba, int threads) {
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
