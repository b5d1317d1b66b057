// fastnn/conv_winograd.hpp -- Winograd F(2x2, r x r) convolution (r = 3, 5; stride 1).
#pragma once
#include "fastnn/common.hpp"

namespace fastnn {

bool winograd_supported(i64 R, i64 S, i64 sh, i64 sw);

// y (N, P, Q, K) = conv(x (N, H, W, C), w (r, r, C, K)) + b, ReLU if relu; the
// input is zero outside [0, H) x [0, W); output pixel (p, q) reads input rows
// p - pt .. p - pt + r - 1 and columns q - pl .. q - pl + r - 1.
void winograd_conv2d(i64 N, i64 H, i64 W, i64 C, i64 K, int r, i64 pt, i64 pl, i64 P, i64 Q,
                     const float* x, const float* w, const float* b, float* y, bool relu);

}  // namespace fastnn
