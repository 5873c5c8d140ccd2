#include "core/io.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/huge_pages.h"
#include "core/simd.h"
#ifdef LIKEABLE_X86_KERNELS
#include <nmmintrin.h>
#endif

namespace likeable::io {

namespace {

constexpr char kMagic[8] = {'L', 'I', 'K', 'E', 'A', 'B', 'L', '\0'};
constexpr std::size_t kNameBytes = 32;

struct FileHeader {  // 64 bytes
  char magic[8];
  std::uint32_t format_version;
  char kind[4];
  std::uint32_t kind_version;
  std::uint32_t n_sections;
  std::uint64_t file_bytes;
  std::uint32_t table_crc;
  std::uint32_t header_crc;  // over the bytes before this field
  std::uint8_t reserved[24];
};
static_assert(sizeof(FileHeader) == 64, "header layout");

struct SectionEntry {  // 64 bytes
  char name[kNameBytes];
  std::uint32_t dtype;
  std::uint32_t elem_size;
  std::uint64_t offset;
  std::uint64_t n_bytes;
  std::uint32_t crc;
  std::uint32_t reserved;
};
static_assert(sizeof(SectionEntry) == 64, "section entry layout");

std::size_t align_up(std::size_t n) { return (n + kAlignment - 1) / kAlignment * kAlignment; }

// Table-driven CRC32C (reflected polynomial 0x82F63B78), for CPUs without SSE4.2.
struct Crc32cTable {
  std::uint32_t t[256];
  Crc32cTable() {
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
  }
};

std::uint32_t crc32c_table(const std::uint8_t* p, std::size_t n, std::uint32_t crc) {
  static const Crc32cTable table;
  for (std::size_t i = 0; i < n; ++i) crc = table.t[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return crc;
}

#ifdef LIKEABLE_X86_KERNELS
// Hand-written because zlib's crc32 is ~1 GB/s and the hardware instruction is ~10x that:
// checksumming a multi-GB index on load must not dominate the load.
__attribute__((target("sse4.2"))) std::uint32_t crc32c_hw(const std::uint8_t* p, std::size_t n,
                                                          std::uint32_t crc) {
  std::uint64_t c = crc;
  while (n >= 8) {
    std::uint64_t word;
    std::memcpy(&word, p, 8);
    c = _mm_crc32_u64(c, word);
    p += 8;
    n -= 8;
  }
  std::uint32_t c32 = static_cast<std::uint32_t>(c);
  while (n--) c32 = _mm_crc32_u8(c32, *p++);
  return c32;
}
#endif

// Bytes the process owns: an ordinary heap vector, or for large files their own huge-page
// mapping (core/huge_pages.h), since search reads an index at random.
class HeapBuffer : public Buffer {
 public:
  explicit HeapBuffer(std::size_t n) {
    if (n >= kHugePageMinBytes) {
      huge_ = allocate_huge_pages(n);
      data_ = huge_.get();
    } else {
      heap_.resize(n);
      data_ = heap_.data();
    }
    size_ = n;
  }
  std::uint8_t* bytes() { return const_cast<std::uint8_t*>(data_); }
  void shrink_to(std::size_t n) { size_ = n; }

 private:
  std::vector<std::uint8_t> heap_;
  HugePagesMemory huge_;
};

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// What tells that a file changed in place: its size and last modification time.
struct FileStamp {
  std::uint64_t size = 0;
  std::int64_t mtime_sec = 0;
  std::int64_t mtime_nsec = 0;
  bool operator==(const FileStamp& o) const {
    return size == o.size && mtime_sec == o.mtime_sec && mtime_nsec == o.mtime_nsec;
  }
};
FileStamp stamp_of(const struct stat& st) {
  return FileStamp{static_cast<std::uint64_t>(st.st_size), static_cast<std::int64_t>(st.st_mtim.tv_sec),
                   static_cast<std::int64_t>(st.st_mtim.tv_nsec)};
}

// Keeps the file open, so the stamp it compares is always that of the mapped file (a file
// renamed over the path is another file: this map goes on reading the old one, unchanged).
class MappedBuffer : public Buffer {
 public:
  MappedBuffer(void* addr, std::size_t n, int fd, FileStamp stamp, std::string path)
      : addr_(addr), fd_(fd), stamp_(stamp), path_(std::move(path)) {
    data_ = static_cast<const std::uint8_t*>(addr);
    size_ = n;
  }
  ~MappedBuffer() override {
    if (addr_ != nullptr) munmap(addr_, size_);
    if (fd_ >= 0) ::close(fd_);
  }
  void check_unchanged() const override {
    struct stat st;
    if (fstat(fd_, &st) != 0 || !(stamp_of(st) == stamp_))
      throw FormatError(concat(path_, ": the memory-mapped file was truncated or written in place since it was "
                               "loaded; load it again. Replace a mapped index only by writing a new file and "
                               "renaming it over the old path (SparseIndex.save does), never in place"));
  }

 private:
  void* addr_;
  int fd_;
  FileStamp stamp_;
  std::string path_;
};

[[noreturn]] void throw_errno(const std::string& what, const std::string& path) {
  const int err = errno;
  if (err == ENOENT) throw InvalidArgument(concat("no such file: ", path));
  throw std::runtime_error(concat(what, " ", path, ": ", std::strerror(err)));
}

// Opens a regular file for reading without ever blocking: O_NONBLOCK makes open() return at
// once on a FIFO (which would otherwise wait for a writer), and what is not a regular file is
// refused before any read. The file's stat goes to `st`.
int open_regular(const std::string& path, struct stat& st) {
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (f.fd < 0) throw_errno("cannot open", path);
  if (fstat(f.fd, &st) != 0) throw_errno("cannot stat", path);
  if (S_ISDIR(st.st_mode)) throw InvalidArgument(concat(path, " is a folder, expected a file"));
  if (!S_ISREG(st.st_mode))
    throw InvalidArgument(concat(path, " is not a regular file (a pipe, socket or device): refused, since reading "
                                 "it could block forever"));
  const int flags = ::fcntl(f.fd, F_GETFL);
  if (flags >= 0) ::fcntl(f.fd, F_SETFL, flags & ~O_NONBLOCK);
  const int fd = f.fd;
  f.fd = -1;
  return fd;
}

void write_all(int fd, const std::uint8_t* p, std::size_t n, const std::string& path) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot write", path);
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

}  // namespace

std::uint32_t crc32c(const void* data, std::size_t n, std::uint32_t crc) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  crc = ~crc;
#ifdef LIKEABLE_X86_KERNELS
  crc = simd::use(simd::kSse42) ? crc32c_hw(p, n, crc) : crc32c_table(p, n, crc);
#else
  crc = crc32c_table(p, n, crc);
#endif
  return ~crc;
}

// ---------------------------------------------------------------------------------------------
SectionWriter::SectionWriter(const std::string& kind, std::uint32_t kind_version)
    : kind_(kind), kind_version_(kind_version) {
  LIKEABLE_CHECK(kind.size() == 4, "a file kind is 4 characters, got '", kind, "'");
}

void SectionWriter::add_raw(const std::string& name, DType dtype, std::uint32_t elem_size,
                            const void* data, std::size_t n_bytes) {
  LIKEABLE_CHECK(!name.empty() && name.size() < kNameBytes, "section name '", name,
                 "' must have 1 to ", kNameBytes - 1, " characters");
  for (const auto& s : sections_) LIKEABLE_CHECK(s.name != name, "duplicate section '", name, "'");
  sections_.push_back(Pending{name, dtype, elem_size, data, n_bytes});
}

std::size_t SectionWriter::total_bytes() const {
  std::size_t pos = align_up(sizeof(FileHeader) + sections_.size() * sizeof(SectionEntry));
  for (const auto& s : sections_) pos = align_up(pos + s.n_bytes);
  return pos;
}

void SectionWriter::write_to(std::uint8_t* out) const {
  const std::size_t total = total_bytes();
  std::memset(out, 0, total);
  std::vector<SectionEntry> table(sections_.size());
  std::size_t pos = align_up(sizeof(FileHeader) + sections_.size() * sizeof(SectionEntry));
  for (std::size_t i = 0; i < sections_.size(); ++i) {
    const auto& s = sections_[i];
    SectionEntry& e = table[i];
    std::memset(&e, 0, sizeof(e));
    std::memcpy(e.name, s.name.data(), s.name.size());
    e.dtype = static_cast<std::uint32_t>(s.dtype);
    e.elem_size = s.elem_size;
    e.offset = pos;
    e.n_bytes = s.n_bytes;
    if (s.n_bytes) std::memcpy(out + pos, s.data, s.n_bytes);
    e.crc = crc32c(out + pos, s.n_bytes);
    pos = align_up(pos + s.n_bytes);
  }
  FileHeader h;
  std::memset(&h, 0, sizeof(h));
  std::memcpy(h.magic, kMagic, 8);
  h.format_version = kFormatVersion;
  std::memcpy(h.kind, kind_.data(), 4);
  h.kind_version = kind_version_;
  h.n_sections = static_cast<std::uint32_t>(sections_.size());
  h.file_bytes = total;
  h.table_crc = crc32c(table.data(), table.size() * sizeof(SectionEntry));
  h.header_crc = crc32c(&h, offsetof(FileHeader, header_crc));
  std::memcpy(out, &h, sizeof(h));
  if (!table.empty()) std::memcpy(out + sizeof(h), table.data(), table.size() * sizeof(SectionEntry));
}

std::vector<std::uint8_t> SectionWriter::to_bytes() const {
  std::vector<std::uint8_t> out(total_bytes());
  write_to(out.data());
  return out;
}

void SectionWriter::save(const std::string& path) const {
  const std::vector<std::uint8_t> bytes = to_bytes();
  const auto slash = path.find_last_of('/');
  const std::string folder = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  std::string tmp = concat(path, ".tmp-XXXXXX");
  std::vector<char> tmpl(tmp.begin(), tmp.end());
  tmpl.push_back('\0');
  Fd out;
  out.fd = ::mkstemp(tmpl.data());
  if (out.fd < 0) throw_errno("cannot create a temporary file beside", path);
  tmp = tmpl.data();
  try {
    ::fchmod(out.fd, 0644);  // mkstemp makes 0600; an index is a shareable file
    write_all(out.fd, bytes.data(), bytes.size(), tmp);
    if (::fsync(out.fd) != 0) throw_errno("cannot fsync", tmp);
    ::close(out.fd);
    out.fd = -1;
    if (::rename(tmp.c_str(), path.c_str()) != 0) throw_errno("cannot rename onto", path);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  Fd dir;  // make the rename durable; not fatal where folders cannot be opened
  dir.fd = ::open(folder.c_str(), O_RDONLY);
  if (dir.fd >= 0) ::fsync(dir.fd);
}

// ---------------------------------------------------------------------------------------------
std::shared_ptr<Buffer> map_file(const std::string& path) {
  struct stat st;
  Fd f;
  f.fd = open_regular(path, st);
  const std::size_t n = static_cast<std::size_t>(st.st_size);
  if (n == 0) return std::make_shared<HeapBuffer>(0);
  void* addr = ::mmap(nullptr, n, PROT_READ, MAP_PRIVATE, f.fd, 0);
  if (addr == MAP_FAILED) throw_errno("cannot memory-map", path);
  auto buffer = std::make_shared<MappedBuffer>(addr, n, f.fd, stamp_of(st), path);
  f.fd = -1;  // the buffer owns it now
  return buffer;
}

std::shared_ptr<Buffer> read_file(const std::string& path) {
  struct stat st;
  Fd f;
  f.fd = open_regular(path, st);
  const std::size_t n = static_cast<std::size_t>(st.st_size);
  auto buffer = std::make_shared<HeapBuffer>(n);
  std::uint8_t* bytes = buffer->bytes();
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::read(f.fd, bytes + got, n - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot read", path);
    }
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  buffer->shrink_to(got);
  return buffer;
}

std::shared_ptr<Buffer> copy_bytes(const void* data, std::size_t n) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  auto buffer = std::make_shared<HeapBuffer>(n);
  if (n > 0) std::memcpy(buffer->bytes(), p, n);
  return buffer;
}

// ---------------------------------------------------------------------------------------------
SectionReader::SectionReader(std::shared_ptr<Buffer> buffer, const std::string& expected_kind,
                             std::uint32_t max_kind_version, const std::string& source,
                             bool verify_checksums)
    : buffer_(std::move(buffer)), source_(source) {
  const std::uint8_t* base = buffer_->data();
  const std::size_t size = buffer_->size();
  if (size < sizeof(FileHeader))
    throw FormatError(concat(source_, ": too short to be a likeable file (", size, " bytes)"));
  FileHeader h;
  std::memcpy(&h, base, sizeof(h));
  if (std::memcmp(h.magic, kMagic, 8) != 0)
    throw FormatError(concat(source_, ": not a likeable file (bad magic bytes)"));
  if (h.header_crc != crc32c(&h, offsetof(FileHeader, header_crc)))
    throw FormatError(concat(source_, ": header checksum mismatch (file is corrupted)"));
  if (h.format_version == 0 || h.format_version > kFormatVersion)
    throw FormatError(concat(source_, ": file format version ", h.format_version,
                             " is newer than this likeable supports (", kFormatVersion, "); upgrade likeable"));
  const std::string kind(h.kind, 4);
  if (kind != expected_kind)
    throw FormatError(concat(source_, ": holds a '", kind, "' object, expected '", expected_kind, "'"));
  if (h.kind_version == 0 || h.kind_version > max_kind_version)
    throw FormatError(concat(source_, ": '", kind, "' version ", h.kind_version,
                             " is newer than this likeable supports (", max_kind_version, ")"));
  kind_version_ = h.kind_version;
  if (h.file_bytes != size)
    throw FormatError(concat(source_, ": file is ", size, " bytes but its header says ", h.file_bytes,
                             " (truncated or padded)"));
  const std::uint64_t table_bytes = static_cast<std::uint64_t>(h.n_sections) * sizeof(SectionEntry);
  if (table_bytes > size - sizeof(FileHeader))
    throw FormatError(concat(source_, ": section table (", h.n_sections, " entries) runs past the end of the file"));
  const std::uint8_t* table = base + sizeof(FileHeader);
  if (h.table_crc != crc32c(table, table_bytes))
    throw FormatError(concat(source_, ": section table checksum mismatch (file is corrupted)"));
  const std::uint64_t data_start = sizeof(FileHeader) + table_bytes;
  for (std::uint32_t i = 0; i < h.n_sections; ++i) {
    SectionEntry e;
    std::memcpy(&e, table + i * sizeof(SectionEntry), sizeof(e));
    if (e.name[kNameBytes - 1] != '\0') throw FormatError(concat(source_, ": section name not terminated"));
    Entry entry{std::string(e.name), static_cast<DType>(e.dtype), e.elem_size, e.offset, e.n_bytes};
    if (e.offset < data_start || e.offset > size || e.n_bytes > size - e.offset)
      throw FormatError(concat(source_, ": section '", entry.name, "' (offset ", e.offset, ", ", e.n_bytes,
                               " bytes) lies outside the ", size, "-byte file"));
    if (e.offset % kAlignment != 0)
      throw FormatError(concat(source_, ": section '", entry.name, "' is not 64-byte aligned"));
    if (verify_checksums && crc32c(base + e.offset, e.n_bytes) != e.crc)
      throw FormatError(concat(source_, ": checksum mismatch in section '", entry.name, "' (file is corrupted)"));
    entries_.push_back(std::move(entry));
  }
  // Bytes outside every section (reserved header bytes, alignment padding) must be zero, so a
  // flipped bit anywhere in the file is caught, not only inside checksummed sections.
  for (std::uint8_t byte : h.reserved)
    if (byte != 0) throw FormatError(concat(source_, ": reserved header bytes are not zero (file is corrupted)"));
  std::vector<std::pair<std::uint64_t, std::uint64_t>> spans;
  for (const auto& e : entries_) spans.emplace_back(e.offset, e.offset + e.n_bytes);
  std::sort(spans.begin(), spans.end());
  std::uint64_t cursor = data_start;
  for (const auto& [begin, end] : spans) {
    if (begin < cursor)
      throw FormatError(concat(source_, ": sections overlap (file is corrupted)"));
    if (verify_checksums)
      for (std::uint64_t i = cursor; i < begin; ++i)
        if (base[i] != 0) throw FormatError(concat(source_, ": non-zero padding at byte ", i, " (file is corrupted)"));
    cursor = end;
  }
  if (verify_checksums)
    for (std::uint64_t i = cursor; i < size; ++i)
      if (base[i] != 0) throw FormatError(concat(source_, ": non-zero padding at byte ", i, " (file is corrupted)"));
}

bool SectionReader::has(const std::string& name) const {
  for (const auto& e : entries_)
    if (e.name == name) return true;
  return false;
}

const SectionReader::Entry& SectionReader::find(const std::string& name) const {
  for (const auto& e : entries_)
    if (e.name == name) return e;
  throw FormatError(concat(source_, ": missing section '", name, "'"));
}

void SectionReader::check_dtype(const Entry& e, DType dtype, std::uint32_t elem_size) const {
  if (e.dtype != dtype || e.elem_size != elem_size)
    throw FormatError(concat(source_, ": section '", e.name, "' has dtype code ",
                             static_cast<std::uint32_t>(e.dtype), ", expected ",
                             static_cast<std::uint32_t>(dtype)));
}

}  // namespace likeable::io
