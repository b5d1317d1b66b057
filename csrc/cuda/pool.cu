// 2-D max and average pooling, NHWC, one thread per output (forward) or input
// (backward) element, each in the CPU's order (fastnn/pool.hpp): the same window
// order, tie and NaN rules, the same float operations. Compiled with -fmad=false
// (CMakeLists) so the average backward's dy * (1 / divisor) sums are not contracted.
#include "fastnn/cuda/kernels.hpp"
#include "launch.cuh"

namespace fastnn {
namespace cuda {

namespace {

__device__ __forceinline__ void window_range(i64 o, i64 stride, i64 pad, i64 k, i64 n, i64& lo,
                                             i64& hi) {
  const i64 start = o * stride - pad;
  lo = start < 0 ? 0 : start;
  hi = start + k < n ? start + k : n;
}

// Windows [lo, hi] along one axis that contain input position i (empty if lo > hi).
__device__ __forceinline__ void windows_containing(i64 i, i64 stride, i64 pad, i64 k, i64 n_out,
                                                   i64& lo, i64& hi) {
  const i64 first = i + pad - k + 1;
  lo = first <= 0 ? 0 : (first + stride - 1) / stride;
  hi = (i + pad) / stride;
  if (hi > n_out - 1) hi = n_out - 1;
}

__device__ __forceinline__ float divisor(const Pool2dShape& s, bool cip, i64 p, i64 q) {
  if (cip) return static_cast<float>(s.kh * s.kw);
  i64 h_lo, h_hi, w_lo, w_hi;
  window_range(p, s.sh, s.ph, s.kh, s.H, h_lo, h_hi);
  window_range(q, s.sw, s.pw, s.kw, s.W, w_lo, w_hi);
  return static_cast<float>((h_hi - h_lo) * (w_hi - w_lo));
}

__global__ void max_pool_kernel(Pool2dShape s, const float* __restrict__ x, float* __restrict__ y,
                                std::int64_t* __restrict__ idx) {
  const i64 total = s.N * s.P * s.Q * s.C;
  for (i64 o = global_index(); o < total; o += global_stride()) {
    const i64 c = o % s.C;
    i64 r = o / s.C;
    const i64 q = r % s.Q;
    r /= s.Q;
    const i64 p = r % s.P, n = r / s.P;
    i64 h_lo, h_hi, w_lo, w_hi;
    window_range(p, s.sh, s.ph, s.kh, s.H, h_lo, h_hi);
    window_range(q, s.sw, s.pw, s.kw, s.W, w_lo, w_hi);
    const float* xn = x + n * s.H * s.W * s.C + c;
    float best = -INFINITY;
    i64 pos = h_lo * s.W + w_lo;
    for (i64 h = h_lo; h < h_hi; ++h)
      for (i64 w = w_lo; w < w_hi; ++w) {
        const float v = xn[(h * s.W + w) * s.C];
        if (v > best || (v != v && best == best)) {  // first maximum, or the first NaN
          best = v;
          pos = h * s.W + w;
        }
      }
    y[o] = best;
    idx[o] = (n * s.H * s.W + pos) * s.C + c;
  }
}

__global__ void check_index_kernel(const std::int64_t* __restrict__ idx, i64 N, i64 out_per_image,
                                   i64 in_per_image, i64 C, unsigned long long* first_bad,
                                   int* outside_plane) {
  const i64 total = N * out_per_image, limit = N * in_per_image;
  for (i64 i = global_index(); i < total; i += global_stride()) {
    const i64 v = idx[i];
    if (v < 0 || v >= limit) {
      atomicMin(first_bad, static_cast<unsigned long long>(i));
      continue;
    }
    const i64 n = i / out_per_image, c = i % C;
    if (v / in_per_image != n || v % C != c) *outside_plane = 1;
  }
}

// One thread per (n, c) plane adds its outputs in increasing order: every idx of
// the plane points into it, so planes never touch the same dx element.
__global__ void max_pool_backward_plane_kernel(const float* __restrict__ dy,
                                               const std::int64_t* __restrict__ idx, i64 N,
                                               i64 out_per_image, i64 C, float* __restrict__ dx) {
  const i64 planes = N * C;
  for (i64 pl = global_index(); pl < planes; pl += global_stride()) {
    const i64 n = pl / C, c = pl % C;
    const i64 base = n * out_per_image + c;
    for (i64 i = 0; i < out_per_image; i += C) dx[idx[base + i]] += dy[base + i];
  }
}

// Any valid idx: one thread, in increasing order (only for hand-made indices).
__global__ void max_pool_backward_serial_kernel(const float* __restrict__ dy,
                                                const std::int64_t* __restrict__ idx, i64 total,
                                                float* __restrict__ dx) {
  if (global_index() != 0) return;
  for (i64 i = 0; i < total; ++i) dx[idx[i]] += dy[i];
}

__global__ void avg_pool_kernel(Pool2dShape s, bool cip, const float* __restrict__ x,
                                float* __restrict__ y) {
  const i64 total = s.N * s.P * s.Q * s.C;
  for (i64 o = global_index(); o < total; o += global_stride()) {
    const i64 c = o % s.C;
    i64 r = o / s.C;
    const i64 q = r % s.Q;
    r /= s.Q;
    const i64 p = r % s.P, n = r / s.P;
    i64 h_lo, h_hi, w_lo, w_hi;
    window_range(p, s.sh, s.ph, s.kh, s.H, h_lo, h_hi);
    window_range(q, s.sw, s.pw, s.kw, s.W, w_lo, w_hi);
    const float* xn = x + n * s.H * s.W * s.C + c;
    float acc = 0.0f;
    for (i64 h = h_lo; h < h_hi; ++h)
      for (i64 w = w_lo; w < w_hi; ++w) acc += xn[(h * s.W + w) * s.C];
    y[o] = acc / divisor(s, cip, p, q);
  }
}

__global__ void avg_pool_backward_kernel(Pool2dShape s, bool cip, const float* __restrict__ dy,
                                         float* __restrict__ dx) {
  const i64 total = s.N * s.H * s.W * s.C;
  for (i64 e = global_index(); e < total; e += global_stride()) {
    const i64 c = e % s.C;
    i64 r = e / s.C;
    const i64 w = r % s.W;
    r /= s.W;
    const i64 h = r % s.H, n = r / s.H;
    i64 p_lo, p_hi, q_lo, q_hi;
    windows_containing(h, s.sh, s.ph, s.kh, s.P, p_lo, p_hi);
    windows_containing(w, s.sw, s.pw, s.kw, s.Q, q_lo, q_hi);
    const float* dyn = dy + n * s.P * s.Q * s.C + c;
    float acc = 0.0f;
    for (i64 p = p_lo; p <= p_hi; ++p)
      for (i64 q = q_lo; q <= q_hi; ++q) {
        const float inv = 1.0f / divisor(s, cip, p, q);
        acc += dyn[(p * s.Q + q) * s.C] * inv;
      }
    dx[e] = acc;
  }
}

}  // namespace

void max_pool2d(const Pool2dShape& s, const float* x, float* y, std::int64_t* idx) {
  const i64 total = s.N * s.P * s.Q * s.C;
  if (total <= 0) return;
  max_pool_kernel<<<grid_1d(total), kThreads>>>(s, x, y, idx);
  check_launch("max_pool2d");
}

i64 max_pool2d_check_index(const std::int64_t* idx, i64 N, i64 out_per_image, i64 in_per_image,
                           i64 C, bool* in_plane) {
  *in_plane = true;
  const i64 total = N * out_per_image;
  if (total <= 0) return -1;
  struct Flags {
    unsigned long long first_bad;
    int outside_plane;
  };
  Flags host{~0ull, 0};
  Scratch flags(sizeof(Flags));
  copy_host_to_device(flags.as<void>(), &host, sizeof(Flags));
  Flags* dev = flags.as<Flags>();
  check_index_kernel<<<grid_1d(total), kThreads>>>(idx, N, out_per_image, in_per_image, C,
                                                   &dev->first_bad, &dev->outside_plane);
  check_launch("max_pool2d_backward (index check)");
  copy_device_to_host(&host, dev, sizeof(Flags));
  *in_plane = host.outside_plane == 0;
  return host.first_bad == ~0ull ? -1 : static_cast<i64>(host.first_bad);
}

void max_pool2d_backward(const float* dy, const std::int64_t* idx, i64 N, i64 out_per_image,
                         i64 in_per_image, i64 C, bool in_plane, float* dx) {
  fill_zero(dx, static_cast<std::size_t>(N * in_per_image) * sizeof(float));
  if (N <= 0 || out_per_image <= 0) return;
  if (in_plane) {
    max_pool_backward_plane_kernel<<<grid_1d(N * C), kThreads>>>(dy, idx, N, out_per_image, C, dx);
  } else {
    max_pool_backward_serial_kernel<<<1, 1>>>(dy, idx, N * out_per_image, dx);
  }
  check_launch("max_pool2d_backward");
}

void avg_pool2d(const Pool2dShape& s, bool count_include_pad, const float* x, float* y) {
  const i64 total = s.N * s.P * s.Q * s.C;
  if (total <= 0) return;
  avg_pool_kernel<<<grid_1d(total), kThreads>>>(s, count_include_pad, x, y);
  check_launch("avg_pool2d");
}

void avg_pool2d_backward(const Pool2dShape& s, bool count_include_pad, const float* dy,
                         float* dx) {
  const i64 total = s.N * s.H * s.W * s.C;
  if (total <= 0) return;
  avg_pool_backward_kernel<<<grid_1d(total), kThreads>>>(s, count_include_pad, dy, dx);
  check_launch("avg_pool2d_backward");
}

}  // namespace cuda
}  // namespace fastnn
