// Inverted dropout (float32). See fastnn/dropout.hpp for the contract.
#include "fastnn/dropout.hpp"

#include <algorithm>
#include <cmath>

namespace fastnn {

namespace {
constexpr i64 kDropChunk = 16384;  // elements per parallel task

float keep_scale(double rate) { return static_cast<float>(1.0 / (1.0 - rate)); }
}  // namespace

void dropout_forward(const float* x, float* y, std::uint8_t* mask, i64 n, double rate,
                     std::uint64_t seed, std::uint64_t first_counter) {
  if (n <= 0) return;
  const float scale = keep_scale(rate);
  // keep iff (h >> 32) >= threshold, i.e. u >= rate with u = (h >> 32) / 2^32.
  const std::uint64_t threshold =
      static_cast<std::uint64_t>(std::ceil(rate * 4294967296.0));  // <= 2^32
  const CounterRng rng(seed);
  const i64 nchunks = ceil_div(n, kDropChunk);
#pragma omp parallel for schedule(static) num_threads(fastnn::num_threads()) if (nchunks > 1) FASTNN_FP_TEAM
  for (i64 c = 0; c < nchunks; ++c) {
    // Local copies: the byte stores to mask may alias anything, so values read
    // through pointers would be reloaded after every store.
    const CounterRng r = rng;
    const std::uint64_t thr = threshold, base = first_counter;
    const float sc = scale;
    const float* xs = x;
    float* ys = y;
    std::uint8_t* ms = mask;
    const i64 b = c * kDropChunk, e = std::min(n, b + kDropChunk);
    if (thr == 0) {
      for (i64 i = b; i < e; ++i) ys[i] = xs[i] * sc;
      for (i64 i = b; i < e; ++i) ms[i] = 1;
      continue;
    }
    for (i64 i = b; i < e; ++i) {
      const std::uint64_t h = r.bits(base + static_cast<std::uint64_t>(i));
      const std::uint32_t keep = (h >> 32) >= thr;
      ms[i] = static_cast<std::uint8_t>(keep);
      // x * (keep ? scale : 0) without a branch (keep is a coin flip)
      ys[i] = xs[i] * __builtin_bit_cast(float, __builtin_bit_cast(std::uint32_t, sc) & (0u - keep));
    }
  }
}

void dropout_backward(const float* dy, const std::uint8_t* mask, float* dx, i64 n,
                      double rate) {
  if (n <= 0) return;
  const float scale = keep_scale(rate);
  const i64 nchunks = ceil_div(n, kDropChunk);
#pragma omp parallel for schedule(static) num_threads(fastnn::num_threads()) if (nchunks > 1) FASTNN_FP_TEAM
  for (i64 c = 0; c < nchunks; ++c) {
    const i64 b = c * kDropChunk, e = std::min(n, b + kDropChunk);
    const float sc = scale;
    for (i64 i = b; i < e; ++i) dx[i] = dy[i] * (mask[i] != 0 ? sc : 0.0f);
  }
}

}  // namespace fastnn
