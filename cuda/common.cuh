// Shared by the GPU kernels: checked CUDA calls (errors name the call) and order-preserving
// float keys. The matrix products go through cuBLAS from the Python layer (CuPy's binding),
// so this module links only the CUDA runtime and builds with a toolkit that has no cuBLAS.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "core/errors.h"

namespace likeable::gpu {

// Raised for any failed CUDA call; the binding turns it into RuntimeError.
struct CudaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Bad arguments detected on the host side of a GPU call: the core's error type (ValueError).
using GpuInvalidArgument = ::likeable::InvalidArgument;

inline void check_cuda(cudaError_t status, const char* call, const char* file, int line) {
  if (status != cudaSuccess)
    throw CudaError(std::string(call) + " failed: " + cudaGetErrorName(status) + " (" +
                    cudaGetErrorString(status) + ") at " + file + ":" + std::to_string(line));
}

#define LK_CUDA(call) ::likeable::gpu::check_cuda((call), #call, __FILE__, __LINE__)
// After a kernel launch: launch-configuration errors surface here, not at the next sync.
#define LK_LAUNCHED(name) ::likeable::gpu::check_cuda(cudaGetLastError(), name, __FILE__, __LINE__)

inline void require(bool ok, const std::string& message) {
  if (!ok) throw GpuInvalidArgument(message);
}

// Blocks to launch for a grid-stride kernel that would like `blocks_needed`: enough to fill
// the current device, no more.
int grid_blocks(std::int64_t blocks_needed);

#ifdef __CUDACC__
// Maps floats to unsigned ints with the same order (-inf < ... < -0 < +0 < ... < +inf), so
// selection can work on integer bit patterns. 0 is reserved for "not eligible": no finite float
// maps to it.
__device__ __forceinline__ std::uint32_t orderable(float f) {
  const std::uint32_t bits = __float_as_uint(f);
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

__device__ __forceinline__ unsigned lanes_below() {
  unsigned mask;
  asm("mov.u32 %0, %%lanemask_lt;" : "=r"(mask));
  return mask;
}

constexpr unsigned kFullMask = 0xffffffffu;
#endif

}  // namespace likeable::gpu
