// encoder/: encode against a naive loop, decode, and training determinism.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "encoder/encoder.h"
#include "encoder/train.h"

using namespace likeable;

namespace {

struct Weights {
  std::int64_t d, M;
  std::vector<float> W_encT, b_enc, W_dec, b_dec, threshold;
  EncoderWeights view() const {
    return EncoderWeights{d, M, W_encT.data(), b_enc.data(), W_dec.data(), b_dec.data(), threshold.data()};
  }
};

Weights random_weights(std::mt19937_64& gen, std::int64_t d, std::int64_t M) {
  std::normal_distribution<float> normal;
  Weights w{d, M, {}, {}, {}, {}, {}};
  for (std::int64_t i = 0; i < M * d; ++i) w.W_encT.push_back(normal(gen));
  for (std::int64_t i = 0; i < M * d; ++i) w.W_dec.push_back(normal(gen));
  for (std::int64_t i = 0; i < M; ++i) w.b_enc.push_back(0.1f * normal(gen));
  for (std::int64_t i = 0; i < d; ++i) w.b_dec.push_back(0.1f * normal(gen));
  for (std::int64_t i = 0; i < M; ++i) w.threshold.push_back(std::fabs(normal(gen)));
  return w;
}

// Pre-activations of one row in float64: (x - b_dec) . W_enc[:, j] + b_enc[j].
std::vector<double> naive_pre(const Weights& w, const float* x) {
  std::vector<double> a(w.M);
  for (std::int64_t j = 0; j < w.M; ++j) {
    double s = w.b_enc[j];
    for (std::int64_t c = 0; c < w.d; ++c) s += (static_cast<double>(x[c]) - w.b_dec[c]) * w.W_encT[j * w.d + c];
    a[j] = s;
  }
  return a;
}

}  // namespace

TEST_CASE("encode keeps each row's k largest keys, as a naive loop finds them") {
  std::mt19937_64 gen(31);
  std::normal_distribution<float> normal;
  // M <= 256 folds b_dec into the bias, M > 256 centres the rows: both paths.
  struct Shape {
    std::int64_t d, M;
    int k;
  };
  for (const Shape& shape : {Shape{7, 23, 3}, Shape{16, 300, 9}, Shape{5, 8, 8}}) {
    const std::int64_t d = shape.d, M = shape.M;
    const int k = shape.k;
    const Weights w = random_weights(gen, d, M);
    const std::int64_t n = 37;
    std::vector<float> X(n * d);
    for (float& x : X) x = normal(gen);
    for (bool is_signed : {false, true}) {
      EncodeOptions opt;
      opt.k = k;
      opt.is_signed = is_signed;
      opt.threads = 2;
      opt.tile_rows = 5;  // several row blocks, a partial last one
      const CsrMatrix codes = encode(w.view(), X.data(), n, opt);
      REQUIRE(codes.n_rows == n);
      for (std::int64_t r = 0; r < n; ++r) {
        const std::vector<double> a = naive_pre(w, X.data() + r * d);
        std::vector<std::int64_t> order(M);
        for (std::int64_t j = 0; j < M; ++j) order[j] = j;
        auto key = [&](std::int64_t j) { return is_signed ? std::fabs(a[j]) : a[j]; };
        std::sort(order.begin(), order.end(), [&](auto x, auto y) { return key(x) > key(y) || (key(x) == key(y) && x < y); });
        std::vector<std::int64_t> want;
        for (int i = 0; i < k; ++i)
          if (key(order[i]) > 0) want.push_back(order[i]);
        std::sort(want.begin(), want.end());
        std::vector<std::int64_t> got(codes.indices.begin() + codes.indptr[r], codes.indices.begin() + codes.indptr[r + 1]);
        CHECK(got == want);
        for (std::int64_t p = codes.indptr[r]; p < codes.indptr[r + 1]; ++p)
          CHECK(codes.values[p] == doctest::Approx(a[codes.indices[p]]).epsilon(1e-4));
      }
    }
  }
}

TEST_CASE("threshold encode keeps every key above its feature's threshold") {
  std::mt19937_64 gen(32);
  std::normal_distribution<float> normal;
  const Weights w = random_weights(gen, 6, 19);
  std::vector<float> X(11 * 6);
  for (float& x : X) x = normal(gen);
  EncodeOptions opt;
  opt.mode = SelectMode::kThreshold;
  const CsrMatrix codes = encode(w.view(), X.data(), 11, opt);
  for (std::int64_t r = 0; r < 11; ++r) {
    const std::vector<double> a = naive_pre(w, X.data() + r * 6);
    std::vector<std::int64_t> want;
    for (std::int64_t j = 0; j < 19; ++j)
      if (a[j] > w.threshold[j] && std::fabs(a[j] - w.threshold[j]) > 1e-4) want.push_back(j);
    std::vector<std::int64_t> got(codes.indices.begin() + codes.indptr[r], codes.indices.begin() + codes.indptr[r + 1]);
    for (std::int64_t j : want) CHECK(std::find(got.begin(), got.end(), j) != got.end());
    CHECK(got.size() <= want.size() + 1);
  }
}

TEST_CASE("encode refuses bad k and non-finite input, and decode is codes @ W_dec + b_dec") {
  std::mt19937_64 gen(33);
  const Weights w = random_weights(gen, 4, 9);
  std::vector<float> X(3 * 4, 0.5f);
  EncodeOptions opt;
  opt.k = 10;
  CHECK_THROWS_AS(encode(w.view(), X.data(), 3, opt), InvalidArgument);
  opt.k = 2;
  X[5] = std::nanf("");
  CHECK_THROWS_WITH_AS(encode(w.view(), X.data(), 3, opt), doctest::Contains("row 1"), InvalidArgument);
  X[5] = 0.5f;
  const CsrMatrix codes = encode(w.view(), X.data(), 3, opt);
  std::vector<float> out(3 * 4);
  decode(w.view(), codes.view(), out.data(), 1);
  for (std::int64_t r = 0; r < 3; ++r) {
    for (std::int64_t c = 0; c < 4; ++c) {
      double want = w.b_dec[c];
      for (std::int64_t p = codes.indptr[r]; p < codes.indptr[r + 1]; ++p)
        want += static_cast<double>(codes.values[p]) * w.W_dec[codes.indices[p] * 4 + c];
      CHECK(out[r * 4 + c] == doctest::Approx(want).epsilon(1e-5));
    }
  }
}

TEST_CASE("training is deterministic for a thread count, and the same across thread counts") {
  std::mt19937_64 gen(34);
  std::normal_distribution<float> normal;
  const std::int64_t d = 12, M = 40, n = 90;
  std::vector<float> X(n * d);
  for (float& x : X) x = normal(gen);
  std::vector<std::int64_t> order(n);
  for (std::int64_t i = 0; i < n; ++i) order[i] = (i * 37) % n;
  auto train = [&](int threads) {
    Weights w = random_weights(gen, d, M);
    std::mt19937_64 same(35);
    w = random_weights(same, d, M);
    TrainConfig cfg;
    cfg.n_dims = d;
    cfg.n_features = M;
    cfg.k = 4;
    cfg.prefixes = {10, M};
    cfg.aux_k = 6;
    cfg.dead_after_rows = 20;
    cfg.lr = 1e-2f;
    cfg.threads = threads;
    SaeTrainer trainer(cfg);
    MutableWeights mw{w.W_encT.data(), w.b_enc.data(), w.W_dec.data(), w.b_dec.data(), nullptr};
    EpochStats last;
    for (int epoch = 0; epoch < 3; ++epoch) last = trainer.run_epoch(mw, X.data(), n, order.data(), n, 16, 1.0);
    CHECK(last.n_batches == 6);
    CHECK(std::isfinite(last.loss));
    return w.W_dec;
  };
  const auto one = train(1), again = train(1), two = train(2);
  CHECK(one == again);
  CHECK(one == two);
}
