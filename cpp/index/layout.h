// The arrays an index is made of: each either owned (built, or migrated from an old file) or a
// view into the loaded file, so one kind of member serves built, read and memory-mapped indexes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/huge_pages.h"

namespace likeable {

template <class T>
class Array {
 public:
  static_assert(std::is_trivially_copyable_v<T>);
  Array() = default;
  // Large arrays move to huge pages (core/huge_pages.h: search reads them at random).
  explicit Array(std::vector<T>&& owned) : size_(owned.size()) {
    const std::size_t bytes = owned.size() * sizeof(T);
    if (bytes >= kHugePageMinBytes) {
      huge_ = allocate_huge_pages(bytes);
      std::memcpy(huge_.get(), owned.data(), bytes);
      data_ = reinterpret_cast<const T*>(huge_.get());
      std::vector<T>().swap(owned);
    } else {
      owned_ = std::move(owned);
      data_ = owned_.data();
    }
  }
  static Array view(const T* data, std::size_t size) {
    Array a;
    a.data_ = data;
    a.size_ = size;
    return a;
  }
  // Moving keeps data() valid (a vector's buffer and a mapping move with it); copying would not.
  Array(Array&&) = default;
  Array& operator=(Array&&) = default;
  Array(const Array&) = delete;
  Array& operator=(const Array&) = delete;

  const T* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const T& operator[](std::int64_t i) const { return data_[i]; }

 private:
  std::vector<T> owned_;
  HugePagesMemory huge_;
  const T* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace likeable
