#include "core/huge_pages.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <new>

namespace likeable {

namespace {
constexpr std::size_t kHugePage = std::size_t{1} << 21;

// LIKEABLE_HUGE_PAGES=0 turns the advice off (read once per process): for hosts that reserve
// huge pages for something else, and for measuring what they bring.
bool huge_pages_wanted() {
  static const bool wanted = [] {
    const char* v = std::getenv("LIKEABLE_HUGE_PAGES");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return wanted;
}
}  // namespace

void HugePagesDeleter::operator()(std::uint8_t*) const {
  if (mapping != nullptr) ::munmap(mapping, mapped_bytes);
}

HugePagesMemory allocate_huge_pages(std::size_t n) {
  if (n == 0 || n > SIZE_MAX - 2 * kHugePage) throw std::bad_alloc();
  // Map one huge page more than needed so that a 2 MiB-aligned start can be chosen inside.
  const std::size_t mapped = n + kHugePage;
  void* mapping = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapping == MAP_FAILED) throw std::bad_alloc();
  const std::uintptr_t start = (reinterpret_cast<std::uintptr_t>(mapping) + kHugePage - 1) & ~(kHugePage - 1);
#ifdef MADV_HUGEPAGE
  // Advice only: declined (THP off, no memory to defragment) it leaves ordinary pages.
  if (huge_pages_wanted())
    ::madvise(reinterpret_cast<void*>(start), (n + kHugePage - 1) & ~(kHugePage - 1), MADV_HUGEPAGE);
#endif
  return HugePagesMemory(reinterpret_cast<std::uint8_t*>(start), HugePagesDeleter{mapped, mapping});
}

}  // namespace likeable
