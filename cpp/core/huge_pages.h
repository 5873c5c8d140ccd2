// Memory for large read-mostly arrays (an index's records, postings and summaries), backed by
// transparent huge pages where the kernel offers them.
//
// Why: search reads an index of hundreds of MiB at random (a few cache lines per posting list,
// per block, per re-scored row). With 4 KiB pages nearly every such read also misses the TLB and
// walks the page tables; with 2 MiB pages the walks mostly go away (1M-row SAE index, 516 MiB:
// 172 -> 148 ms per 1,000 queries on the dev box). Linux hands out huge pages to anonymous
// memory only when asked (transparent_hugepage=madvise is the common default), and malloc does
// not ask, so large arrays get their own 2 MiB-aligned mapping with MADV_HUGEPAGE. Elsewhere, or
// when the kernel declines, it is ordinary memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace likeable {

// Below this many bytes an array keeps its ordinary allocation (a huge page would be mostly empty).
constexpr std::size_t kHugePageMinBytes = std::size_t{4} << 20;

struct HugePagesDeleter {
  std::size_t mapped_bytes = 0;
  void* mapping = nullptr;
  void operator()(std::uint8_t*) const;
};
using HugePagesMemory = std::unique_ptr<std::uint8_t, HugePagesDeleter>;

// n bytes (n > 0), uninitialised, aligned to 2 MiB where mapped; throws std::bad_alloc.
HugePagesMemory allocate_huge_pages(std::size_t n);

}  // namespace likeable
