// Deterministic reductions: fixed partitions, combined in a fixed order.
#pragma once
#include "launch.cuh"

namespace fastnn {
namespace cuda {

// Sum of v over the kThreads (256) threads of a block, as a fixed tree; the result
// is valid in thread 0. Every thread of the block must call it.
__device__ __forceinline__ double block_sum(double v) {
  __shared__ double s[kThreads];
  s[threadIdx.x] = v;
  __syncthreads();
#pragma unroll
  for (int half = kThreads / 2; half > 0; half >>= 1) {
    if (threadIdx.x < half) s[threadIdx.x] += s[threadIdx.x + half];
    __syncthreads();
  }
  const double r = s[0];
  __syncthreads();  // s may be reused by the caller's next block_sum
  return r;
}

// Sum of partial[0, n) (device memory) in a fixed order, copied to the host:
// waits for the work queued before it.
double sum_to_host(const double* partial, i64 n);

}  // namespace cuda
}  // namespace fastnn
