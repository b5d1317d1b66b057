// Winograd convolution body compiled for avx512 (see conv_winograd_impl.hpp).
#define FASTNN_WINOGRAD_NS winograd_avx512
#include "conv_winograd_impl.hpp"

namespace fastnn {
void winograd_conv2d_avx512(FASTNN_WINOGRAD_ARGS) {
  winograd_avx512::winograd_conv2d_impl(T, N, H, W, C, K, r, pt, pl, P, Q, x, w, b, y, relu);
}
void winograd_backward_weight_avx512(FASTNN_WINOGRAD_WGRAD_ARGS) {
  winograd_avx512::winograd_backward_weight_impl(m, r, N, H, W, C, K, pt, pl, P, Q, x, dy, dw);
}
}  // namespace fastnn
