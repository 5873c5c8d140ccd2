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

// Checked copies of caller-owned CSR arrays, one pass each (every element read once, checked
// in the copy): the core then works on arrays nobody else can change mid-call, so a check can
// never be undone between checking and use. Each throws InvalidArgument naming the first problem.
// indptr: n_rows + 1 entries, starting at 0, non-decreasing, ending at nnz.
void copy_indptr_checked(const std::int64_t* src, std::int64_t n_rows, std::int64_t nnz, std::int64_t* dst);
// indices: each in [0, n_cols).
void copy_indices_checked(const std::int32_t* src, std::int64_t n, std::int64_t n_cols, std::int32_t* dst);
// values: each finite.
void copy_values_checked(const float* src, std::int64_t n, float* dst);

// The largest |v| (0 for none).
float max_abs(const float* values, std::int64_t n);

}  // namespace likeable
