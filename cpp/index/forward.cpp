#include "index/forward.h"

#include <algorithm>
#include <atomic>
#include <utility>

#include "core/parallel.h"

namespace likeable {

ForwardRows build_forward(const CsrView& codes, int threads) {
  // Rows sorted by feature id, duplicates summed and zeros dropped (binary search by feature in
  // top_activations needs sorted rows; duplicate ids would be listed twice).
  const std::int64_t n = codes.n_rows;
  std::vector<std::int64_t> row_len(n, 0);
  std::vector<std::int32_t> idx(codes.nnz());
  std::vector<float> val(codes.nnz());
  std::atomic<bool> any_negative{false};
  parallel_for(n, 4096, threads, [&](std::int64_t begin, std::int64_t end, int) {
    std::vector<std::pair<std::int32_t, float>> row;
    bool negative = false;
    for (std::int64_t r = begin; r < end; ++r) {
      const std::int64_t b = codes.indptr[r], e = codes.indptr[r + 1];
      row.clear();
      for (std::int64_t i = b; i < e; ++i) row.emplace_back(codes.indices[i], codes.values[i]);
      std::sort(row.begin(), row.end(),
                [](const auto& x, const auto& y) { return x.first < y.first; });
      std::int64_t out = b;
      for (std::size_t i = 0; i < row.size();) {
        std::int32_t f = row[i].first;
        float v = 0;
        for (; i < row.size() && row[i].first == f; ++i) v += row[i].second;
        if (v != 0) {
          idx[out] = f;
          val[out] = v;
          negative |= v < 0;
          ++out;
        }
      }
      row_len[r] = out - b;
    }
    if (negative) any_negative.store(true);
  });
  ForwardRows fwd;
  fwd.any_negative = any_negative.load();
  fwd.indptr.assign(n + 1, 0);
  for (std::int64_t r = 0; r < n; ++r) fwd.indptr[r + 1] = fwd.indptr[r] + row_len[r];
  fwd.indices.resize(fwd.indptr[n]);
  fwd.values.resize(fwd.indptr[n]);
  parallel_for(n, 4096, threads, [&](std::int64_t begin, std::int64_t end, int) {
    for (std::int64_t r = begin; r < end; ++r) {
      std::copy_n(idx.data() + codes.indptr[r], row_len[r], fwd.indices.data() + fwd.indptr[r]);
      std::copy_n(val.data() + codes.indptr[r], row_len[r], fwd.values.data() + fwd.indptr[r]);
    }
  });
  return fwd;
}

Columns build_columns(const ForwardRows& fwd, std::int64_t n_rows, std::int64_t n_cols) {
  Columns cols;
  const std::int64_t nnz = fwd.indptr[n_rows];
  cols.ptr.assign(n_cols + 1, 0);
  for (std::int64_t i = 0; i < nnz; ++i) ++cols.ptr[fwd.indices[i] + 1];
  for (std::int64_t j = 0; j < n_cols; ++j) cols.ptr[j + 1] += cols.ptr[j];
  cols.rows.resize(nnz);
  cols.values.resize(nnz);
  std::vector<std::int64_t> fill(cols.ptr.begin(), cols.ptr.end() - 1);
  for (std::int64_t r = 0; r < n_rows; ++r) {  // rows ascending within each column
    for (std::int64_t i = fwd.indptr[r]; i < fwd.indptr[r + 1]; ++i) {
      const std::int64_t pos = fill[fwd.indices[i]]++;
      cols.rows[pos] = static_cast<std::int32_t>(r);
      cols.values[pos] = fwd.values[i];
    }
  }
  return cols;
}

std::vector<std::int64_t> column_lengths(const Columns& cols, std::int64_t n_cols) {
  std::vector<std::int64_t> lengths(n_cols);
  for (std::int64_t j = 0; j < n_cols; ++j) lengths[j] = cols.ptr[j + 1] - cols.ptr[j];
  return lengths;
}

}  // namespace likeable
