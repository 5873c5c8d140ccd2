// A running top-K over a stream of (key, id, value) entries, stored in caller-owned slots so
// many rows' heaps can live side by side in one scratch buffer (no allocation per row).
// Hand-written because std::priority_queue allocates and cannot expose its root cheaply;
// the root is the entry to beat, and most entries are rejected by one comparison with it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>
#include <utility>
#include <vector>

namespace likeable {

class TopKHeap {
 public:
  // keys/ids/values each point at `capacity` slots owned by the caller.
  TopKHeap(float* keys, std::int32_t* ids, float* values, int capacity)
      : keys_(keys), ids_(ids), values_(values), capacity_(capacity) {}

  int size() const { return size_; }
  int capacity() const { return capacity_; }
  bool full() const { return size_ == capacity_; }
  void clear() { size_ = 0; }

  // The key an entry must beat to get in (-inf until the heap is full).
  float bar() const {
    return full() ? (capacity_ > 0 ? keys_[0] : std::numeric_limits<float>::infinity())
                  : -std::numeric_limits<float>::infinity();
  }

  // Larger key wins; on equal keys the smaller id wins, so results do not depend on the
  // order entries arrive in.
  void push(float key, std::int32_t id, float value) {
    if (capacity_ == 0) return;
    if (size_ < capacity_) {
      int i = size_++;
      while (i > 0) {  // sift up: the root holds the worst entry
        const int parent = (i - 1) / 2;
        if (!worse(key, id, keys_[parent], ids_[parent])) break;
        move(i, parent);
        i = parent;
      }
      set(i, key, id, value);
      return;
    }
    if (!worse(keys_[0], ids_[0], key, id)) return;
    int i = 0;
    for (;;) {  // sift down from the root
      const int left = 2 * i + 1;
      if (left >= size_) break;
      int child = left;
      const int right = left + 1;
      if (right < size_ && worse(keys_[right], ids_[right], keys_[left], ids_[left])) child = right;
      if (!worse(keys_[child], ids_[child], key, id)) break;
      move(i, child);
      i = child;
    }
    set(i, key, id, value);
  }

  // Reorders the kept entries by increasing id (the order CSR rows use).
  void sort_by_id() {
    if (size_ > 48) {  // large K: sort (id, slot) pairs, then permute through a copy
      std::vector<std::pair<std::int32_t, int>> order(size_);
      for (int i = 0; i < size_; ++i) order[i] = {ids_[i], i};
      std::sort(order.begin(), order.end());
      std::vector<float> k(keys_, keys_ + size_), v(values_, values_ + size_);
      for (int i = 0; i < size_; ++i) set(i, k[order[i].second], order[i].first, v[order[i].second]);
      return;
    }
    // Small K: an insertion sort over the three parallel arrays needs no buffer.
    for (int i = 1; i < size_; ++i) {
      const float k = keys_[i], v = values_[i];
      const std::int32_t id = ids_[i];
      int j = i - 1;
      while (j >= 0 && ids_[j] > id) {
        move(j + 1, j);
        --j;
      }
      set(j + 1, k, id, v);
    }
  }

  const float* keys() const { return keys_; }
  const std::int32_t* ids() const { return ids_; }
  const float* values() const { return values_; }

  static bool worse(float key_a, std::int32_t id_a, float key_b, std::int32_t id_b) {
    return key_a < key_b || (key_a == key_b && id_a > id_b);
  }

 private:
  void move(int to, int from) {
    keys_[to] = keys_[from];
    ids_[to] = ids_[from];
    values_[to] = values_[from];
  }
  void set(int i, float key, std::int32_t id, float value) {
    keys_[i] = key;
    ids_[i] = id;
    values_[i] = value;
  }

  float* keys_;
  std::int32_t* ids_;
  float* values_;
  int capacity_;
  int size_ = 0;
};

}  // namespace likeable
