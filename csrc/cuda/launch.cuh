// Internal helpers shared by the .cu files: error checks, launch geometry.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "fastnn/cuda/runtime.hpp"

namespace fastnn {
namespace cuda {

using i64 = std::int64_t;

[[noreturn]] void throw_cuda_error(cudaError_t e, const char* what);

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw_cuda_error(e, what);
}

constexpr int kThreads = 256;  // threads per block of the element-wise kernels

// Blocks for a grid-stride loop over n elements (capped; the loop covers the rest).
inline unsigned grid_1d(i64 n) {
  const i64 blocks = (n + kThreads - 1) / kThreads;
  const i64 cap = 65535LL * 8;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > cap ? cap : blocks));
}

__device__ __forceinline__ i64 global_index() {
  return blockIdx.x * i64(blockDim.x) + threadIdx.x;
}
__device__ __forceinline__ i64 global_stride() { return i64(gridDim.x) * blockDim.x; }

// Device scratch owned by one call (freed on scope exit, also on exceptions).
class Scratch {
 public:
  explicit Scratch(std::size_t bytes) : p_(device_alloc(bytes)) {}
  ~Scratch() { device_free(p_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <class T>
  T* as() const { return static_cast<T*>(p_); }

 private:
  void* p_;
};

}  // namespace cuda
}  // namespace fastnn
