// Small helpers shared by the C++ tests: random CSR codes and a scoped SIMD switch.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/simd.h"
#include "core/sparse.h"

namespace likeable::testing {

// n_rows x n_cols codes with each entry present with probability `density`; integer values in
// [1, 3] (optionally signed) keep float sums exact, so ties are real ties.
inline CsrMatrix random_codes(std::mt19937_64& gen, std::int64_t n_rows, std::int64_t n_cols, double density,
                              bool is_signed, bool integer = true) {
  std::bernoulli_distribution present(density);
  std::uniform_int_distribution<int> small(1, 3);
  std::uniform_real_distribution<float> unit(0.01f, 1.0f);
  std::bernoulli_distribution negative(0.5);
  CsrMatrix m;
  m.n_rows = n_rows;
  m.n_cols = n_cols;
  for (std::int64_t r = 0; r < n_rows; ++r) {
    for (std::int64_t c = 0; c < n_cols; ++c) {
      if (!present(gen)) continue;
      float v = integer ? static_cast<float>(small(gen)) : unit(gen);
      if (is_signed && negative(gen)) v = -v;
      m.indices.push_back(static_cast<std::int32_t>(c));
      m.values.push_back(v);
    }
    m.indptr.push_back(static_cast<std::int64_t>(m.indices.size()));
  }
  return m;
}

// A path in the temporary folder ($TMPDIR or /tmp), unique to this process.
inline std::string temp_path(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/likeable-test-" + std::to_string(::getpid()) +
         "-" + name;
}

// Dense row-major copy.
inline std::vector<float> to_dense(const CsrMatrix& m) {
  std::vector<float> out(static_cast<std::size_t>(m.n_rows * m.n_cols), 0.0f);
  for (std::int64_t r = 0; r < m.n_rows; ++r)
    for (std::int64_t p = m.indptr[r]; p < m.indptr[r + 1]; ++p) out[r * m.n_cols + m.indices[p]] += m.values[p];
  return out;
}

// Sets the core's SIMD switch for a scope.
class SimdScope {
 public:
  explicit SimdScope(bool enabled) : before_(simd::enabled()) { simd::set_enabled(enabled); }
  ~SimdScope() { simd::set_enabled(before_); }
  SimdScope(const SimdScope&) = delete;
  SimdScope& operator=(const SimdScope&) = delete;

 private:
  bool before_;
};

}  // namespace likeable::testing
