// The reference every fast search path is tested against (hnswlib's BFIndex): float64 dot
// products of each query with every row, the same output layout and tie rule as
// SparseIndex::search.
#pragma once

#include <cstdint>

#include "index/index.h"

namespace likeable {

void brute_force_search(const CsrView& codes, const QueryBatch& queries, std::int64_t k, int threads,
                        std::int64_t* ids, float* scores);

}  // namespace likeable
