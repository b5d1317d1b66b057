// Element-wise activations, softmax and their backward passes.
//
// relu follows the CPU exactly (relu(NaN) = NaN; backward passes dy where x > 0 or
// x is NaN). sigmoid / tanh use CUDA's expf / tanhf (within a few ulp, like the
// CPU's own polynomial; the two may differ in the last bits) in the same stable
// forms: sigmoid from exp(-|x|) only, derivatives as e / (1 + e)^2.
// Softmax: one thread per (outer, inner) position, three passes along len
// (maximum, sum, write) in index order; NaN, +Inf or an all -Inf row give NaN
// across the row, as on the CPU.
#include "fastnn/cuda/kernels.hpp"
#include "launch.cuh"

namespace fastnn {
namespace cuda {

namespace {

struct Relu {
  __device__ float operator()(float x) const { return x < 0.0f ? 0.0f : x; }
};
struct Sigmoid {
  __device__ float operator()(float x) const {
    const float e = expf(-fabsf(x));
    const float r = 1.0f / (1.0f + e);
    return x >= 0.0f ? r : e * r;  // NaN: e = NaN -> NaN either way
  }
};
struct Tanh {
  __device__ float operator()(float x) const { return tanhf(x); }
};
struct ReluGrad {
  __device__ float operator()(float dy, float x) const { return x <= 0.0f ? 0.0f : dy; }
};
struct SigmoidGrad {
  __device__ float operator()(float dy, float x) const {
    const float e = expf(-fabsf(x));
    const float r = 1.0f / (1.0f + e);
    return dy * (e * r * r);
  }
};
struct TanhGrad {
  __device__ float operator()(float dy, float x) const {
    const float e = expf(-2.0f * fabsf(x));
    const float r = 1.0f / (1.0f + e);
    return dy * (4.0f * e * r * r);
  }
};

template <class F>
__global__ void unary_kernel(const float* __restrict__ x, float* __restrict__ y, i64 n, F f) {
  for (i64 i = global_index(); i < n; i += global_stride()) y[i] = f(x[i]);
}

template <class F>
__global__ void binary_kernel(const float* __restrict__ dy, const float* __restrict__ x,
                              float* __restrict__ dx, i64 n, F f) {
  for (i64 i = global_index(); i < n; i += global_stride()) dx[i] = f(dy[i], x[i]);
}

template <class F>
void unary(const float* x, float* y, i64 n, F f, const char* what) {
  if (n <= 0) return;
  unary_kernel<<<grid_1d(n), kThreads>>>(x, y, n, f);
  check_launch(what);
}

template <class F>
void binary(const float* dy, const float* x, float* dx, i64 n, F f, const char* what) {
  if (n <= 0) return;
  binary_kernel<<<grid_1d(n), kThreads>>>(dy, x, dx, n, f);
  check_launch(what);
}

__global__ void softmax_kernel(const float* __restrict__ x, float* __restrict__ y, i64 outer,
                               i64 len, i64 inner) {
  const i64 rows = outer * inner;
  for (i64 r = global_index(); r < rows; r += global_stride()) {
    const i64 o = r / inner, k = r % inner;
    const float* xs = x + o * len * inner + k;
    float* ys = y + o * len * inner + k;
    float m = xs[0];
    for (i64 l = 1; l < len; ++l) {
      const float v = xs[l * inner];
      if (v > m || v != v) m = (m != m) ? m : v;  // NaN sticks
    }
    float s = 0.0f;
    for (i64 l = 0; l < len; ++l) s += expf(xs[l * inner] - m);
    const float inv = 1.0f / s;
    for (i64 l = 0; l < len; ++l) ys[l * inner] = expf(xs[l * inner] - m) * inv;
  }
}

__global__ void softmax_backward_kernel(const float* __restrict__ dy, const float* __restrict__ y,
                                        float* __restrict__ dx, i64 outer, i64 len, i64 inner) {
  const i64 rows = outer * inner;
  for (i64 r = global_index(); r < rows; r += global_stride()) {
    const i64 o = r / inner, k = r % inner;
    const i64 base = o * len * inner + k;
    float dot = 0.0f;
    for (i64 l = 0; l < len; ++l) dot += dy[base + l * inner] * y[base + l * inner];
    for (i64 l = 0; l < len; ++l)
      dx[base + l * inner] = y[base + l * inner] * (dy[base + l * inner] - dot);
  }
}

}  // namespace

void relu_forward(const float* x, float* y, i64 n) { unary(x, y, n, Relu{}, "relu"); }
void sigmoid_forward(const float* x, float* y, i64 n) { unary(x, y, n, Sigmoid{}, "sigmoid"); }
void tanh_forward(const float* x, float* y, i64 n) { unary(x, y, n, Tanh{}, "tanh"); }
void relu_backward(const float* dy, const float* x, float* dx, i64 n) {
  binary(dy, x, dx, n, ReluGrad{}, "relu_backward");
}
void sigmoid_backward(const float* dy, const float* x, float* dx, i64 n) {
  binary(dy, x, dx, n, SigmoidGrad{}, "sigmoid_backward");
}
void tanh_backward(const float* dy, const float* x, float* dx, i64 n) {
  binary(dy, x, dx, n, TanhGrad{}, "tanh_backward");
}

void softmax_forward(const float* x, float* y, i64 outer, i64 len, i64 inner) {
  if (outer * len * inner <= 0) return;
  softmax_kernel<<<grid_1d(outer * inner), kThreads>>>(x, y, outer, len, inner);
  check_launch("softmax");
}

void softmax_backward(const float* dy, const float* y, float* dx, i64 outer, i64 len,
                      i64 inner) {
  if (outer * len * inner <= 0) return;
  softmax_backward_kernel<<<grid_1d(outer * inner), kThreads>>>(dy, y, dx, outer, len, inner);
  check_launch("softmax_backward");
}

}  // namespace cuda
}  // namespace fastnn
