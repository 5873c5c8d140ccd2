// core/tile_scores: every score and each user's top k against float64 loops, with ties, awkward
// sizes (no items, one item, k > items, tiles of 8/16/32 and partial ones, feature counts off
// the 8-wide transpose), SIMD and portable kernels, one and two threads.
#include <doctest/doctest.h>

#include <algorithm>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "core/tile_scores.h"
#include "helpers.h"

using namespace likeable;
using testing::random_codes;

namespace {

// float64 scores of every (user, item); users' weights base + matrix[select[u]] as in DenseRows.
std::vector<double> reference_scores(const tile_scores::DenseRows& users, const CsrMatrix& items) {
  std::vector<double> out(static_cast<std::size_t>(users.n_users * items.n_rows), 0.0);
  for (std::int64_t u = 0; u < users.n_users; ++u) {
    const float* row = users.row_of(u);
    for (std::int64_t i = 0; i < items.n_rows; ++i) {
      double s = 0;
      for (std::int64_t p = items.indptr[i]; p < items.indptr[i + 1]; ++p) {
        const std::int32_t f = items.indices[p];
        s += static_cast<double>(items.values[p]) * ((users.base ? users.base[f] : 0.0f) + (row ? row[f] : 0.0f));
      }
      out[u * items.n_rows + i] = s;
    }
  }
  return out;
}

}  // namespace

TEST_CASE("tile_scores top_k equals a float64 sort with ties (lower item first) and pads past the items") {
  std::mt19937_64 gen(7);
  std::uniform_int_distribution<int> small(-2, 2);
  for (std::int64_t m : {1, 7, 16, 33}) {
    for (std::int64_t n_items : {0, 1, 5, 300}) {
      for (std::int64_t n_users : {1, 9, 17, 40}) {  // tiles of 8, 16, 32 (and a partial one)
        // Integer weights and values: every sum is exact in float32, so ties are real ties.
        const CsrMatrix items = random_codes(gen, n_items, m, 0.4, true);
        std::vector<float> base(m), matrix(3 * m);
        for (float& x : base) x = static_cast<float>(small(gen));
        for (float& x : matrix) x = static_cast<float>(small(gen));
        std::vector<std::int64_t> select(n_users);
        for (std::int64_t u = 0; u < n_users; ++u) select[u] = u % 4 - 1;  // -1: base only
        const tile_scores::DenseRows users{base.data(), matrix.data(), select.data(), n_users, m};
        const std::vector<double> want = reference_scores(users, items);
        for (std::int64_t k : {1, 3, 400}) {
          for (bool simd : {true, false}) {
            for (int threads : {1, 2}) {
              testing::SimdScope scope(simd);
              std::vector<std::int64_t> ids(n_users * k);
              std::vector<float> scores(n_users * k);
              tile_scores::top_k(users, items.view(), k, ids.data(), scores.data(), threads);
              for (std::int64_t u = 0; u < n_users; ++u) {
                std::vector<std::int64_t> order(n_items);
                std::iota(order.begin(), order.end(), 0);
                std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
                  return want[u * n_items + a] > want[u * n_items + b];
                });
                for (std::int64_t j = 0; j < k; ++j) {
                  if (j < n_items) {
                    REQUIRE(ids[u * k + j] == order[j]);
                    REQUIRE(scores[u * k + j] == static_cast<float>(want[u * n_items + order[j]]));
                  } else {
                    REQUIRE(ids[u * k + j] == -1);
                    REQUIRE(scores[u * k + j] == -std::numeric_limits<float>::infinity());
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}

TEST_CASE("tile_scores score_all matches float64 and top_k picks from exactly those scores") {
  std::mt19937_64 gen(8);
  std::normal_distribution<float> normal;
  for (std::int64_t m : {5, 64, 1030}) {
    for (std::int64_t n_users : {3, 32, 35}) {
      const CsrMatrix items = random_codes(gen, 9000, m, std::min(1.0, 6.0 / m), true, false);
      std::vector<float> matrix(n_users * m);
      for (float& x : matrix) x = normal(gen);
      const tile_scores::DenseRows users{nullptr, matrix.data(), nullptr, n_users, m};
      const std::vector<double> want = reference_scores(users, items);
      for (bool simd : {true, false}) {
        testing::SimdScope scope(simd);
        std::vector<float> all(n_users * items.n_rows);
        tile_scores::score_all(users, items.view(), all.data(), 2);
        for (std::size_t i = 0; i < all.size(); ++i) REQUIRE(all[i] == doctest::Approx(want[i]).epsilon(1e-5).scale(1.0));
        // Several threads split one tile's items into parts (few users): the merge keeps the
        // order total, so the result is the sort of score_all's own numbers.
        const std::int64_t k = 10;
        std::vector<std::int64_t> ids(n_users * k);
        std::vector<float> scores(n_users * k);
        tile_scores::top_k(users, items.view(), k, ids.data(), scores.data(), 3);
        for (std::int64_t u = 0; u < n_users; ++u) {
          const float* row = all.data() + u * items.n_rows;
          std::vector<std::int64_t> order(items.n_rows);
          std::iota(order.begin(), order.end(), 0);
          std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) { return row[a] > row[b]; });
          for (std::int64_t j = 0; j < k; ++j) {
            REQUIRE(ids[u * k + j] == order[j]);
            REQUIRE(scores[u * k + j] == row[order[j]]);
          }
        }
      }
    }
  }
}

TEST_CASE("tile_scores refuses mismatched widths and k < 1") {
  std::mt19937_64 gen(1);
  const CsrMatrix items = random_codes(gen, 4, 6, 0.5, false);
  std::vector<float> w(5 * 2, 1.0f);
  std::vector<std::int64_t> ids(2);
  std::vector<float> scores(2);
  const tile_scores::DenseRows narrow{nullptr, w.data(), nullptr, 2, 5};
  CHECK_THROWS_AS(tile_scores::top_k(narrow, items.view(), 1, ids.data(), scores.data(), 1), InvalidArgument);
  const tile_scores::DenseRows users{nullptr, w.data(), nullptr, 1, 6};
  CHECK_THROWS_AS(tile_scores::top_k(users, items.view(), 0, ids.data(), scores.data(), 1), InvalidArgument);
}
