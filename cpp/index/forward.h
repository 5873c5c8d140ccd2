// The first steps of building either index kind: the codes' rows sorted by feature id with
// duplicates summed and zeros dropped (the forward index), and their columns.
#pragma once

#include <cstdint>
#include <vector>

#include "core/sparse.h"

namespace likeable {

struct ForwardRows {
  std::vector<std::int64_t> indptr;
  std::vector<std::int32_t> indices;
  std::vector<float> values;
  bool any_negative = false;
};

struct Columns {  // rows ascending within each column
  std::vector<std::int64_t> ptr;
  std::vector<std::int32_t> rows;
  std::vector<float> values;
};

ForwardRows build_forward(const CsrView& codes, int threads);
Columns build_columns(const ForwardRows& fwd, std::int64_t n_rows, std::int64_t n_cols);
// Each column's length.
std::vector<std::int64_t> column_lengths(const Columns& cols, std::int64_t n_cols);

}  // namespace likeable
