// fastnn/activation.hpp -- element-wise activations, softmax and their backward
// passes (float32). No Python in here.
//
// Decisions (see also DESIGN.md, Conventions):
// - relu(x) = (x < 0) ? 0 : x, so relu(NaN) = NaN (as PyTorch). relu_backward
//   follows PyTorch's threshold_backward: dx = (x <= 0) ? 0 : dy, so a NaN input
//   passes dy through.
// - The backward functions of relu/sigmoid/tanh take x, the forward INPUT (not y).
//   softmax_backward takes y = softmax(x): dx = y * (dy - sum(dy * y, axis)).
// - exp/sigmoid/tanh use the vectorizable inline routines in fastnn::vmath below
//   (Cody-Waite range reduction + degree-7 polynomial, within a few ulp of the
//   correctly rounded value), not libm, so GCC -O3 vectorizes the loops on baseline
//   x86-64. sigmoid uses exp(-|x|) only, so it never overflows; tanh uses expm1
//   so it keeps full relative accuracy near 0. NaN propagates, +-Inf saturate.
//   The backward passes use e/(1+e)^2 forms (not s(1-s), 1-t^2), so the
//   derivatives keep their relative accuracy in the tails too.
// - Softmax subtracts the maximum along the axis. A row holding NaN, or +Inf,
//   or only -Inf gives NaN across that row (as NumPy/PyTorch). The arrays are seen
//   as (outer, len, inner) with len the softmax axis; each output element's sums
//   are computed by one thread in a fixed order, so results are bitwise identical
//   for any thread count.
// - Element-wise kernels split the flat array into fixed chunks of kActChunk.
#pragma once
#include <cstdint>

#include "fastnn/common.hpp"

namespace fastnn {

constexpr i64 kActChunk = 16384;  // elements per parallel task (element-wise ops)

// ---- forward: y has x's shape; n = number of elements ---------------------
void relu_forward(const float* x, float* y, i64 n);
void sigmoid_forward(const float* x, float* y, i64 n);
void tanh_forward(const float* x, float* y, i64 n);

// ---- backward: dy, x (forward input), dx all have n elements ----------------
void relu_backward(const float* dy, const float* x, float* dx, i64 n);     // dy * (x > 0)
void sigmoid_backward(const float* dy, const float* x, float* dx, i64 n);  // dy * s * (1 - s)
void tanh_backward(const float* dy, const float* x, float* dx, i64 n);     // dy * (1 - t^2)

// ---- softmax over the middle axis of x seen as (outer, len, inner) ----------
// x, y: (outer, len, inner) contiguous. y[o, :, k] = softmax(x[o, :, k]).
void softmax_forward(const float* x, float* y, i64 outer, i64 len, i64 inner);
// dy, y, dx: (outer, len, inner). dx = y * (dy - sum_l dy[o,l,k] * y[o,l,k]).
void softmax_backward(const float* dy, const float* y, float* dx, i64 outer, i64 len,
                      i64 inner);

// ---- vectorizable scalar math (inline, for loops the compiler vectorizes) ---
// Branch-free: selects are done on the bit patterns so GCC if-converts them even
// with -ftrapping-math (its default).
namespace vmath {

inline std::uint32_t bits(float f) { return __builtin_bit_cast(std::uint32_t, f); }
inline float from_bits(std::uint32_t u) { return __builtin_bit_cast(float, u); }

// c ? a : b, computed with bit operations (no branch).
inline float select(bool c, float a, float b) {
  const std::uint32_t m = 0u - static_cast<std::uint32_t>(c);
  return from_bits((bits(a) & m) | (bits(b) & ~m));
}

// 2^n as a float for an integer n in [-126, 127].
inline float pow2i(std::int32_t n) {
  return from_bits((static_cast<std::uint32_t>(n) + 127u) << 23);
}

// e^x = 2^n * (1 + q) for x in [-104, 88]: n integer, q = e^r - 1 with
// r = x - n ln2, |r| <= ln2 / 2.
inline void exp_parts(float x, float& q, std::int32_t& n) {
  const float kMagic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float t = x * 1.44269504088896341f + kMagic;
  const float nf = t - kMagic;
  float r = x - nf * 0.693359375f;   // ln2 split (Cody-Waite): hi part has 9 bits
  r = r - nf * -2.12194440e-4f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  q = r + r * r * p;
  n = static_cast<std::int32_t>(nf);
}

// e^x for x <= 0 (also fine up to 88), subnormal results included.
// x < -104 (and -Inf) gives 0, NaN gives NaN.
inline float exp_nonpos(float x) {
  const float xc = select(x >= -104.0f, x, -104.0f);  // NaN -> -104 (kept finite)
  float q;
  std::int32_t n;
  exp_parts(xc, q, n);
  // 2^n in two normal factors so that results below FLT_MIN come out subnormal
  // (each multiplication by a power of two is exact for normal results).
  const std::int32_t n1 = n >> 1;
  const float s1 = pow2i(n1), s2 = pow2i(n - n1);
  const float e = (s1 + s1 * q) * s2;
  return select(x != x, x, select(x < -104.0f, 0.0f, e));
}

// e^x - 1 for -18 <= x <= 0, accurate relative to the result near 0.
inline float expm1_nonpos(float x) {
  float q;
  std::int32_t n;
  exp_parts(x, q, n);
  const float s = pow2i(n);
  return s * q + (s - 1.0f);  // exactly q when s == 1
}

// 1 / (1 + e^-x), stable for any x (never overflows).
inline float sigmoid(float x) {
  const float a = __builtin_fabsf(x);
  const float e = exp_nonpos(-a);   // in [0, 1]; NaN for NaN
  const float r = 1.0f / (1.0f + e);
  const float lo = e * r;
  return select(x >= 0.0f, r, lo);  // NaN: x >= 0 is false -> lo = NaN
}

// tanh(x) = sign(x) * (-expm1(-2|x|)) / (2 + expm1(-2|x|)); 1 beyond |x| = 9.
inline float tanh(float x) {
  const float a = __builtin_fabsf(x);
  const float ac = select(a <= 9.0f, a, 9.0f);  // NaN -> 9 (kept finite)
  const float m = expm1_nonpos(-2.0f * ac);
  const float t = -m / (2.0f + m);
  const float st = from_bits((bits(t) & 0x7fffffffu) | (bits(x) & 0x80000000u));
  return select(x != x, x, st);
}

// d sigmoid / dx = s (1 - s) = e / (1 + e)^2 with e = exp(-|x|): no cancellation
// for large |x| (where 1 - s would lose all digits).
inline float sigmoid_grad(float x) {
  const float e = exp_nonpos(-__builtin_fabsf(x));
  const float r = 1.0f / (1.0f + e);
  return e * r * r;
}

// d tanh / dx = 1 - tanh^2 = 4 e / (1 + e)^2 with e = exp(-2|x|), accurate for any x.
inline float tanh_grad(float x) {
  const float e = exp_nonpos(-2.0f * __builtin_fabsf(x));
  const float r = 1.0f / (1.0f + e);
  return 4.0f * e * r * r;
}

}  // namespace vmath
}  // namespace fastnn
