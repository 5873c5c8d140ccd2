// A generic, versioned, checksummed section file: any concept can store named arrays in it.
//
// Layout (little-endian):
//   FileHeader (64 bytes): magic "LIKEABL\0", format version, a 4-char kind ("SIDX"), the
//     kind's own version, section count, byte size of the whole file, CRC32C of the table.
//   SectionEntry[n_sections] (64 bytes each): name (<= 31 chars), dtype code, element size,
//     offset, length in bytes, CRC32C of the bytes.
//   Section payloads, each starting on a 64-byte boundary (so a memory map gives aligned arrays).
// Every offset and length is checked against the file size before use; a truncated, corrupted,
// foreign or newer file throws FormatError. Saves write a temporary file beside the target,
// fsync it, then rename it over the target (atomic on POSIX).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/errors.h"

namespace likeable::io {

constexpr std::uint32_t kFormatVersion = 1;
constexpr std::size_t kAlignment = 64;

// CRC32C (Castagnoli); SSE4.2 instructions when the CPU has them, a table otherwise.
std::uint32_t crc32c(const void* data, std::size_t n, std::uint32_t crc = 0);

enum class DType : std::uint32_t { bytes = 0, i32 = 1, i64 = 2, f32 = 3, u8 = 4, u16 = 5, f64 = 6, u32 = 7, u64 = 8 };

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<std::int32_t>() { return DType::i32; }
template <> constexpr DType dtype_of<std::int64_t>() { return DType::i64; }
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<std::uint8_t>() { return DType::u8; }
template <> constexpr DType dtype_of<std::uint16_t>() { return DType::u16; }
template <> constexpr DType dtype_of<double>() { return DType::f64; }
template <> constexpr DType dtype_of<std::uint32_t>() { return DType::u32; }
template <> constexpr DType dtype_of<std::uint64_t>() { return DType::u64; }

// Collects named arrays (not copied: they must outlive the writer) and writes one file.
class SectionWriter {
 public:
  SectionWriter(const std::string& kind, std::uint32_t kind_version);

  template <class T>
  void add(const std::string& name, const T* data, std::size_t count) {
    add_raw(name, dtype_of<T>(), sizeof(T), data, checked_mul(count, sizeof(T)));
  }
  template <class T>
  void add(const std::string& name, const std::vector<T>& vec) { add(name, vec.data(), vec.size()); }
  void add_raw(const std::string& name, DType dtype, std::uint32_t elem_size, const void* data,
               std::size_t n_bytes);

  std::size_t total_bytes() const;
  // The complete file in memory.
  std::vector<std::uint8_t> to_bytes() const;
  // Atomic save: temporary file in the same folder, fsync, rename, fsync the folder.
  void save(const std::string& path) const;

 private:
  struct Pending {
    std::string name;
    DType dtype;
    std::uint32_t elem_size;
    const void* data;
    std::size_t n_bytes;
  };
  void write_to(std::uint8_t* out) const;
  std::string kind_;
  std::uint32_t kind_version_;
  std::vector<Pending> sections_;
};

// Read-only bytes of a file: a private memory map, a heap copy, or caller-provided bytes.
class Buffer {
 public:
  virtual ~Buffer() = default;
  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  // Throws FormatError when the bytes may no longer be what was loaded: a memory map whose file
  // was truncated or written in place since it was mapped (its size or modification time
  // changed). Heap bytes never change. A check before each use, not a guarantee: a file
  // truncated while it is being read still kills the process with SIGBUS, which no library can
  // catch; so a mapped file must only ever be replaced by rename (see map_file).
  virtual void check_unchanged() const {}

 protected:
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

// Memory-maps a file read-only. The contract: the file is never truncated or written in place
// while mapped; replace it by writing a new file and renaming it over the path (atomic, as
// SectionWriter::save does), after which this map keeps reading the old file. Changes that can
// be seen are reported by Buffer::check_unchanged.
std::shared_ptr<Buffer> map_file(const std::string& path);
std::shared_ptr<Buffer> read_file(const std::string& path);  // whole file on the heap
std::shared_ptr<Buffer> copy_bytes(const void* data, std::size_t n);
// Both readers refuse what is not a regular file (a FIFO would block the caller forever, a
// device could be endless) with InvalidArgument, without blocking on it.

// A validated file: sections looked up by name, typed, with their element counts checked.
class SectionReader {
 public:
  // Validates header, table and (when verify_checksums) every section's CRC; `source` names the
  // file in error messages.
  SectionReader(std::shared_ptr<Buffer> buffer, const std::string& expected_kind,
                std::uint32_t max_kind_version, const std::string& source, bool verify_checksums = true);

  std::uint32_t kind_version() const { return kind_version_; }
  bool has(const std::string& name) const;

  template <class T>
  const T* get(const std::string& name, std::size_t expected_count) const {
    const auto& e = find(name);
    check_dtype(e, dtype_of<T>(), sizeof(T));
    if (e.n_bytes != checked_mul(expected_count, sizeof(T)))
      throw FormatError(concat(source_, ": section '", name, "' holds ", e.n_bytes, " bytes, expected ",
                               expected_count, " x ", sizeof(T)));
    return reinterpret_cast<const T*>(buffer_->data() + e.offset);
  }
  template <class T>
  std::size_t count(const std::string& name) const {
    const auto& e = find(name);
    check_dtype(e, dtype_of<T>(), sizeof(T));
    if (e.n_bytes % sizeof(T) != 0)
      throw FormatError(concat(source_, ": section '", name, "' is not a whole number of elements"));
    return e.n_bytes / sizeof(T);
  }
  const std::shared_ptr<Buffer>& buffer() const { return buffer_; }
  const std::string& source() const { return source_; }

 private:
  struct Entry {
    std::string name;
    DType dtype;
    std::uint32_t elem_size;
    std::uint64_t offset;
    std::uint64_t n_bytes;
  };
  const Entry& find(const std::string& name) const;
  void check_dtype(const Entry& e, DType dtype, std::uint32_t elem_size) const;

  std::shared_ptr<Buffer> buffer_;
  std::string source_;
  std::uint32_t kind_version_ = 0;
  std::vector<Entry> entries_;
};

}  // namespace likeable::io
