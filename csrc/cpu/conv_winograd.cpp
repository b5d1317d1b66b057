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
#include <cmath>
#include <stdexcept>

#include "fastnn/gemm.hpp"

#define FASTNN_WINOGRAD_NS winograd_generic
#include "conv_winograd_impl.hpp"

namespace fastnn {

namespace {

// Solves for the inverse of the alpha x alpha matrix (Gauss-Jordan, partial pivoting).
void invert(double (*a)[kMaxAlpha], double (*inv)[kMaxAlpha], int n) {
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) inv[i][j] = (i == j) ? 1.0 : 0.0;
  for (int col = 0; col < n; ++col) {
    int piv = col;
    for (int i = col + 1; i < n; ++i)
      if (std::fabs(a[i][col]) > std::fabs(a[piv][col])) piv = i;
    for (int j = 0; j < n; ++j) {
      std::swap(a[col][j], a[piv][j]);
      std::swap(inv[col][j], inv[piv][j]);
    }
    const double d = a[col][col];
    for (int j = 0; j < n; ++j) {
      a[col][j] /= d;
      inv[col][j] /= d;
    }
    for (int i = 0; i < n; ++i) {
      if (i == col) continue;
      const double f = a[i][col];
      for (int j = 0; j < n; ++j) {
        a[i][j] -= f * a[col][j];
        inv[i][j] -= f * inv[col][j];
      }
    }
  }
}

WinogradTransforms make_transforms(int r) {
  WinogradTransforms t;
  t.r = r;
  t.alpha = r + 1;
  const int n = t.alpha;
  // finite points; the last point is infinity
  static const double pts3[] = {0.0, 1.0, -1.0};
  static const double pts5[] = {0.0, 1.0, -1.0, 0.5, -2.0};
  const double* p = r == 3 ? pts3 : pts5;
  double V[kMaxAlpha][kMaxAlpha] = {}, C[kMaxAlpha][kMaxAlpha] = {};
  for (int k = 0; k < n; ++k)
    for (int i = 0; i < n; ++i)
      V[k][i] = (k < n - 1) ? std::pow(p[k], i) : (i == n - 1 ? 1.0 : 0.0);
  invert(V, C, n);
  for (int k = 0; k < n; ++k) {
    for (int i = 0; i < 2; ++i)  // AT = V_2^T
      t.AT[i][k] = static_cast<float>((k < n - 1) ? std::pow(p[k], i) : (i == 1 ? 1.0 : 0.0));
    for (int j = 0; j < r; ++j)  // G = V_r
      t.G[k][j] = static_cast<float>((k < n - 1) ? std::pow(p[k], j) : (j == r - 1 ? 1.0 : 0.0));
    for (int i = 0; i < n; ++i)  // BT = C^T
      t.BT[k][i] = static_cast<float>(C[i][k]);
  }
  return t;
}

}  // namespace

const WinogradTransforms& winograd_transforms(int r) {
  static const WinogradTransforms t3 = make_transforms(3), t5 = make_transforms(5);
  return r == 3 ? t3 : t5;
}

bool winograd_supported(i64 R, i64 S, i64 sh, i64 sw) {
  return R == S && (R == 3 || R == 5) && sh == 1 && sw == 1;
}

void winograd_conv2d(i64 N, i64 H, i64 W, i64 C, i64 K, int r, i64 pt, i64 pl, i64 P, i64 Q,
                     const float* x, const float* w, const float* b, float* y, bool relu) {
  const WinogradTransforms& T = winograd_transforms(r);
#ifdef FASTNN_X86
  if (active_isa() == Isa::avx512) return winograd_conv2d_avx512(T, N, H, W, C, K, r, pt, pl, P, Q, x, w, b, y, relu);
  if (active_isa() == Isa::avx2) return winograd_conv2d_avx2(T, N, H, W, C, K, r, pt, pl, P, Q, x, w, b, y, relu);
#endif
  winograd_conv2d_generic(T, N, H, W, C, K, r, pt, pl, P, Q, x, w, b, y, relu);
}

void winograd_conv2d_generic(FASTNN_WINOGRAD_ARGS) {
  winograd_generic::winograd_conv2d_impl(T, N, H, W, C, K, r, pt, pl, P, Q, x, w, b, y, relu);
}

}  // namespace fastnn
