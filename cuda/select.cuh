// Exact top-k of one long row by one warp, never sorting the row (device code).
//
// 1. Maxima of 32*R interleaved segments: the k-th largest of those maxima is a lower bound on
//    the row's k-th largest key (at least k distinct entries reach it).
// 2. Entries at or above the bound are appended, in id order, to a small per-warp buffer in
//    shared memory (typically a few times k of the row's thousands).
// 3. If the buffer overflows (heavy ties, adversarial rows), the exact k-th key is found by
//    bisection on the keys' bit patterns, counting with ballots; ties at it are taken by id.
// 4. Each candidate's rank counts the candidates ahead of it (larger key, or equal key and
//    smaller id); those ranked below k are written, by rank or in id order.
//
// A Source gives key(j) (an orderable uint32, 0 = not eligible) and value(j) of entry j.
#pragma once

#include <type_traits>

#include "common.cuh"

namespace likeable::gpu {

template <class Source>
__device__ int count_at_least(Source& src, std::int64_t length, std::uint32_t lowest) {
  const int lane = threadIdx.x & 31;
  int count = 0;
  for (std::int64_t base = 0; base < length; base += 32) {
    const std::int64_t j = base + lane;
    const bool hit = j < length && src.key(j) >= lowest;
    count += __popc(__ballot_sync(kFullMask, hit));
  }
  return count;
}

// Appends entries with key > `above`, and entries with key == `tie` while fewer than `quota` of
// those were taken, in increasing id order. Returns how many qualified; only the first
// `capacity` are stored.
template <class Source>
__device__ int collect(Source& src, std::int64_t length, std::uint32_t above, std::uint32_t tie, int quota,
                       int capacity, std::uint32_t* cand_key, std::int32_t* cand_id) {
  const int lane = threadIdx.x & 31;
  const unsigned below = lanes_below();
  int count = 0, ties = 0;
  for (std::int64_t base = 0; base < length; base += 32) {
    const std::int64_t j = base + lane;
    const std::uint32_t u = j < length ? src.key(j) : 0u;
    const bool is_tie = quota > 0 && u != 0u && u == tie;
    const unsigned tie_mask = __ballot_sync(kFullMask, is_tie);
    const bool take = (u > above) || (is_tie && ties + __popc(tie_mask & below) < quota);
    ties += __popc(tie_mask);
    const unsigned take_mask = __ballot_sync(kFullMask, take);
    const int pos = count + __popc(take_mask & below);
    if (take && pos < capacity) {
      cand_key[pos] = u;
      cand_id[pos] = static_cast<std::int32_t>(j);
    }
    count += __popc(take_mask);
  }
  return count;
}

// Selects the row's top k into out_ids/out_values (k slots; by rank when kByRank, else by
// increasing id) and writes how many were kept (fewer than k when fewer are eligible).
// Returns false, writing nothing but a zero count, when the source flagged a bad entry.
template <int R, bool kByRank, class Source>
__device__ bool select_row(Source& src, std::int64_t length, int k, int capacity, std::uint32_t* cand_key,
                           std::int32_t* cand_id, std::int32_t* out_ids, float* out_values, std::int32_t* out_count) {
  const int lane = threadIdx.x & 31;
  std::uint32_t seg[R];
#pragma unroll
  for (int r = 0; r < R; ++r) seg[r] = 0u;
  for (std::int64_t base = 0; base < length; base += 32 * R) {
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const std::int64_t j = base + r * 32 + lane;
      if (j < length) seg[r] = max(seg[r], src.key(j));
    }
  }
  if (__any_sync(kFullMask, src.bad)) {
    if (lane == 0) *out_count = 0;
    return false;
  }

  // The k-th largest segment maximum (0 when fewer than k segments hold an eligible entry).
  int greater[R], at_least[R];
#pragma unroll
  for (int r = 0; r < R; ++r) greater[r] = at_least[r] = 0;
  for (int s = 0; s < 32; ++s) {
#pragma unroll
    for (int rr = 0; rr < R; ++rr) {
      const std::uint32_t w = __shfl_sync(kFullMask, seg[rr], s);
#pragma unroll
      for (int r = 0; r < R; ++r) {
        greater[r] += w > seg[r];
        at_least[r] += w >= seg[r];
      }
    }
  }
  std::uint32_t bound = 0u;
#pragma unroll
  for (int r = 0; r < R; ++r)
    if (seg[r] != 0u && greater[r] < k && k <= at_least[r]) bound = seg[r];
  for (int offset = 16; offset > 0; offset >>= 1) bound = max(bound, __shfl_xor_sync(kFullMask, bound, offset));
  if (bound == 0u) bound = 1u;  // every eligible entry is a candidate

  int n = collect(src, length, bound - 1u, 0u, 0, capacity, cand_key, cand_id);
  if (n > capacity) {
    // Bisection over the key bits keeps count(key >= u) >= k; stops early once a threshold
    // leaves between k and `capacity` candidates.
    std::uint32_t u = 0u;
    bool done = false;
    for (int b = 31; b >= 0 && !done; --b) {
      const std::uint32_t trial = u | (1u << b);
      const int c = count_at_least(src, length, trial);
      if (c >= k) {
        u = trial;
        if (c <= capacity) {
          n = collect(src, length, trial - 1u, 0u, 0, capacity, cand_key, cand_id);
          done = true;
        }
      }
    }
    if (!done) {  // u is the k-th largest key and more than `capacity` entries share it
      const int above = u == 0xffffffffu ? 0 : count_at_least(src, length, u + 1u);
      n = collect(src, length, u, u, k - above, capacity, cand_key, cand_id);
    }
  }
  __syncwarp();

  int written = 0;
  for (int i0 = 0; i0 < n; i0 += 32) {
    const int i = i0 + lane;
    int rank = k;
    std::int32_t id = 0;
    if (i < n) {
      const std::uint32_t key = cand_key[i];
      id = cand_id[i];
      rank = 0;
      for (int j = 0; j < n; ++j) {
        const std::uint32_t other = cand_key[j];
        rank += (other > key) | ((other == key) & (j < i));
      }
    }
    const bool keep = rank < k;
    const unsigned keep_mask = __ballot_sync(kFullMask, keep);
    const int slot = kByRank ? rank : written + __popc(keep_mask & lanes_below());
    if (keep) {
      out_ids[slot] = id;
      out_values[slot] = src.value(id);
    }
    written += __popc(keep_mask);
  }
  if (lane == 0) *out_count = min(n, k);
  __syncwarp();  // the candidate buffer is reused by this warp's next row
  return true;
}

// Segments per lane for a given k: about 2k segment maxima make a tight bound.
inline int segments_per_lane(int k) {
  int r = 1;
  while (r < 16 && 32 * r < 2 * k) r *= 2;
  return r;
}

// Calls f(std::integral_constant<int, R>{}) for R = segments_per_lane(k), so each kernel is
// instantiated once per R.
template <class F>
void with_segments_per_lane(int k, F&& f) {
  switch (segments_per_lane(k)) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 4: return f(std::integral_constant<int, 4>{});
    case 8: return f(std::integral_constant<int, 8>{});
    default: return f(std::integral_constant<int, 16>{});
  }
}

// This warp's candidate buffer (keys, then ids) in the block's dynamic shared memory, which a
// launch sizes as warps per block x capacity x 8 bytes.
__device__ __forceinline__ void warp_candidate_buffer(int capacity, std::uint32_t*& keys, std::int32_t*& ids) {
  extern __shared__ std::uint32_t candidate_memory[];
  keys = candidate_memory + static_cast<std::size_t>(threadIdx.x / 32) * capacity * 2;
  ids = reinterpret_cast<std::int32_t*>(keys + capacity);
}

// Candidate buffer entries per warp.
inline int candidate_capacity(int k) { return ((2 * k + 64) + 31) / 32 * 32; }

}  // namespace likeable::gpu
