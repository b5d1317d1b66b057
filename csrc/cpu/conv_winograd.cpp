// Winograd minimal filtering F(2x2, r x r) for stride-1 square convolutions
// (r = 3 or 5), NHWC / HWIO, float32.
//
// Construction (Toom-Cook): with alpha = r + 1 interpolation points (alpha - 1
// finite points and infinity), the correlation of a 2-wide output with an r-tap
// filter is  y = AT [ (G g) . (BT d) ]  where G = V_r (evaluation of the filter
// polynomial), AT = V_2^T, and BT = (V_alpha^{-1})^T. In 2-D each output tile of
// 2x2 pixels needs alpha^2 products per (input channel, output channel) instead
// of 4 r^2: 16 vs 36 for 3x3 (2.25x fewer), 36 vs 100 for 5x5 (2.78x fewer).
// The products are alpha^2 independent GEMMs (tiles x C) . (C x K), run with the
// same register-blocked micro-kernel as the other paths, on blocks of tiles
// that stay in cache between the input transform, the GEMMs and the output
// transform.
//
// Error: the transforms are computed in double and rounded once; measured max
// error against the float64 reference is ~1e-6 (3x3) and ~1e-5 (5x5) of the
// output's largest magnitude on N(0,1) data (tests hold it under 1e-4).
// Deterministic: every output is computed by a fixed sequence of operations
// that depends only on the shape.
#include "fastnn/conv_winograd.hpp"

#include <algorithm>
#include <stdexcept>

#include "fastnn/gemm.hpp"

#define FASTNN_WINOGRAD_NS winograd_generic
#include "conv_winograd_impl.hpp"

namespace fastnn {

const WinogradTransforms& winograd_transforms(int m, int r) {
  static constexpr WinogradTransforms t23 = WinoConst<2, 3>::T, t25 = WinoConst<2, 5>::T,
                                      t43 = WinoConst<4, 3>::T, t45 = WinoConst<4, 5>::T;
  if (m == 2) return r == 3 ? t23 : t25;
  return r == 3 ? t43 : t45;
}

bool winograd_supported(i64 R, i64 S, i64 sh, i64 sw) {
  return R == S && (R == 3 || R == 5) && sh == 1 && sw == 1;
}

int winograd_auto_tile(i64 r, i64 P, i64 Q) {
  // Products per output pixel and channel pair: alpha^2 / m^2 times the share of
  // computed (tile-padded) outputs that are real. F(4x4) needs fewer (2.25 vs 4 for
  // 3x3, 4 vs 9 for 5x5) unless the padding of the last tiles eats that: outputs of
  // 1-2 pixels, and 5-6 pixels for 3x3 kernels, keep F(2x2).
  auto products = [&](i64 m) {
    const double a = static_cast<double>(m + r - 1);
    const double padded = static_cast<double>(ceil_div(P, m) * m * ceil_div(Q, m) * m);
    return a * a / static_cast<double>(m * m) * padded / static_cast<double>(P * Q);
  };
  return products(4) < products(2) ? 4 : 2;
}

void winograd_conv2d(i64 N, i64 H, i64 W, i64 C, i64 K, int m, int r, i64 pt, i64 pl, i64 P, i64 Q,
                     const float* x, const float* w, const float* b, float* y, bool relu) {
  const WinogradTransforms& T = winograd_transforms(m, r);
#ifdef FASTNN_X86
  if (active_isa() == Isa::avx512) return winograd_conv2d_avx512(T, N, H, W, C, K, r, pt, pl, P, Q, x, w, b, y, relu);
  if (active_isa() == Isa::avx2) return winograd_conv2d_avx2(T, N, H, W, C, K, r, pt, pl, P, Q, x, w, b, y, relu);
#endif
  winograd_conv2d_generic(T, N, H, W, C, K, r, pt, pl, P, Q, x, w, b, y, relu);
}

void winograd_conv2d_backward_weight(i64 N, i64 H, i64 W, i64 C, i64 K, int m, int r, i64 pt, i64 pl, i64 P, i64 Q,
                                     const float* x, const float* dy, float* dw) {
#ifdef FASTNN_X86
  if (active_isa() == Isa::avx512) return winograd_backward_weight_avx512(m, r, N, H, W, C, K, pt, pl, P, Q, x, dy, dw);
  if (active_isa() == Isa::avx2) return winograd_backward_weight_avx2(m, r, N, H, W, C, K, pt, pl, P, Q, x, dy, dw);
#endif
  winograd_backward_weight_generic(m, r, N, H, W, C, K, pt, pl, P, Q, x, dy, dw);
}

void winograd_backward_weight_generic(FASTNN_WINOGRAD_WGRAD_ARGS) {
  winograd_generic::winograd_backward_weight_impl(m, r, N, H, W, C, K, pt, pl, P, Q, x, dy, dw);
}

void winograd_conv2d_generic(FASTNN_WINOGRAD_ARGS) {
  winograd_generic::winograd_conv2d_impl(T, N, H, W, C, K, r, pt, pl, P, Q, x, w, b, y, relu);
}

}  // namespace fastnn
