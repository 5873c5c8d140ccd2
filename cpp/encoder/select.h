// Selection shared by encode and training: the key a pre-activation is ranked by, and folding
// a row of pre-activations into a running top-K while the row is in cache.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/topk.h"

namespace likeable::encoder_select {

inline float key_of(float a, bool is_signed) { return is_signed ? std::fabs(a) : a; }

// Folds one pre-activation tile row into its running top-K while the tile is in cache.
// Feature ids arrive in increasing order, so a strict "key > bar" test is exact.
template <bool Signed, bool WithBias = true>
void fold_topk(const float* pre, const float* bias, std::int64_t n, std::int32_t first_id,
               TopKHeap& heap) {
  float bar = std::max(0.0f, heap.bar());
  constexpr std::int64_t kBlock = 16;
  std::int64_t j0 = 0;
  for (; j0 + kBlock <= n; j0 += kBlock) {
    // Branch-free scan first (vectorises): most blocks hold nothing that beats the bar.
    bool any = false;
    for (std::int64_t j = 0; j < kBlock; ++j) {
      const float a = WithBias ? pre[j0 + j] + bias[j0 + j] : pre[j0 + j];
      any |= (Signed ? std::fabs(a) : a) > bar;
    }
    if (!any) continue;
    for (std::int64_t j = j0; j < j0 + kBlock; ++j) {
      const float a = WithBias ? pre[j] + bias[j] : pre[j];
      const float key = Signed ? std::fabs(a) : a;
      if (key > bar) {
        heap.push(key, first_id + static_cast<std::int32_t>(j), a);
        bar = std::max(0.0f, heap.bar());
      }
    }
  }
  for (std::int64_t j = j0; j < n; ++j) {
    const float a = WithBias ? pre[j] + bias[j] : pre[j];
    const float key = Signed ? std::fabs(a) : a;
    if (key > bar) {
      heap.push(key, first_id + static_cast<std::int32_t>(j), a);
      bar = std::max(0.0f, heap.bar());
    }
  }
}

}  // namespace likeable::encoder_select
