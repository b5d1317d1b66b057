// Transform matrices of Winograd F(2, r) (internal to the convolution files).
#pragma once
#include "fastnn/common.hpp"

namespace fastnn {

constexpr int kMaxAlpha = 6;
constexpr i64 kTileBlock = 48;  // tiles per cache block (a multiple of every MR)

struct WinogradTransforms {
  int r = 0, alpha = 0;
  float AT[2][kMaxAlpha];          // output transform (2 x alpha)
  float G[kMaxAlpha][5];           // filter transform (alpha x r)
  float BT[kMaxAlpha][kMaxAlpha];  // input transform (alpha x alpha)
};

const WinogradTransforms& winograd_transforms(int r);  // r = 3 or 5

#define FASTNN_WINOGRAD_ARGS                                                                   \
  const WinogradTransforms &T, i64 N, i64 H, i64 W, i64 C, i64 K, int r, i64 pt, i64 pl, i64 P, \
      i64 Q, const float *x, const float *w, const float *b, float *y, bool relu

void winograd_conv2d_generic(FASTNN_WINOGRAD_ARGS);
#ifdef FASTNN_X86
void winograd_conv2d_avx2(FASTNN_WINOGRAD_ARGS);
void winograd_conv2d_avx512(FASTNN_WINOGRAD_ARGS);
#endif

}  // namespace fastnn
