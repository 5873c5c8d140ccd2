// preferences/: scoring kernels (SIMD and portable) against a naive loop, logistic optimality.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "preferences/logistic.h"
#include "preferences/scoring.h"
#include "preferences/user_offsets.h"
#include "helpers.h"

using namespace likeable;
using testing::random_codes;

TEST_CASE("scoring users x items with SIMD and portable kernels matches a float64 loop") {
  std::mt19937_64 gen(41);
  std::normal_distribution<float> normal;
  for (std::int64_t m : {1, 7, 8, 1030}) {  // off and on the 8-wide transpose, one and two feature blocks
    for (std::int64_t n_users : {1, 33}) {     // a partial tile, a full tile and a partial one
      std::vector<float> population(m), offsets(3 * m);
      for (float& x : population) x = normal(gen);
      for (float& x : offsets) x = normal(gen);
      std::vector<std::int64_t> rows(n_users);
      for (std::int64_t u = 0; u < n_users; ++u) rows[u] = u % 4 - 1;  // -1: population only
      const CsrMatrix items = random_codes(gen, 2100, m, std::min(1.0, 5.0 / m), true, false);
      const scoring::UserWeights w{population.data(), offsets.data(), 3, m};
      std::vector<float> fast(n_users * items.n_rows), portable(fast.size());
      {
        testing::SimdScope scope(true);
        scoring::score_users_items(w, rows.data(), n_users, items.view(), fast.data(), 2);
      }
      {
        testing::SimdScope scope(false);
        scoring::score_users_items(w, rows.data(), n_users, items.view(), portable.data(), 2);
      }
      for (std::int64_t u = 0; u < n_users; ++u) {
        for (std::int64_t i = 0; i < items.n_rows; ++i) {
          double want = 0;
          for (std::int64_t p = items.indptr[i]; p < items.indptr[i + 1]; ++p) {
            const std::int32_t f = items.indices[p];
            want += static_cast<double>(items.values[p]) * (population[f] + (rows[u] >= 0 ? offsets[rows[u] * m + f] : 0.0f));
          }
          CHECK(fast[u * items.n_rows + i] == doctest::Approx(want).epsilon(1e-5).scale(1.0));
          CHECK(portable[u * items.n_rows + i] == doctest::Approx(want).epsilon(1e-5).scale(1.0));
        }
      }
    }
  }
}

TEST_CASE("predict_pairs and gather_weights against a loop, and bad user rows refused") {
  std::mt19937_64 gen(42);
  std::normal_distribution<float> normal;
  const std::int64_t m = 9;
  std::vector<float> population(m), offsets(2 * m);
  for (float& x : population) x = normal(gen);
  for (float& x : offsets) x = normal(gen);
  const scoring::UserWeights w{population.data(), offsets.data(), 2, m};
  const CsrMatrix pairs = random_codes(gen, 30, m, 0.4, true, false);
  std::vector<std::int64_t> rows(30);
  for (std::int64_t i = 0; i < 30; ++i) rows[i] = i % 3 - 1;
  std::vector<float> proba(30), logits(30), dense(30 * m);
  scoring::predict_pairs(w, rows.data(), pairs.view(), nullptr, proba.data(), 1);
  scoring::predict_pairs(w, rows.data(), pairs.view(), nullptr, logits.data(), 1, true);
  scoring::gather_weights(w, rows.data(), 30, dense.data(), 1);
  for (std::int64_t i = 0; i < 30; ++i) {
    double eta = 0;
    for (std::int64_t p = pairs.indptr[i]; p < pairs.indptr[i + 1]; ++p)
      eta += pairs.values[p] * dense[i * m + pairs.indices[p]];
    CHECK(logits[i] == doctest::Approx(eta).epsilon(1e-5));
    CHECK(proba[i] == doctest::Approx(1.0 / (1.0 + std::exp(-eta))).epsilon(1e-5));
  }
  rows[3] = 2;  // only rows 0 and 1 exist
  CHECK_THROWS_AS(scoring::gather_weights(w, rows.data(), 30, dense.data(), 1), InvalidArgument);
}

TEST_CASE("fit_logistic reaches a point where the penalised gradient vanishes") {
  std::mt19937_64 gen(43);
  const CsrMatrix X = random_codes(gen, 300, 12, 0.3, true, false);
  std::bernoulli_distribution coin(0.5);
  std::vector<float> labels(300);
  for (std::int64_t i = 0; i < 300; ++i) labels[i] = coin(gen) ? 1.0f : 0.0f;
  prefs::LogisticOptions opts;
  opts.l2 = 2.0;
  opts.fit_intercept = true;
  opts.tol = 1e-10;
  const prefs::LogisticFit fit = prefs::fit_logistic(X.view(), nullptr, 0, labels.data(), nullptr, opts);
  CHECK(fit.converged);
  std::vector<double> grad(12, 0.0);
  double grad_icpt = 0;
  for (std::int64_t i = 0; i < 300; ++i) {
    double eta = fit.intercept;
    for (std::int64_t p = X.indptr[i]; p < X.indptr[i + 1]; ++p) eta += X.values[p] * fit.coef[X.indices[p]];
    const double r = labels[i] - 1.0 / (1.0 + std::exp(-eta));
    for (std::int64_t p = X.indptr[i]; p < X.indptr[i + 1]; ++p) grad[X.indices[p]] += X.values[p] * r;
    grad_icpt += r;
  }
  for (std::int64_t j = 0; j < 12; ++j) CHECK(std::fabs(grad[j] - opts.l2 * fit.coef[j]) < 1e-5);
  CHECK(std::fabs(grad_icpt) < 1e-5);
  labels[0] = 0.5f;
  CHECK_THROWS_AS(prefs::fit_logistic(X.view(), nullptr, 0, labels.data(), nullptr, opts), InvalidArgument);
}

TEST_CASE("fit_user_offsets makes each user's penalised gradient vanish, in primal and dual systems") {
  std::mt19937_64 gen(44);
  const std::int64_t m = 20;
  for (std::int64_t per_user : {40, 3}) {  // more rows than features (primal), fewer (dual)
    const std::int64_t n_users = 4, n = per_user * n_users;
    const CsrMatrix X = random_codes(gen, n, m, 0.3, true, false);
    std::bernoulli_distribution coin(0.5);
    std::normal_distribution<float> normal;
    std::vector<float> labels(n), base(n);
    for (std::int64_t i = 0; i < n; ++i) {
      labels[i] = coin(gen) ? 1.0f : 0.0f;
      base[i] = 0.3f * normal(gen);
    }
    std::vector<std::int64_t> row_ptr(n_users + 1), rows(n);
    for (std::int64_t u = 0; u <= n_users; ++u) row_ptr[u] = u * per_user;
    for (std::int64_t i = 0; i < n; ++i) rows[i] = i;
    prefs::UserFitOptions opts;
    opts.shrinkage = 1.5;
    opts.tol = 1e-10;
    opts.max_iter = 100;
    std::vector<float> offsets(n_users * m, 7.0f);
    CHECK(prefs::fit_user_offsets(X.view(), base.data(), labels.data(), row_ptr.data(), rows.data(), n_users,
                                  offsets.data(), opts) == 0);
    for (std::int64_t u = 0; u < n_users; ++u) {
      std::vector<double> grad(m, 0.0);
      std::vector<bool> touched(m, false);
      for (std::int64_t i = row_ptr[u]; i < row_ptr[u + 1]; ++i) {
        double eta = base[i];
        for (std::int64_t p = X.indptr[i]; p < X.indptr[i + 1]; ++p) eta += X.values[p] * offsets[u * m + X.indices[p]];
        const double r = labels[i] - 1.0 / (1.0 + std::exp(-eta));
        for (std::int64_t p = X.indptr[i]; p < X.indptr[i + 1]; ++p) {
          grad[X.indices[p]] += X.values[p] * r;
          touched[X.indices[p]] = true;
        }
      }
      for (std::int64_t j = 0; j < m; ++j) {
        if (touched[j]) CHECK(std::fabs(grad[j] - opts.shrinkage * offsets[u * m + j]) < 1e-4);
        else CHECK(offsets[u * m + j] == 0.0f);
      }
    }
  }
}
