// Host entry points of the GPU kernels. Every pointer is device memory owned by the caller
// (CuPy arrays in the Python layer); every call is asynchronous on `stream` and checked.
#pragma once

#include <cstdint>

#include "common.cuh"
#include "core/sparse.h"

namespace likeable::gpu {

constexpr int kMaxGpuK = 2048;

// The core's CSR view over device memory (indptr, indices, values in GPU memory: the host must
// never dereference them, e.g. through nnz()).
using CsrDevice = ::likeable::CsrView;

// One tile of pre-activations (n_rows x n_features, row-major float32, without the bias) and
// where its rows' codes go: output row first_row + r for tile row r.
struct EncodeTile {
  const float* pre = nullptr;
  const float* bias = nullptr;  // n_features: b_enc - b_dec @ W_enc (folded on the host, float64)
  std::int64_t n_rows = 0, n_features = 0, first_row = 0;
  int k = 0;
  bool is_signed = false;
  std::int32_t* ids = nullptr;            // TopK: total_rows x k, each row's ids increasing
  float* values = nullptr;                // TopK: total_rows x k
  std::int32_t* counts = nullptr;         // TopK: total_rows, entries kept (< k when fewer keys are positive)
  unsigned long long* bad_row = nullptr;  // min row with a non-finite pre-activation (init: ~0)
};

// TopK mode: the k largest positive keys per row (|a| when signed), ties to the smaller id.
void encode_select_tile(const EncodeTile& tile, cudaStream_t stream);

// Threshold mode (BatchTopK inference): entries with key > 0 and key > threshold[j].
// write = false: row_counts[row] = entries per row (bad_row as above); write = true: fills
// tile.ids/tile.values (CSR arrays) from indptr, the exclusive scan of the counts.
void encode_threshold_tile(const EncodeTile& tile, const float* threshold, bool write, const std::int64_t* indptr,
                           std::int64_t* row_counts, cudaStream_t stream);

// out (n_rows x n_dims) = codes @ W_dec + b_dec.
void decode(const CsrDevice& codes, const float* W_dec, const float* b_dec, std::int64_t n_dims, float* out,
            cudaStream_t stream);

// out (n_features x n_cols) with out[j, c] = base[j] + src[rows[c], j]: a transposed gather of
// dense rows (user weights = population + offset). base may be null (0); rows may be null
// (row c = c); rows[c] < 0 takes base alone.
void gather_transpose(const float* base, const float* src, std::int64_t src_ld, const std::int64_t* rows,
                      std::int64_t n_cols, std::int64_t n_features, float* out, cudaStream_t stream);

// out[c, i] = sum over entries e of sparse row i of values[e] * dense_t[indices[e], c], for the
// n_cols columns of dense_t (n_features x n_cols, row-major); out is n_cols x n_rows (ld out_ld).
void sparse_dense_scores(const CsrDevice& rows, const float* dense_t, std::int64_t n_cols, float* out,
                         std::int64_t out_ld, cudaStream_t stream);

// out[i] = base_logit[i] + pairs_i . (population + offsets[user_rows[i]]), or its sigmoid.
void predict_pairs(const float* population, const float* offsets, std::int64_t n_features,
                   const std::int64_t* user_rows, const CsrDevice& pairs, const float* base_logit, bool logits,
                   float* out, cudaStream_t stream);

// Top k of each row of scores (n_rows x length, ld): ids/values by decreasing score (ties: the
// smaller id), counts[row] = min(k, length). Slots past the count are left as they were.
void select_topk(const float* scores, std::int64_t n_rows, std::int64_t length, std::int64_t ld, int k,
                 std::int32_t* ids, float* values, std::int32_t* counts, cudaStream_t stream);

// out (n_rows x n_features, zeroed by the caller) += the CSR rows.
void densify(const CsrDevice& rows, std::int64_t n_features, float* out, cudaStream_t stream);

int select_warps_per_block(int capacity);

}  // namespace likeable::gpu
