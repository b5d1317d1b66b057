// fastnn/conv_winograd.hpp -- Winograd F(m x m, r x r) convolution (m = 2, 4; r = 3, 5;
// stride 1).
#pragma once
#include "fastnn/common.hpp"

namespace fastnn {

bool winograd_supported(i64 R, i64 S, i64 sh, i64 sw);

// The output tile m that "winograd" and "auto" use for an r x r kernel and a P x Q
// output (2 or 4): the one with fewer products per output, a rule of the shape only.
int winograd_auto_tile(i64 r, i64 P, i64 Q);

// y (N, P, Q, K) = conv(x (N, H, W, C), w (r, r, C, K)) + b, ReLU if relu; the
// input is zero outside [0, H) x [0, W); output pixel (p, q) reads input rows
// p - pt .. p - pt + r - 1 and columns q - pl .. q - pl + r - 1.
void winograd_conv2d(i64 N, i64 H, i64 W, i64 C, i64 K, int m, int r, i64 pt, i64 pl, i64 P, i64 Q,
                     const float* x, const float* w, const float* b, float* y, bool relu);

// dw (r, r, C, K) = the weight gradient of that convolution for dy (N, P, Q, K):
// Winograd F(r x r, m x m) over m x m tiles of dy (see conv_winograd_impl.hpp).
void winograd_conv2d_backward_weight(i64 N, i64 H, i64 W, i64 C, i64 K, int m, int r, i64 pt, i64 pl, i64 P, i64 Q,
                                     const float* x, const float* dy, float* dw);

}  // namespace fastnn
