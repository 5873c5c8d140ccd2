// The arrays an index is made of: each either owned (built, or migrated from an old file) or a
// view into the loaded file, so one kind of member serves built, read and memory-mapped indexes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace likeable {

template <class T>
class Array {
 public:
  Array() = default;
  explicit Array(std::vector<T>&& owned) : owned_(std::move(owned)), data_(owned_.data()), size_(owned_.size()) {}
  static Array view(const T* data, std::size_t size) {
    Array a;
    a.data_ = data;
    a.size_ = size;
    return a;
  }
  // Moving keeps data() valid (a vector's buffer moves with it); copying would not.
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
  const T* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace likeable
