// Sparse codes in CSR form: a non-owning view (the arrays belong to numpy/CuPy) and an owner.
#pragma once

#include <cstdint>
#include <vector>

#include "core/errors.h"

namespace likeable {

struct CsrView {
  const std::int64_t* indptr = nullptr;  // n_rows + 1, non-decreasing, indptr[0] == 0
  const std::int32_t* indices = nullptr; // nnz, each in [0, n_cols)
  const float* values = nullptr;         // nnz
  std::int64_t n_rows = 0;
  std::int64_t n_cols = 0;

  std::int64_t nnz() const { return n_rows == 0 ? 0 : indptr[n_rows]; }
  std::int64_t row_begin(std::int64_t r) const { return indptr[r]; }
  std::int64_t row_end(std::int64_t r) const { return indptr[r + 1]; }
};

struct CsrMatrix {
  std::vector<std::int64_t> indptr{0};
  std::vector<std::int32_t> indices;
  std::vector<float> values;
  std::int64_t n_rows = 0;
  std::int64_t n_cols = 0;

  CsrView view() const {
    return CsrView{indptr.data(), indices.data(), values.data(), n_rows, n_cols};
  }
};

// Full structural check (O(nnz)); throws InvalidArgument naming the first problem.
void validate_csr(const CsrView& csr);

}  // namespace likeable
