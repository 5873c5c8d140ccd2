// index/: both kinds against the brute-force reference, the SIMD and portable kernels, files.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/io.h"
#include "index/brute_force.h"
#include "index/index.h"
#include "helpers.h"

using namespace likeable;
using testing::random_codes;

namespace {

struct Results {
  std::vector<std::int64_t> ids;
  std::vector<float> scores;
};

Results search(const SparseIndex& index, const CsrMatrix& queries, std::int64_t k, std::int64_t query_cut = 0,
               double heap_factor = 1.0, int threads = 2) {
  const CsrView q = queries.view();
  QueryBatch batch{&q, nullptr, q.n_rows, q.n_cols};
  SearchParams p;
  p.k = k;
  p.query_cut = query_cut;
  p.heap_factor = heap_factor;
  p.threads = threads;
  Results r{std::vector<std::int64_t>(q.n_rows * k), std::vector<float>(q.n_rows * k)};
  index.search(batch, p, r.ids.data(), r.scores.data());
  return r;
}

Results reference(const CsrMatrix& codes, const CsrMatrix& queries, std::int64_t k) {
  const CsrView c = codes.view(), q = queries.view();
  QueryBatch batch{&q, nullptr, q.n_rows, q.n_cols};
  Results r{std::vector<std::int64_t>(q.n_rows * k), std::vector<float>(q.n_rows * k)};
  brute_force_search(c, batch, k, 1, r.ids.data(), r.scores.data());
  return r;
}

// likeable.SparseIndex's defaults (IndexParams has none: the caller passes every value).
IndexParams params(bool approximate) {
  IndexParams p;
  p.approximate = approximate;
  p.n_postings = 4000;
  p.block_fraction = 0.1;
  p.summary_energy = 0.4;
  p.doc_cut = 15;
  return p;
}

}  // namespace

TEST_CASE("the brute-force reference scores every row in float64, ties to the lower row") {
  CsrMatrix codes;
  codes.n_rows = 4;
  codes.n_cols = 3;
  codes.indptr = {0, 1, 2, 3, 4};
  codes.indices = {0, 1, 0, 2};
  codes.values = {2.0f, 5.0f, 2.0f, -1.0f};
  CsrMatrix q;
  q.n_rows = 1;
  q.n_cols = 3;
  q.indptr = {0, 2};
  q.indices = {0, 2};
  q.values = {1.0f, 1.0f};
  const Results r = reference(codes, q, 6);
  CHECK(r.ids == std::vector<std::int64_t>{0, 2, 1, 3, -1, -1});
  CHECK(r.scores[0] == 2.0f);
  CHECK(r.scores[2] == 0.0f);
  CHECK(r.scores[3] == -1.0f);
  CHECK(r.scores[5] == -std::numeric_limits<float>::infinity());
}

TEST_CASE("an exact index finds what brute force finds, ties and all, with SIMD and portable kernels") {
  std::mt19937_64 gen(21);
  for (bool is_signed : {false, true}) {
    for (std::int64_t n_rows : {std::int64_t{1}, std::int64_t{17}, std::int64_t{300}}) {
      const CsrMatrix codes = random_codes(gen, n_rows, 40, 0.2, is_signed);
      const CsrMatrix queries = random_codes(gen, 9, 40, 0.15, is_signed);
      const auto index = SparseIndex::build(codes.view(), params(false));
      CHECK_FALSE(index->approximate());
      CHECK(index->nnz() == static_cast<std::int64_t>(codes.indices.size()));
      for (std::int64_t k : {std::int64_t{1}, std::int64_t{5}, n_rows + 2}) {
        const Results want = reference(codes, queries, k);
        for (bool enabled : {true, false}) {
          testing::SimdScope scope(enabled);
          const Results got = search(*index, queries, k);
          CHECK(got.ids == want.ids);
          CHECK(got.scores == want.scores);
        }
      }
    }
  }
}

TEST_CASE("an approximate index with lossless settings finds every positive top-k row") {
  std::mt19937_64 gen(22);
  for (bool is_signed : {false, true}) {
    const CsrMatrix codes = random_codes(gen, 400, 60, 0.1, is_signed);
    const CsrMatrix queries = random_codes(gen, 12, 60, 0.2, is_signed);
    IndexParams p = params(true);
    p.n_postings = 10000;
    p.summary_energy = 1.0;
    p.block_fraction = 0.2;
    const auto index = SparseIndex::build(codes.view(), p);
    CHECK(index->approximate());
    CHECK(index->n_blocks() > 0);
    CHECK(index->n_postings_stored() == static_cast<std::int64_t>(codes.indices.size()));
    const std::int64_t k = 5;
    const Results want = reference(codes, queries, k);
    // Integer values are exact in halves, so scores match exactly; rows of score <= 0 may lie in
    // no visited block.
    const Results got = search(*index, queries, k);
    for (std::int64_t q = 0; q < queries.n_rows; ++q) {
      for (std::int64_t i = 0; i < k; ++i) {
        if (want.scores[q * k + i] <= 0) break;
        CHECK(got.scores[q * k + i] == want.scores[q * k + i]);
        CHECK(got.ids[q * k + i] == want.ids[q * k + i]);
      }
    }
  }
}

TEST_CASE("approximate search with SIMD and with portable kernels give the same rows and scores") {
  std::mt19937_64 gen(23);
  for (bool is_signed : {false, true}) {
    const CsrMatrix codes = random_codes(gen, 300, 120, 0.25, is_signed);
    const CsrMatrix queries = random_codes(gen, 20, 120, 0.2, is_signed);
    IndexParams p = params(true);
    p.n_postings = 40;
    p.summary_energy = 0.5;
    const auto index = SparseIndex::build(codes.view(), p);
    Results fast, portable;
    {
      testing::SimdScope scope(true);
      fast = search(*index, queries, 7, 5);
    }
    {
      testing::SimdScope scope(false);
      portable = search(*index, queries, 7, 5);
    }
    CHECK(fast.ids == portable.ids);
    CHECK(fast.scores == portable.scores);
  }
}

TEST_CASE("results do not depend on the thread count") {
  std::mt19937_64 gen(24);
  const CsrMatrix codes = random_codes(gen, 500, 50, 0.1, true, false);
  const CsrMatrix queries = random_codes(gen, 30, 50, 0.2, true, false);
  for (bool approximate : {false, true}) {
    IndexParams p = params(approximate);
    p.n_postings = 30;
    p.threads = 1;
    const auto one = SparseIndex::build(codes.view(), p);
    p.threads = 3;
    const auto three = SparseIndex::build(codes.view(), p);
    CHECK(one->to_bytes() == three->to_bytes());
    const Results a = search(*one, queries, 6, 4, 0.9, 1), b = search(*three, queries, 6, 4, 0.9, 3);
    CHECK(a.ids == b.ids);
    CHECK(a.scores == b.scores);
  }
}

TEST_CASE("top activations list a feature's strongest rows of one sign") {
  std::mt19937_64 gen(25);
  const CsrMatrix codes = random_codes(gen, 200, 10, 0.3, true);
  const std::vector<float> dense = testing::to_dense(codes);
  for (bool approximate : {false, true}) {
    IndexParams p = params(approximate);
    p.n_postings = 5;  // pruned lists: the approximate index falls back to a full pass
    const auto index = SparseIndex::build(codes.view(), p);
    for (int sign : {1, -1}) {
      std::vector<std::int64_t> rows;
      std::vector<float> values;
      index->top_activations(3, 8, sign, rows, values);
      REQUIRE(rows.size() == 8);
      for (std::size_t i = 0; i < rows.size(); ++i) {
        CHECK(values[i] == dense[rows[i] * 10 + 3]);
        CHECK(values[i] * sign > 0);
        if (i > 0) CHECK((values[i - 1] * sign > values[i] * sign || (values[i - 1] == values[i] && rows[i - 1] < rows[i])));
      }
      int stronger = 0;  // no row outside the list beats its last entry
      for (std::int64_t r = 0; r < 200; ++r) stronger += dense[r * 10 + 3] * sign > values.back() * sign;
      CHECK(stronger <= 8);
    }
    std::vector<std::int64_t> rows;
    std::vector<float> values;
    CHECK_THROWS_AS(index->top_activations(10, 1, 1, rows, values), InvalidArgument);
    CHECK_THROWS_AS(index->top_activations(0, 1, 0, rows, values), InvalidArgument);
  }
}

TEST_CASE("indexes save and load to the same bytes and the same results") {
  std::mt19937_64 gen(26);
  const CsrMatrix codes = random_codes(gen, 250, 30, 0.15, true, false);
  const CsrMatrix queries = random_codes(gen, 10, 30, 0.2, true, false);
  for (bool approximate : {false, true}) {
    const auto index = SparseIndex::build(codes.view(), params(approximate));
    const std::vector<std::uint8_t> bytes = index->to_bytes();
    CHECK(bytes.size() == index->file_bytes());
    const auto loaded = SparseIndex::load(io::copy_bytes(bytes.data(), bytes.size()), "<bytes>", true);
    CHECK(loaded->approximate() == approximate);
    CHECK(loaded->to_bytes() == bytes);
    const Results a = search(*index, queries, 4), b = search(*loaded, queries, 4);
    CHECK(a.ids == b.ids);
    CHECK(a.scores == b.scores);
  }
}

TEST_CASE("every recorded index file loads, searches and re-saves as the current version") {
  for (const char* name : {"index_v1.sidx", "index_v2_signed.sidx", "index_v2_unsigned.sidx", "index_v3_signed.sidx",
                           "index_v3_unsigned.sidx"}) {
    CAPTURE(name);
    const std::string path = std::string(LIKEABLE_TEST_DATA) + "/" + name;
    const auto index = SparseIndex::load(io::read_file(path), path, true);
    const std::vector<std::uint8_t> bytes = index->to_bytes();
    const auto again = SparseIndex::load(io::copy_bytes(bytes.data(), bytes.size()), "<bytes>", true);
    CHECK(again->to_bytes() == bytes);
    CHECK(again->n_rows() == index->n_rows());
    std::mt19937_64 gen(27);
    const CsrMatrix queries = random_codes(gen, 5, index->n_cols(), 0.3, index->is_signed(), false);
    const Results a = search(*index, queries, 3), b = search(*again, queries, 3);
    CHECK(a.ids == b.ids);
    CHECK(a.scores == b.scores);
  }
}

TEST_CASE("bad search arguments are InvalidArgument") {
  std::mt19937_64 gen(28);
  const CsrMatrix codes = random_codes(gen, 20, 8, 0.3, false);
  const auto index = SparseIndex::build(codes.view(), params(true));
  const CsrMatrix wrong = random_codes(gen, 2, 9, 0.3, false);
  CHECK_THROWS_AS(search(*index, wrong, 3), InvalidArgument);
  CHECK_THROWS_AS(search(*index, codes, 0), InvalidArgument);
  CHECK_THROWS_AS(search(*index, codes, 3, 0, 0.0), InvalidArgument);
  IndexParams p = params(true);
  p.block_fraction = 0;
  CHECK_THROWS_AS(SparseIndex::build(codes.view(), p), InvalidArgument);
  CHECK_THROWS_AS(SparseIndex::build(codes.view(), IndexParams{}), InvalidArgument);  // values left unset
}

TEST_CASE("scores that could overflow float32 are refused by every search path") {
  CsrMatrix codes;
  codes.n_rows = 2;
  codes.n_cols = 3;
  codes.indptr = {0, 2, 4};
  codes.indices = {0, 1, 0, 2};
  codes.values = {3e38f, 3e38f, 1.0f, 2.0f};
  CsrMatrix query;
  query.n_rows = 1;
  query.n_cols = 3;
  query.indptr = {0, 3};
  query.indices = {0, 1, 2};
  query.values = {1.0f, 1.0f, 1.0f};
  for (bool approximate : {false, true}) {
    const auto index = SparseIndex::build(codes.view(), params(approximate));
    CHECK(index->common().max_abs_value == 3e38f);
    CHECK_THROWS_WITH_AS(search(*index, query, 2), doctest::Contains("float32"), InvalidArgument);
  }
  CHECK_THROWS_WITH_AS(reference(codes, query, 2), doctest::Contains("float32"), InvalidArgument);
  codes.values = {1.0f, 2.0f, 1.0f, 2.0f};
  const auto fine = SparseIndex::build(codes.view(), params(false));
  const Results r = search(*fine, query, 2);
  CHECK(r.scores[0] == 3.0f);
  CHECK(r.scores[1] == 3.0f);
}
