// Inverted dropout on the counter-based stream of fastnn/dropout.hpp: element i
// uses counter first_counter + i, so the mask (and y) equal the CPU's bitwise.
#include <cmath>

#include "fastnn/cuda/kernels.hpp"
#include "launch.cuh"

namespace fastnn {
namespace cuda {

namespace {

// splitmix64 finalizer and the (seed, counter) stream, as in fastnn/dropout.hpp.
__device__ __forceinline__ std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
std::uint64_t host_mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

__global__ void dropout_kernel(const float* __restrict__ x, float* __restrict__ y,
                               std::uint8_t* __restrict__ mask, i64 n, std::uint64_t k1,
                               std::uint64_t k2, std::uint64_t threshold,
                               std::uint64_t first_counter, float scale) {
  for (i64 i = global_index(); i < n; i += global_stride()) {
    const std::uint64_t h = mix64(k2 ^ mix64(k1 + (first_counter + static_cast<std::uint64_t>(i))));
    const bool keep = (h >> 32) >= threshold;
    mask[i] = keep ? 1 : 0;
    y[i] = x[i] * (keep ? scale : 0.0f);
  }
}

__global__ void dropout_backward_kernel(const float* __restrict__ dy,
                                        const std::uint8_t* __restrict__ mask,
                                        float* __restrict__ dx, i64 n, float scale) {
  for (i64 i = global_index(); i < n; i += global_stride())
    dx[i] = dy[i] * (mask[i] != 0 ? scale : 0.0f);
}

float keep_scale(double rate) { return static_cast<float>(1.0 / (1.0 - rate)); }

}  // namespace

void dropout_forward(const float* x, float* y, std::uint8_t* mask, i64 n, double rate,
                     std::uint64_t seed, std::uint64_t first_counter) {
  if (n <= 0) return;
  const std::uint64_t threshold = static_cast<std::uint64_t>(std::ceil(rate * 4294967296.0));
  const std::uint64_t k1 = host_mix64(seed ^ 0x243F6A8885A308D3ull);
  const std::uint64_t k2 = host_mix64(seed ^ 0x13198A2E03707344ull);
  dropout_kernel<<<grid_1d(n), kThreads>>>(x, y, mask, n, k1, k2, threshold, first_counter,
                                           keep_scale(rate));
  check_launch("dropout");
}

void dropout_backward(const float* dy, const std::uint8_t* mask, float* dx, i64 n,
                      double rate) {
  if (n <= 0) return;
  dropout_backward_kernel<<<grid_1d(n), kThreads>>>(dy, mask, dx, n, keep_scale(rate));
  check_launch("dropout_backward");
}

}  // namespace cuda
}  // namespace fastnn
