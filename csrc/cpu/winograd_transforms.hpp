// Transform matrices of Winograd F(m x m, r x r) (internal to the convolution
// files): an m x m output tile of an r x r correlation. The forward and data
// gradient use m = 2 or 4 with r = 3 or 5; the weight gradient swaps the roles
// (output r x r = the kernel, "filter" m x m = a tile of dy).
//
// Construction (Toom-Cook): with alpha = m + r - 1 interpolation points (alpha - 1
// finite points p_k and infinity), the correlation of an m-wide output with an
// r-tap filter is  y = AT [ (G g) . (BT d) ]  where
//   G  (alpha x r) = V_r      (evaluation of the filter polynomial at the points),
//   AT (m x alpha) = V_m^T    (evaluation of the output polynomial, transposed),
//   BT (alpha x alpha) = (V_alpha^{-1})^T,
// with V_n[k][i] = p_k^i for a finite point and, for infinity, 1 at i = n - 1.
// The matrices are computed at compile time in double (Gauss-Jordan with partial
// pivoting), rounded once to float; entries below 1e-12 in magnitude are exact zeros
// of the construction and are stored as 0 so the unrolled transforms skip them.
#pragma once
#include "fastnn/common.hpp"

namespace fastnn {

constexpr int kMaxAlpha = 8;
constexpr int kMaxTile = 5;
constexpr int kMaxTaps = 5;

struct WinogradTransforms {
  int m = 0, r = 0, alpha = 0;
  float AT[kMaxTile][kMaxAlpha] = {};  // output transform (m x alpha)
  float G[kMaxAlpha][kMaxTaps] = {};   // filter transform (alpha x r)
  float BT[kMaxAlpha][kMaxAlpha] = {};  // input transform (alpha x alpha)
};

namespace winograd_detail {

constexpr double abs_d(double v) { return v < 0 ? -v : v; }
constexpr double pow_i(double b, int e) {
  double p = 1.0;
  for (int i = 0; i < e; ++i) p *= b;
  return p;
}
constexpr float snap(double v) { return abs_d(v) < 1e-12 ? 0.0f : static_cast<float>(v); }

// The alpha - 1 finite interpolation points for alpha = 4, 6, 8 (infinity is the
// last point): small, exactly representable values; for alpha = 6, {0, +-1, 1/2, -2}
// had the smallest float32 error among the sets tried (about 2.5x below {0, +-1, +-2}
// for F(4x4, 3x3)).
constexpr double kPoints4[] = {0.0, 1.0, -1.0};
constexpr double kPoints6[] = {0.0, 1.0, -1.0, 0.5, -2.0};
constexpr double kPoints8[] = {0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0};

constexpr const double* points(int alpha) {
  return alpha == 4 ? kPoints4 : alpha == 6 ? kPoints6 : kPoints8;
}

// V_n evaluated at the alpha points: row k, column i (i < n).
constexpr double vandermonde(const double* p, int alpha, int k, int i, int n) {
  return k < alpha - 1 ? pow_i(p[k], i) : (i == n - 1 ? 1.0 : 0.0);
}

constexpr WinogradTransforms build(int m, int r) {
  WinogradTransforms t{};
  t.m = m;
  t.r = r;
  t.alpha = m + r - 1;
  const int n = t.alpha;
  const double* p = points(n);
  double a[kMaxAlpha][kMaxAlpha] = {}, inv[kMaxAlpha][kMaxAlpha] = {};
  for (int k = 0; k < n; ++k)
    for (int i = 0; i < n; ++i) {
      a[k][i] = vandermonde(p, n, k, i, n);
      inv[k][i] = k == i ? 1.0 : 0.0;
    }
  for (int col = 0; col < n; ++col) {
    int piv = col;
    for (int i = col + 1; i < n; ++i)
      if (abs_d(a[i][col]) > abs_d(a[piv][col])) piv = i;
    for (int j = 0; j < n; ++j) {
      const double s1 = a[col][j], s2 = inv[col][j];
      a[col][j] = a[piv][j];
      inv[col][j] = inv[piv][j];
      a[piv][j] = s1;
      inv[piv][j] = s2;
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
  for (int k = 0; k < n; ++k) {
    for (int i = 0; i < m; ++i) t.AT[i][k] = snap(vandermonde(p, n, k, i, m));
    for (int j = 0; j < r; ++j) t.G[k][j] = snap(vandermonde(p, n, k, j, r));
    for (int i = 0; i < n; ++i) t.BT[k][i] = snap(inv[i][k]);
  }
  return t;
}

}  // namespace winograd_detail

// Compile-time transforms of F(M x M, R x R), for the unrolled tile loops.
template <int M, int R>
struct WinoConst {
  static constexpr int A = M + R - 1;
  static constexpr WinogradTransforms T = winograd_detail::build(M, R);
};

const WinogradTransforms& winograd_transforms(int m, int r);  // m = 2 or 4, r = 3 or 5

// The weight gradient's arguments: dw (r, r, C, K) from x (N, H, W, C) and dy (N, P, Q, K).
#define FASTNN_WINOGRAD_WGRAD_ARGS                                                                  \
  int m, int r, i64 N, i64 H, i64 W, i64 C, i64 K, i64 pt, i64 pl, i64 P, i64 Q, const float *x, \
      const float *dy, float *dw

#define FASTNN_WINOGRAD_ARGS                                                                   \
  const WinogradTransforms &T, i64 N, i64 H, i64 W, i64 C, i64 K, int r, i64 pt, i64 pl, i64 P, \
      i64 Q, const float *x, const float *w, const float *b, float *y, bool relu

void winograd_conv2d_generic(FASTNN_WINOGRAD_ARGS);
void winograd_backward_weight_generic(FASTNN_WINOGRAD_WGRAD_ARGS);
#ifdef FASTNN_X86
void winograd_conv2d_avx2(FASTNN_WINOGRAD_ARGS);
void winograd_conv2d_avx512(FASTNN_WINOGRAD_ARGS);
void winograd_backward_weight_avx2(FASTNN_WINOGRAD_WGRAD_ARGS);
void winograd_backward_weight_avx512(FASTNN_WINOGRAD_WGRAD_ARGS);
#endif

}  // namespace fastnn
