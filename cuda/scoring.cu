// Sparse x dense kernels for scoring and exact search, and the shared runtime helpers.
//
// Scores of many dense vectors (users' weights, queries) against sparse rows (items, indexed
// rows) cost nnz x n_vectors multiply-adds; as a dense GEMM they would cost n_features / (nnz
// per row) times more. The dense side is held transposed (feature-major), so one feature's
// weights for a tile of users are contiguous and every gather is a coalesced row read.
#include <algorithm>
#include <mutex>
#include <unordered_map>

#include "kernels.h"
#include "select.cuh"

namespace likeable::gpu {

int grid_blocks(std::int64_t blocks_needed) {
  static std::mutex lock;
  static std::unordered_map<int, int> sm_count;
  int device = 0;
  LK_CUDA(cudaGetDevice(&device));
  int sms = 0;
  {
    std::lock_guard<std::mutex> guard(lock);
    auto it = sm_count.find(device);
    if (it == sm_count.end()) {
      LK_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
      sm_count.emplace(device, sms);
    } else {
      sms = it->second;
    }
  }
  return static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(blocks_needed, sms * 32LL)));
}

namespace {

constexpr int kTileCols = 128;  // dense columns (users, queries) per block
constexpr int kTileRows = 32;   // sparse rows (items) per block
constexpr int kGroups = 2;      // thread groups of kTileCols, each taking every kGroups-th row
constexpr int kRowsPerThread = kTileRows / kGroups;

__global__ void __launch_bounds__(kTileCols* kGroups)
    sparse_dense_kernel(const std::int64_t* __restrict__ indptr, const std::int32_t* __restrict__ indices,
                        const float* __restrict__ values, std::int64_t n_rows, const float* __restrict__ dense_t,
                        std::int64_t n_cols, float* __restrict__ out, std::int64_t out_ld) {
  __shared__ float tile[kTileCols][kTileRows + 1];  // +1: conflict-free column writes
  const std::int64_t row0 = static_cast<std::int64_t>(blockIdx.x) * kTileRows;
  const std::int64_t col0 = static_cast<std::int64_t>(blockIdx.y) * kTileCols;
  const int tc = threadIdx.x % kTileCols, group = threadIdx.x / kTileCols;
  const std::int64_t col = col0 + tc;
#pragma unroll
  for (int t = 0; t < kRowsPerThread; ++t) {
    const int local = group + kGroups * t;
    const std::int64_t row = row0 + local;
    float acc = 0.0f;
    if (row < n_rows && col < n_cols) {
      const std::int64_t end = indptr[row + 1];
      for (std::int64_t e = indptr[row]; e < end; ++e)
        acc += values[e] * dense_t[static_cast<std::int64_t>(indices[e]) * n_cols + col];
    }
    tile[tc][local] = acc;
  }
  __syncthreads();
  // Write the tile out row by row of `out`: each warp stores kTileRows contiguous floats.
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, n_warps = blockDim.x / 32;
  for (int c = warp; c < kTileCols; c += n_warps) {
    const std::int64_t oc = col0 + c, orow = row0 + lane;
    if (oc < n_cols && orow < n_rows) out[oc * out_ld + orow] = tile[c][lane];
  }
}

constexpr int kTranspose = 32;

__global__ void gather_transpose_kernel(const float* __restrict__ base, const float* __restrict__ src,
                                        std::int64_t src_ld, const std::int64_t* __restrict__ rows,
                                        std::int64_t n_cols, std::int64_t n_features, float* __restrict__ out) {
  __shared__ float tile[kTranspose][kTranspose + 1];
  const std::int64_t j0 = static_cast<std::int64_t>(blockIdx.x) * kTranspose;
  const std::int64_t c0 = static_cast<std::int64_t>(blockIdx.y) * kTranspose;
  // Read: threadIdx.x walks features (contiguous in src), threadIdx.y walks columns.
  for (int dy = threadIdx.y; dy < kTranspose; dy += blockDim.y) {
    const std::int64_t c = c0 + dy, j = j0 + threadIdx.x;
    float v = 0.0f;
    if (c < n_cols && j < n_features) {
      const std::int64_t r = rows ? rows[c] : c;
      v = (base ? base[j] : 0.0f) + (r >= 0 ? src[r * src_ld + j] : 0.0f);
    }
    tile[dy][threadIdx.x] = v;
  }
  __syncthreads();
  // Write: threadIdx.x walks columns (contiguous in out).
  for (int dy = threadIdx.y; dy < kTranspose; dy += blockDim.y) {
    const std::int64_t j = j0 + dy, c = c0 + threadIdx.x;
    if (j < n_features && c < n_cols) out[j * n_cols + c] = tile[threadIdx.x][dy];
  }
}

__global__ void predict_pairs_kernel(const float* __restrict__ population, const float* __restrict__ offsets,
                                     std::int64_t n_features, const std::int64_t* __restrict__ user_rows,
                                     const std::int64_t* __restrict__ indptr, const std::int32_t* __restrict__ indices,
                                     const float* __restrict__ values, std::int64_t n_rows,
                                     const float* __restrict__ base_logit, bool logits, float* __restrict__ out) {
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n_rows;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t u = user_rows ? user_rows[i] : -1;
    const float* offset = u >= 0 ? offsets + u * n_features : nullptr;
    float z = base_logit ? base_logit[i] : 0.0f;
    for (std::int64_t e = indptr[i]; e < indptr[i + 1]; ++e) {
      const std::int32_t j = indices[e];
      z += values[e] * (population[j] + (offset ? offset[j] : 0.0f));
    }
    out[i] = logits ? z : 1.0f / (1.0f + expf(-z));
  }
}

struct ScoreRow {
  const float* scores;
  bool bad = false;  // search scores are never refused
  __device__ std::uint32_t key(std::int64_t j) { return orderable(scores[j]); }
  __device__ float value(std::int64_t j) const { return scores[j]; }
};

template <int R>
__global__ void select_topk_kernel(const float* __restrict__ scores, std::int64_t n_rows, std::int64_t length,
                                   std::int64_t ld, int k, int capacity, std::int32_t* __restrict__ ids,
                                   float* __restrict__ values, std::int32_t* __restrict__ counts) {
  std::uint32_t* cand_key;
  std::int32_t* cand_id;
  warp_candidate_buffer(capacity, cand_key, cand_id);
  const int warps = blockDim.x / 32, warp = threadIdx.x / 32;
  for (std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * warps + warp; row < n_rows;
       row += static_cast<std::int64_t>(gridDim.x) * warps) {
    ScoreRow src{scores + row * ld};
    select_row<R, true>(src, length, k, capacity, cand_key, cand_id, ids + row * k, values + row * k, counts + row);
  }
}

__global__ void densify_kernel(const std::int64_t* __restrict__ indptr, const std::int32_t* __restrict__ indices,
                               const float* __restrict__ values, std::int64_t n_rows, std::int64_t n_features,
                               float* __restrict__ out) {
  const int warps = blockDim.x / 32, warp = threadIdx.x / 32, lane = threadIdx.x & 31;
  for (std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * warps + warp; row < n_rows;
       row += static_cast<std::int64_t>(gridDim.x) * warps) {
    for (std::int64_t e = indptr[row] + lane; e < indptr[row + 1]; e += 32)
      atomicAdd(out + row * n_features + indices[e], values[e]);  // duplicates add, as in scipy
  }
}

}  // namespace

void gather_transpose(const float* base, const float* src, std::int64_t src_ld, const std::int64_t* rows,
                      std::int64_t n_cols, std::int64_t n_features, float* out, cudaStream_t stream) {
  if (n_cols == 0 || n_features == 0) return;
  require((n_cols + kTranspose - 1) / kTranspose <= 65535, "gather_transpose: too many columns for one call");
  const dim3 grid(static_cast<unsigned>((n_features + kTranspose - 1) / kTranspose),
                  static_cast<unsigned>((n_cols + kTranspose - 1) / kTranspose));
  gather_transpose_kernel<<<grid, dim3(kTranspose, 8), 0, stream>>>(base, src, src_ld, rows, n_cols, n_features,
                                                                    out);
  LK_LAUNCHED("gather_transpose_kernel");
}

void sparse_dense_scores(const CsrDevice& rows, const float* dense_t, std::int64_t n_cols, float* out,
                         std::int64_t out_ld, cudaStream_t stream) {
  if (rows.n_rows == 0 || n_cols == 0) return;
  require((n_cols + kTileCols - 1) / kTileCols <= 65535, "sparse_dense_scores: too many dense columns for one call");
  require(out_ld >= rows.n_rows, "sparse_dense_scores: out_ld < n_rows");
  const dim3 grid(static_cast<unsigned>((rows.n_rows + kTileRows - 1) / kTileRows),
                  static_cast<unsigned>((n_cols + kTileCols - 1) / kTileCols));
  sparse_dense_kernel<<<grid, kTileCols * kGroups, 0, stream>>>(rows.indptr, rows.indices, rows.values, rows.n_rows,
                                                                dense_t, n_cols, out, out_ld);
  LK_LAUNCHED("sparse_dense_kernel");
}

void predict_pairs(const float* population, const float* offsets, std::int64_t n_features,
                   const std::int64_t* user_rows, const CsrDevice& pairs, const float* base_logit, bool logits,
                   float* out, cudaStream_t stream) {
  if (pairs.n_rows == 0) return;
  predict_pairs_kernel<<<grid_blocks((pairs.n_rows + 255) / 256), 256, 0, stream>>>(
      population, offsets, n_features, user_rows, pairs.indptr, pairs.indices, pairs.values, pairs.n_rows, base_logit,
      logits, out);
  LK_LAUNCHED("predict_pairs_kernel");
}

void select_topk(const float* scores, std::int64_t n_rows, std::int64_t length, std::int64_t ld, int k,
                 std::int32_t* ids, float* values, std::int32_t* counts, cudaStream_t stream) {
  if (n_rows == 0 || length == 0) return;
  require(k >= 1 && k <= kMaxGpuK, "select_topk: k must be in [1, " + std::to_string(kMaxGpuK) + "]");
  require(length <= INT32_MAX, "select_topk: rows longer than 2^31 entries");
  const int capacity = candidate_capacity(k);
  const int warps = select_warps_per_block(capacity);
  const std::size_t shared = static_cast<std::size_t>(warps) * capacity * 8;
  with_segments_per_lane(k, [&](auto segments) {
    select_topk_kernel<decltype(segments)::value>
        <<<grid_blocks((n_rows + warps - 1) / warps), warps * 32, shared, stream>>>(scores, n_rows, length, ld, k,
                                                                                     capacity, ids, values, counts);
  });
  LK_LAUNCHED("select_topk_kernel");
}

void densify(const CsrDevice& rows, std::int64_t n_features, float* out, cudaStream_t stream) {
  if (rows.n_rows == 0) return;
  constexpr int kWarps = 8;
  densify_kernel<<<grid_blocks((rows.n_rows + kWarps - 1) / kWarps), kWarps * 32, 0, stream>>>(
      rows.indptr, rows.indices, rows.values, rows.n_rows, n_features, out);
  LK_LAUNCHED("densify_kernel");
}

}  // namespace likeable::gpu
