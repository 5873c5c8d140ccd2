// The one running top-K of the core: a bounded heap over (key, id[, value]) entries kept in
// caller-owned slots, so many rows' heaps can live side by side in one scratch buffer (no
// allocation per row or per query). Hand-written because std::priority_queue allocates and
// cannot expose its root cheaply; the root is the entry to beat, and most entries are rejected
// by one comparison with it. Used by encode and training (feature ids, int32, with the signed
// value beside its |key|) and by search (row ids, int64, the score is the key).
//
// Order: a larger key wins; on equal keys the smaller id wins, so results do not depend on the
// order entries arrive in.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace likeable {

template <class Id, bool WithValues>
class BasicTopK {
 public:
  // keys/ids (and values when WithValues) each point at `capacity` slots owned by the caller.
  BasicTopK(float* keys, Id* ids, float* values, std::int64_t capacity)
      : keys_(keys), ids_(ids), values_(values), capacity_(capacity) {}
  BasicTopK(float* keys, Id* ids, std::int64_t capacity) : BasicTopK(keys, ids, nullptr, capacity) {
    static_assert(!WithValues, "this heap keeps values: pass their slots");
  }

  std::int64_t size() const { return size_; }
  std::int64_t capacity() const { return capacity_; }
  bool full() const { return size_ == capacity_; }
  void clear() { size_ = 0; }

  // The key of the entry that leaves next (the worst kept); only when size() > 0.
  float worst_key() const { return keys_[0]; }
  // The key an entry must beat to get in (-inf until the heap is full).
  float bar() const {
    return full() ? (capacity_ > 0 ? keys_[0] : std::numeric_limits<float>::infinity())
                  : -std::numeric_limits<float>::infinity();
  }
  // Whether (key, id) would enter a full heap: it beats the worst kept entry.
  bool beats_worst(float key, Id id) const { return worse(keys_[0], ids_[0], key, id); }

  void push(float key, Id id, float value = 0.0f) {
    if (capacity_ == 0) return;
    if (size_ < capacity_) {
      std::int64_t i = size_++;
      while (i > 0) {  // sift up: the root holds the worst entry
        const std::int64_t parent = (i - 1) / 2;
        if (!worse(key, id, keys_[parent], ids_[parent])) break;
        move(i, parent);
        i = parent;
      }
      set(i, key, id, value);
      return;
    }
    if (!worse(keys_[0], ids_[0], key, id)) return;
    sift_down(0, size_, key, id, value);
  }

  // Reorders the kept entries by increasing id (the order CSR rows use).
  void sort_by_id() {
    if (size_ > 48) {  // large K: sort (id, slot) pairs, then permute through a copy
      std::vector<std::pair<Id, std::int64_t>> order(size_);
      for (std::int64_t i = 0; i < size_; ++i) order[i] = {ids_[i], i};
      std::sort(order.begin(), order.end());
      std::vector<float> k(keys_, keys_ + size_), v(size_);
      for (std::int64_t i = 0; i < size_; ++i) v[i] = value_at(i);
      for (std::int64_t i = 0; i < size_; ++i) set(i, k[order[i].second], order[i].first, v[order[i].second]);
      return;
    }
    // Small K: an insertion sort over the parallel arrays needs no buffer.
    for (std::int64_t i = 1; i < size_; ++i) {
      const float k = keys_[i], v = value_at(i);
      const Id id = ids_[i];
      std::int64_t j = i - 1;
      while (j >= 0 && ids_[j] > id) {
        move(j + 1, j);
        --j;
      }
      set(j + 1, k, id, v);
    }
  }

  // Writes the kept entries best first into ids/keys (capacity slots each), pads the rest with
  // -1 / -inf, and empties the heap. An in-place heap sort: no buffer, and the order is the
  // heap's total order, so equal to any sort by it.
  template <class OutId>
  void write_best_first(OutId* out_ids, float* out_keys) {
    for (std::int64_t end = size_ - 1; end > 0; --end) {  // move the worst behind the heap
      const float key = keys_[end], value = value_at(end);
      const Id id = ids_[end];
      move(end, 0);
      sift_down(0, end, key, id, value);
    }
    std::int64_t i = 0;
    for (; i < size_; ++i) {
      out_ids[i] = static_cast<OutId>(ids_[i]);
      out_keys[i] = keys_[i];
    }
    for (; i < capacity_; ++i) {
      out_ids[i] = -1;
      out_keys[i] = -std::numeric_limits<float>::infinity();
    }
    size_ = 0;
  }

  const float* keys() const { return keys_; }
  const Id* ids() const { return ids_; }
  const float* values() const { return values_; }

  static bool worse(float key_a, Id id_a, float key_b, Id id_b) {
    return key_a < key_b || (key_a == key_b && id_a > id_b);
  }

 private:
  // Places (key, id, value) at slot i of the heap [0, n), moving better children up.
  void sift_down(std::int64_t i, std::int64_t n, float key, Id id, float value) {
    for (;;) {
      const std::int64_t left = 2 * i + 1;
      if (left >= n) break;
      std::int64_t child = left;
      const std::int64_t right = left + 1;
      if (right < n && worse(keys_[right], ids_[right], keys_[left], ids_[left])) child = right;
      if (!worse(keys_[child], ids_[child], key, id)) break;
      move(i, child);
      i = child;
    }
    set(i, key, id, value);
  }
  float value_at(std::int64_t i) const {
    if constexpr (WithValues) return values_[i];
    return 0.0f;
  }
  void move(std::int64_t to, std::int64_t from) {
    keys_[to] = keys_[from];
    ids_[to] = ids_[from];
    if constexpr (WithValues) values_[to] = values_[from];
  }
  void set(std::int64_t i, float key, Id id, float value) {
    keys_[i] = key;
    ids_[i] = id;
    if constexpr (WithValues) values_[i] = value;
  }

  float* keys_;
  Id* ids_;
  float* values_;
  std::int64_t capacity_;
  std::int64_t size_ = 0;
};

// Encode and training: feature ids, keys |a| (signed) or a, values a.
using TopKHeap = BasicTopK<std::int32_t, true>;
// Search: row ids, the score is the key.
using TopHits = BasicTopK<std::int64_t, false>;

}  // namespace likeable
