// Builds a small index through the installed headers and library and checks one search.
#include <cstdint>
#include <cstdio>
#include <vector>

#include "index/index.h"

int main() {
  std::vector<std::int64_t> indptr{0, 1, 2, 4};
  std::vector<std::int32_t> indices{0, 1, 0, 1};
  std::vector<float> values{1.0f, 2.0f, 0.5f, 0.5f};
  const likeable::CsrView codes{indptr.data(), indices.data(), values.data(), 3, 2};
  likeable::IndexParams params;  // every value given: IndexParams has no tuning defaults
  params.approximate = false;
  params.n_postings = 4000;
  params.block_fraction = 0.1;
  params.summary_energy = 0.4;
  params.doc_cut = 15;
  const auto index = likeable::SparseIndex::build(codes, params);
  const std::vector<float> query{1.0f, 1.0f};
  likeable::QueryBatch batch{nullptr, query.data(), 1, 2};
  likeable::SearchParams search;
  search.k = 2;
  std::vector<std::int64_t> ids(2);
  std::vector<float> scores(2);
  index->search(batch, search, ids.data(), scores.data());
  const bool ok = ids[0] == 1 && scores[0] == 2.0f && ids[1] == 0 && scores[1] == 1.0f;
  std::printf("%s: ids %lld %lld\n", ok ? "ok" : "wrong", static_cast<long long>(ids[0]), static_cast<long long>(ids[1]));
  return ok ? 0 : 1;
}
