// fastnn/dropout.hpp -- inverted dropout with a counter-based random stream.
// No Python in here.
//
// Decisions:
// - Each element's uniform number is a pure function of (seed, counter), where
//   counter = (sample_offset + n) * per_sample_size + j for batch row n and
//   in-sample (flattened) element j, i.e. sample_offset * per_sample_size + the
//   flat index; arithmetic is modulo 2^64. So a mask never depends on how a batch
//   is split, on the thread count, or on the run. Callers that want a fresh mask
//   per epoch fold the epoch into the seed (e.g. seed = hash(base_seed, epoch)).
// - h = mix64(k2 ^ mix64(k1 + counter)) with k1 = mix64(seed ^ C1),
//   k2 = mix64(seed ^ C2) and mix64 the splitmix64 finalizer (a bijection on 64-bit
//   words). u = (h >> 32) / 2^32 in [0, 1); an element is kept iff u >= rate,
//   done exactly in integers: (h >> 32) >= ceil(rate * 2^32).
// - y = x * (keep ? 1 / (1 - rate) : 0), with 1 / (1 - rate) rounded to float once.
//   Dropped NaN/Inf inputs give NaN (0 * NaN), as PyTorch and TensorFlow do.
//   rate == 0 keeps everything and y == x bitwise.
// - mask holds 1 (kept) or 0 (dropped). dropout_backward treats any nonzero mask
//   value as kept: dx = dy * (mask != 0 ? 1 / (1 - rate) : 0).
#pragma once
#include <cstdint>

#include "fastnn/common.hpp"

namespace fastnn {

// splitmix64 finalizer: a bijective 64-bit mixing function.
inline std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The counter-based stream: 64 random bits for (seed, counter).
struct CounterRng {
  std::uint64_t k1, k2;
  explicit CounterRng(std::uint64_t seed)
      : k1(mix64(seed ^ 0x243F6A8885A308D3ull)), k2(mix64(seed ^ 0x13198A2E03707344ull)) {}
  std::uint64_t bits(std::uint64_t counter) const { return mix64(k2 ^ mix64(k1 + counter)); }
};

// x, y: n float32 elements; mask: n bytes. first_counter = sample_offset *
// per_sample_size (mod 2^64); element i uses counter first_counter + i.
// 0 <= rate < 1 (checked by the caller).
void dropout_forward(const float* x, float* y, std::uint8_t* mask, i64 n, double rate,
                     std::uint64_t seed, std::uint64_t first_counter);

// dy, dx: n float32 elements; mask: n bytes (nonzero = kept).
void dropout_backward(const float* dy, const std::uint8_t* mask, float* dx, i64 n,
                      double rate);

}  // namespace fastnn
