// The one run-time CPU-feature switch, and the one IEEE half-float conversion.
//
// The portable build targets baseline x86-64 (SSE2); kernels compiled for AVX2/F16C/FMA or
// SSE4.2 with __attribute__((target)) are picked at run time by asking simd::use(...). One switch
// turns every such kernel back to its portable loop (the SSE2 ones too, which are otherwise the
// fallback of non-x86 builds): LIKEABLE_NO_SIMD=1 in the environment when the core loads, or
// simd::set_enabled(false) (likeable._core.set_simd_enabled, for tests comparing the two paths).
// Callers read the switch once per call or per query, outside their inner loops.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define LIKEABLE_X86_KERNELS 1  // the intrinsics kernels are compiled in
#endif

namespace likeable::simd {

enum Feature : unsigned {
  kSse2 = 1u << 0,   // baseline x86-64
  kSse42 = 1u << 1,  // crc32 instructions
  kAvx2 = 1u << 2,
  kF16c = 1u << 3,
  kFma = 1u << 4,
};

// What the CPU has (detected once), whatever the switch says.
unsigned detected();
// Whether the switch lets kernels use what the CPU has.
bool enabled();
// Flips the switch for the whole process; in-flight calls finish on the path they chose.
void set_enabled(bool on);

namespace detail {
extern std::atomic<unsigned> active;  // detected() when enabled, else 0
}
// True when every feature in `mask` may be used now.
inline bool use(unsigned mask) { return (detail::active.load(std::memory_order_relaxed) & mask) == mask; }

// IEEE binary16 conversions, hand-written because the portable build has no F16C instructions
// and a library call per value would cost more than the memory traffic it saves.
// Round to nearest even (F. Giesen's float_to_half_fast3_rtne); |f| < 65504 assumed.
inline std::uint16_t float_to_half(float f) {
  std::uint32_t x;
  std::memcpy(&x, &f, 4);
  const std::uint32_t sign = x & 0x80000000u;
  x ^= sign;
  std::uint16_t out;
  if (x < 0x38800000u) {  // below 2^-14: a half subnormal (or zero); let the FPU round it
    float t;
    std::memcpy(&t, &x, 4);
    t += 0.5f;
    std::uint32_t tb;
    std::memcpy(&tb, &t, 4);
    out = static_cast<std::uint16_t>(tb - 0x3f000000u);
  } else {
    const std::uint32_t mant_odd = (x >> 13) & 1u;
    x += (static_cast<std::uint32_t>(15 - 127) << 23) + 0xfffu;
    x += mant_odd;
    out = static_cast<std::uint16_t>(x >> 13);
  }
  return static_cast<std::uint16_t>(out | (sign >> 16));
}
// Exact for every finite half: move the bits into float32 and rebias the exponent by 2^112
// (which also normalises subnormals). vcvtph2ps gives the same values.
inline float half_to_float(std::uint16_t h) {
  const std::uint32_t bits = (static_cast<std::uint32_t>(h & 0x8000u) << 16) | (static_cast<std::uint32_t>(h & 0x7fffu) << 13);
  float f;
  std::memcpy(&f, &bits, 4);
  return f * 0x1p112f;
}

}  // namespace likeable::simd
