// fastnn/conv.hpp -- 2-D convolution, NHWC activations, HWIO (R, S, C, K) weights.
//
//   x  (N, H, W, C)   input
//   w  (R, S, C, K)   kernel (Keras layout)
//   b  (K,)           bias (may be null)
//   y  (N, P, Q, K)   output, P = (H + pad_top + pad_bottom - R) / stride_h + 1
//
// y[n,p,q,k] = b[k] + sum_{r,s,c} x[n, p*sh - pt + r, q*sw - pl + s, c] * w[r,s,c,k]
// (x is zero outside the image).
//
// Algorithms: "gemm" is an implicit GEMM (no im2col buffer): the register-blocked
// micro-kernel reads the input pixels of each output tile through a table of row
// pointers, one per (r, s) segment of C contiguous channels. "direct" is the plain
// reference loop nest. Per output element the summation order is fixed by the
// shape alone (segments in (r, s) order, channels in order), so results do not
// depend on the thread count or on the batch size.
#pragma once
#include <stdexcept>
#include <string>

#include "fastnn/common.hpp"

namespace fastnn {

struct Conv2dShape {
  i64 N, H, W, C;      // input
  i64 R, S, K;         // kernel
  i64 sh, sw;          // strides
  i64 pt, pb, pl, pr;  // padding top, bottom, left, right
  i64 P, Q;            // output spatial size
};

// winograd: Winograd with the output tile chosen by winograd_auto_tile; winograd_f2x2 /
// winograd_f4x4: Winograd F(2x2, r x r) / F(4x4, r x r) explicitly.
enum class ConvAlgorithm { automatic, direct, gemm, winograd, winograd_f2x2, winograd_f4x4 };

inline bool is_winograd(ConvAlgorithm a) {
  return a == ConvAlgorithm::winograd || a == ConvAlgorithm::winograd_f2x2 || a == ConvAlgorithm::winograd_f4x4;
}

// The algorithm "auto" picks for a shape (a fixed rule of the shape only).
ConvAlgorithm conv2d_auto_algorithm(const Conv2dShape& s);

// Fills P and Q; throws std::invalid_argument on impossible geometry. Inline (no
// kernel in it) so that the CUDA bindings share the rule without the CPU library.
inline void conv2d_finish_shape(Conv2dShape& s) {
  i64 hp = 0, wp = 0;
  if (s.pt < 0 || s.pb < 0 || s.pl < 0 || s.pr < 0 || s.sh < 1 || s.sw < 1 ||
      __builtin_add_overflow(s.H, s.pt, &hp) || __builtin_add_overflow(hp, s.pb, &hp) ||
      __builtin_add_overflow(s.W, s.pl, &wp) || __builtin_add_overflow(wp, s.pr, &wp))
    throw std::invalid_argument("padding/stride: out of range for input (" + std::to_string(s.H) + ", " +
                                std::to_string(s.W) + ")");
  if (s.R > hp || s.S > wp)
    throw std::invalid_argument("w: kernel (" + std::to_string(s.R) + ", " + std::to_string(s.S) +
                                ") is larger than the padded input (" + std::to_string(hp) +
                                ", " + std::to_string(wp) + ")");
  s.P = (hp - s.R) / s.sh + 1;
  s.Q = (wp - s.S) / s.sw + 1;
}

// y = conv(x, w) + b, then ReLU when relu is true.
void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* b,
                    float* y, bool relu, ConvAlgorithm algo = ConvAlgorithm::automatic);
// dx (N, H, W, C) from dy (N, P, Q, K) and w.
void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx,
                          ConvAlgorithm algo = ConvAlgorithm::automatic);
// dw (R, S, C, K) from dy and x.
void conv2d_backward_weight(const Conv2dShape& s, const float* dy, const float* x, float* dw,
                            ConvAlgorithm algo = ConvAlgorithm::automatic);
// db (K,) = sum of dy over (N, P, Q).
void conv2d_backward_bias(const Conv2dShape& s, const float* dy, float* db);

}  // namespace fastnn
