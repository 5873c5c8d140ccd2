#include "core/simd.h"

#include <cstdlib>

namespace likeable::simd {
namespace {

unsigned detect() {
  unsigned f = 0;
#ifdef LIKEABLE_X86_KERNELS
  __builtin_cpu_init();
  f |= kSse2;  // part of x86-64
  if (__builtin_cpu_supports("sse4.2")) f |= kSse42;
  if (__builtin_cpu_supports("avx2")) f |= kAvx2;
  if (__builtin_cpu_supports("f16c")) f |= kF16c;
  if (__builtin_cpu_supports("fma")) f |= kFma;
#endif
  return f;
}

const unsigned kDetected = detect();
std::atomic<bool> switch_on{std::getenv("LIKEABLE_NO_SIMD") == nullptr};

}  // namespace

namespace detail {
std::atomic<unsigned> active{switch_on.load() ? kDetected : 0u};
}

unsigned detected() { return kDetected; }
bool enabled() { return switch_on.load(); }
void set_enabled(bool on) {
  switch_on.store(on);
  detail::active.store(on ? kDetected : 0u);
}

}  // namespace likeable::simd
