// Sparse encoding on the GPU, one tile of rows at a time: the caller fills the tile's
// pre-activations with cuBLAS (fp32, or bf16/fp16 inputs with fp32 accumulation and fp32
// output), and these kernels select each row's top k from the tile while it is still in L2.
// The n x M matrix never exists in full: extra memory is one tile plus the n x k output.
#include <algorithm>
#include <cmath>

#include "kernels.h"
#include "select.cuh"

namespace likeable::gpu {
namespace {

// Entry j of one tile row: pre-activation (+ folded bias), keyed by |a| (signed) or a, and
// eligible only when the key is positive -- the CPU encoder's rule.
template <bool Signed>
struct EncodeRow {
  const float* pre;
  const float* bias;
  bool bad = false;  // a non-finite pre-activation: X held NaN/Inf or the product overflowed

  __device__ std::uint32_t key(std::int64_t j) {
    const float a = pre[j] + bias[j];
    bad |= !isfinite(a);
    const float key = Signed ? fabsf(a) : a;
    return key > 0.0f ? orderable(key) : 0u;
  }
  __device__ float value(std::int64_t j) const { return pre[j] + bias[j]; }
};

template <int R, bool Signed>
__global__ void encode_select_kernel(const float* __restrict__ pre, std::int64_t n_rows, std::int64_t n_features,
                                     const float* __restrict__ bias, int k, int capacity,
                                     std::int32_t* __restrict__ ids, float* __restrict__ values,
                                     std::int32_t* __restrict__ counts, std::int64_t first_row,
                                     unsigned long long* __restrict__ bad_row) {
  std::uint32_t* cand_key;
  std::int32_t* cand_id;
  warp_candidate_buffer(capacity, cand_key, cand_id);
  const int warps = blockDim.x / 32, warp = threadIdx.x / 32;
  for (std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * warps + warp; row < n_rows;
       row += static_cast<std::int64_t>(gridDim.x) * warps) {
    EncodeRow<Signed> src{pre + row * n_features, bias};
    const std::int64_t out_row = first_row + row;
    const bool ok = select_row<R, false>(src, n_features, k, capacity, cand_key, cand_id, ids + out_row * k,
                                         values + out_row * k, counts + out_row);
    if (!ok && (threadIdx.x & 31) == 0) atomicMin(bad_row, static_cast<unsigned long long>(out_row));
  }
}

template <bool Signed>
__device__ __forceinline__ bool passes_threshold(float a, float threshold) {
  const float key = Signed ? fabsf(a) : a;
  return key > 0.0f && key > threshold;
}

// Threshold (BatchTopK inference) mode, pass 1: entries per row.
template <bool Signed>
__global__ void threshold_count_kernel(const float* __restrict__ pre, std::int64_t n_rows, std::int64_t n_features,
                                       const float* __restrict__ bias, const float* __restrict__ threshold,
                                       std::int64_t* __restrict__ counts, std::int64_t first_row,
                                       unsigned long long* __restrict__ bad_row) {
  const int warps = blockDim.x / 32, warp = threadIdx.x / 32, lane = threadIdx.x & 31;
  for (std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * warps + warp; row < n_rows;
       row += static_cast<std::int64_t>(gridDim.x) * warps) {
    const float* x = pre + row * n_features;
    std::int64_t count = 0;
    bool bad = false;
    for (std::int64_t base = 0; base < n_features; base += 32) {
      const std::int64_t j = base + lane;
      bool hit = false;
      if (j < n_features) {
        const float a = x[j] + bias[j];
        bad |= !isfinite(a);
        hit = passes_threshold<Signed>(a, threshold[j]);
      }
      count += __popc(__ballot_sync(kFullMask, hit));
    }
    if (lane == 0) counts[first_row + row] = count;
    if (__any_sync(kFullMask, bad) && lane == 0)
      atomicMin(bad_row, static_cast<unsigned long long>(first_row + row));
  }
}

// Pass 2: writes each row's entries, in id order, from indptr[row].
template <bool Signed>
__global__ void threshold_write_kernel(const float* __restrict__ pre, std::int64_t n_rows, std::int64_t n_features,
                                       const float* __restrict__ bias, const float* __restrict__ threshold,
                                       const std::int64_t* __restrict__ indptr, std::int32_t* __restrict__ ids,
                                       float* __restrict__ values, std::int64_t first_row) {
  const int warps = blockDim.x / 32, warp = threadIdx.x / 32, lane = threadIdx.x & 31;
  const unsigned below = lanes_below();
  for (std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * warps + warp; row < n_rows;
       row += static_cast<std::int64_t>(gridDim.x) * warps) {
    const float* x = pre + row * n_features;
    std::int64_t pos = indptr[first_row + row];
    const std::int64_t end = indptr[first_row + row + 1];
    for (std::int64_t base = 0; base < n_features; base += 32) {
      const std::int64_t j = base + lane;
      float a = 0.0f;
      bool hit = false;
      if (j < n_features) {
        a = x[j] + bias[j];
        hit = passes_threshold<Signed>(a, threshold[j]);
      }
      const unsigned mask = __ballot_sync(kFullMask, hit);
      const std::int64_t at = pos + __popc(mask & below);
      if (hit && at < end) {  // `end` guards against a count pass that disagreed
        ids[at] = static_cast<std::int32_t>(j);
        values[at] = a;
      }
      pos += __popc(mask);
    }
  }
}

// out (n_rows x d) = codes @ W_dec + b_dec; one warp per row, 128 columns at a time.
__global__ void decode_kernel(const std::int64_t* __restrict__ indptr, const std::int32_t* __restrict__ indices,
                              const float* __restrict__ values, std::int64_t n_rows, const float* __restrict__ W_dec,
                              const float* __restrict__ b_dec, std::int64_t n_dims, float* __restrict__ out) {
  const int warps = blockDim.x / 32, warp = threadIdx.x / 32, lane = threadIdx.x & 31;
  for (std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * warps + warp; row < n_rows;
       row += static_cast<std::int64_t>(gridDim.x) * warps) {
    const std::int64_t begin = indptr[row], end = indptr[row + 1];
    for (std::int64_t c0 = 0; c0 < n_dims; c0 += 128) {
      float acc[4];
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const std::int64_t c = c0 + q * 32 + lane;
        acc[q] = c < n_dims ? b_dec[c] : 0.0f;
      }
      for (std::int64_t e = begin; e < end; ++e) {
        const float z = values[e];
        const float* w = W_dec + static_cast<std::int64_t>(indices[e]) * n_dims;
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          const std::int64_t c = c0 + q * 32 + lane;
          if (c < n_dims) acc[q] += z * w[c];
        }
      }
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const std::int64_t c = c0 + q * 32 + lane;
        if (c < n_dims) out[row * n_dims + c] = acc[q];
      }
    }
  }
}

template <bool Signed>
void launch_select(const EncodeTile& t, int capacity, int warps, cudaStream_t stream) {
  const std::size_t shared = static_cast<std::size_t>(warps) * capacity * 8;
  with_segments_per_lane(t.k, [&](auto segments) {
    encode_select_kernel<decltype(segments)::value, Signed>
        <<<grid_blocks((t.n_rows + warps - 1) / warps), warps * 32, shared, stream>>>(
            t.pre, t.n_rows, t.n_features, t.bias, t.k, capacity, t.ids, t.values, t.counts, t.first_row, t.bad_row);
  });
  LK_LAUNCHED("encode_select_kernel");
}

void check_tile(const EncodeTile& t) {
  require(t.n_rows >= 0 && t.n_features >= 1 && t.first_row >= 0, "encode: bad tile shape");
  require(t.n_features <= INT32_MAX, "encode: n_features must fit int32 ids");
}

}  // namespace

// Warps per block for a candidate buffer of `capacity` entries: at most 4, within the 48 KB of
// shared memory every block may use without opting in.
int select_warps_per_block(int capacity) {
  return std::max(1, std::min(4, static_cast<int>((48 * 1024) / (static_cast<std::size_t>(capacity) * 8))));
}

void encode_select_tile(const EncodeTile& t, cudaStream_t stream) {
  check_tile(t);
  require(t.k >= 1 && t.k <= t.n_features && t.k <= kMaxGpuK,
          "encode: k must be in [1, min(n_features, " + std::to_string(kMaxGpuK) + ")]");
  if (t.n_rows == 0) return;
  const int capacity = candidate_capacity(t.k);
  const int warps = select_warps_per_block(capacity);
  if (t.is_signed)
    launch_select<true>(t, capacity, warps, stream);
  else
    launch_select<false>(t, capacity, warps, stream);
}

void encode_threshold_tile(const EncodeTile& t, const float* threshold, bool write, const std::int64_t* indptr,
                           std::int64_t* row_counts, cudaStream_t stream) {
  check_tile(t);
  if (t.n_rows == 0) return;
  constexpr int kWarps = 8;
  const int blocks = grid_blocks((t.n_rows + kWarps - 1) / kWarps);
  if (!write) {
    if (t.is_signed)
      threshold_count_kernel<true><<<blocks, kWarps * 32, 0, stream>>>(t.pre, t.n_rows, t.n_features, t.bias,
                                                                       threshold, row_counts, t.first_row, t.bad_row);
    else
      threshold_count_kernel<false><<<blocks, kWarps * 32, 0, stream>>>(t.pre, t.n_rows, t.n_features, t.bias,
                                                                        threshold, row_counts, t.first_row, t.bad_row);
    LK_LAUNCHED("threshold_count_kernel");
  } else {
    if (t.is_signed)
      threshold_write_kernel<true><<<blocks, kWarps * 32, 0, stream>>>(t.pre, t.n_rows, t.n_features, t.bias,
                                                                       threshold, indptr, t.ids, t.values, t.first_row);
    else
      threshold_write_kernel<false><<<blocks, kWarps * 32, 0, stream>>>(t.pre, t.n_rows, t.n_features, t.bias,
                                                                        threshold, indptr, t.ids, t.values, t.first_row);
    LK_LAUNCHED("threshold_write_kernel");
  }
}

void decode(const CsrDevice& codes, const float* W_dec, const float* b_dec, std::int64_t n_dims, float* out,
            cudaStream_t stream) {
  if (codes.n_rows == 0 || n_dims == 0) return;
  constexpr int kWarps = 8;
  decode_kernel<<<grid_blocks((codes.n_rows + kWarps - 1) / kWarps), kWarps * 32, 0, stream>>>(
      codes.indptr, codes.indices, codes.values, codes.n_rows, W_dec, b_dec, n_dims, out);
  LK_LAUNCHED("decode_kernel");
}

}  // namespace likeable::gpu
