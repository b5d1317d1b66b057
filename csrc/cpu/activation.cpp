// Activations and softmax (float32). See fastnn/activation.hpp for the contract.
#include "fastnn/activation.hpp"

#include <algorithm>
#include <limits>

namespace fastnn {

namespace {

using vmath::select;

constexpr int kLanes = 16;          // fixed accumulator lanes for row reductions
constexpr i64 kColBlock = 256;      // inner-axis columns per task (softmax, inner > 1)
constexpr i64 kParallelMin = 32768; // fewer elements than this: stay on one thread

// Runs body(begin, end) over [0, n) in fixed chunks of kActChunk elements.
template <class F>
void for_chunks(i64 n, F body) {
  const i64 nchunks = ceil_div(n, kActChunk);
#pragma omp parallel for schedule(static) num_threads(fastnn::num_threads()) if (nchunks > 1) FASTNN_FP_TEAM
  for (i64 c = 0; c < nchunks; ++c) {
    const i64 b = c * kActChunk;
    body(b, std::min(n, b + kActChunk));
  }
}

// Maximum of p[0..n) ignoring NaN (-Inf when n == 0 or all NaN). Order-free.
float row_max(const float* p, i64 n) {
  float m[kLanes];
  for (int l = 0; l < kLanes; ++l) m[l] = -std::numeric_limits<float>::infinity();
  i64 i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) m[l] = select(p[i + l] > m[l], p[i + l], m[l]);
  for (int l = 0; i < n; ++i, ++l) m[l] = select(p[i] > m[l], p[i], m[l]);
  float r = m[0];
  for (int l = 1; l < kLanes; ++l) r = select(m[l] > r, m[l], r);
  return r;
}

// Sum of p[0..n) in a fixed order: kLanes strided partial sums, then in lane order.
float row_sum(const float* p, i64 n) {
  float s[kLanes] = {};
  i64 i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) s[l] += p[i + l];
  for (int l = 0; i < n; ++i, ++l) s[l] += p[i];
  float r = s[0];
  for (int l = 1; l < kLanes; ++l) r += s[l];
  return r;
}

// Dot product of a and b in the same fixed order as row_sum.
float row_dot(const float* a, const float* b, i64 n) {
  float s[kLanes] = {};
  i64 i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) s[l] += a[i + l] * b[i + l];
  for (int l = 0; i < n; ++i, ++l) s[l] += a[i] * b[i];
  float r = s[0];
  for (int l = 1; l < kLanes; ++l) r += s[l];
  return r;
}

// softmax of one contiguous row of length len.
void softmax_row(const float* x, float* y, i64 len) {
  const float m = row_max(x, len);
  for (i64 j = 0; j < len; ++j) y[j] = vmath::exp_nonpos(x[j] - m);
  const float inv = 1.0f / row_sum(y, len);
  for (i64 j = 0; j < len; ++j) y[j] *= inv;
}

// softmax over l of the columns k in [0, w) of the (len, inner) block at x.
void softmax_cols(const float* x, float* y, i64 len, i64 inner, i64 w) {
  float m[kColBlock], s[kColBlock];
  for (i64 k = 0; k < w; ++k) m[k] = -std::numeric_limits<float>::infinity();
  for (i64 l = 0; l < len; ++l) {
    const float* xr = x + l * inner;
    for (i64 k = 0; k < w; ++k) m[k] = select(xr[k] > m[k], xr[k], m[k]);
  }
  for (i64 k = 0; k < w; ++k) s[k] = 0.0f;
  for (i64 l = 0; l < len; ++l) {
    const float* xr = x + l * inner;
    float* yr = y + l * inner;
    for (i64 k = 0; k < w; ++k) {
      const float e = vmath::exp_nonpos(xr[k] - m[k]);
      yr[k] = e;
      s[k] += e;
    }
  }
  for (i64 k = 0; k < w; ++k) s[k] = 1.0f / s[k];
  for (i64 l = 0; l < len; ++l) {
    float* yr = y + l * inner;
    for (i64 k = 0; k < w; ++k) yr[k] *= s[k];
  }
}

void softmax_backward_cols(const float* dy, const float* y, float* dx, i64 len, i64 inner,
                           i64 w) {
  float s[kColBlock];
  for (i64 k = 0; k < w; ++k) s[k] = 0.0f;
  for (i64 l = 0; l < len; ++l) {
    const float* a = dy + l * inner;
    const float* b = y + l * inner;
    for (i64 k = 0; k < w; ++k) s[k] += a[k] * b[k];
  }
  for (i64 l = 0; l < len; ++l) {
    const float* a = dy + l * inner;
    const float* b = y + l * inner;
    float* d = dx + l * inner;
    for (i64 k = 0; k < w; ++k) d[k] = b[k] * (a[k] - s[k]);
  }
}

}  // namespace

// ---- element-wise forward ---------------------------------------------------

void relu_forward(const float* x, float* y, i64 n) {
  for_chunks(n, [=](i64 b, i64 e) {
    for (i64 i = b; i < e; ++i) y[i] = x[i] < 0.0f ? 0.0f : x[i];  // NaN stays NaN
  });
}

void sigmoid_forward(const float* x, float* y, i64 n) {
  for_chunks(n, [=](i64 b, i64 e) {
    for (i64 i = b; i < e; ++i) y[i] = vmath::sigmoid(x[i]);
  });
}

void tanh_forward(const float* x, float* y, i64 n) {
  for_chunks(n, [=](i64 b, i64 e) {
    for (i64 i = b; i < e; ++i) y[i] = vmath::tanh(x[i]);
  });
}

// ---- element-wise backward --------------------------------------------------

void relu_backward(const float* dy, const float* x, float* dx, i64 n) {
  for_chunks(n, [=](i64 b, i64 e) {
    for (i64 i = b; i < e; ++i) dx[i] = select(x[i] <= 0.0f, 0.0f, dy[i]);
  });
}

void sigmoid_backward(const float* dy, const float* x, float* dx, i64 n) {
  for_chunks(n, [=](i64 b, i64 e) {
    for (i64 i = b; i < e; ++i) dx[i] = dy[i] * vmath::sigmoid_grad(x[i]);
  });
}

void tanh_backward(const float* dy, const float* x, float* dx, i64 n) {
  for_chunks(n, [=](i64 b, i64 e) {
    for (i64 i = b; i < e; ++i) dx[i] = dy[i] * vmath::tanh_grad(x[i]);
  });
}

// ---- softmax ----------------------------------------------------------------

void softmax_forward(const float* x, float* y, i64 outer, i64 len, i64 inner) {
  if (outer <= 0 || len <= 0 || inner <= 0) return;
  const bool par = outer * len * inner >= kParallelMin;
  if (inner == 1) {
#pragma omp parallel for schedule(static) num_threads(fastnn::num_threads()) if (par) FASTNN_FP_TEAM
    for (i64 o = 0; o < outer; ++o) softmax_row(x + o * len, y + o * len, len);
    return;
  }
  const i64 nblk = ceil_div(inner, kColBlock);
#pragma omp parallel for schedule(static) num_threads(fastnn::num_threads()) if (par) FASTNN_FP_TEAM
  for (i64 t = 0; t < outer * nblk; ++t) {
    const i64 o = t / nblk, k0 = (t % nblk) * kColBlock;
    const i64 off = o * len * inner + k0;
    softmax_cols(x + off, y + off, len, inner, std::min(kColBlock, inner - k0));
  }
}

void softmax_backward(const float* dy, const float* y, float* dx, i64 outer, i64 len,
                      i64 inner) {
  if (outer <= 0 || len <= 0 || inner <= 0) return;
  const bool par = outer * len * inner >= kParallelMin;
  if (inner == 1) {
#pragma omp parallel for schedule(static) num_threads(fastnn::num_threads()) if (par) FASTNN_FP_TEAM
    for (i64 o = 0; o < outer; ++o) {
      const float* a = dy + o * len;
      const float* b = y + o * len;
      float* d = dx + o * len;
      const float s = row_dot(a, b, len);
      for (i64 j = 0; j < len; ++j) d[j] = b[j] * (a[j] - s);
    }
    return;
  }
  const i64 nblk = ceil_div(inner, kColBlock);
#pragma omp parallel for schedule(static) num_threads(fastnn::num_threads()) if (par) FASTNN_FP_TEAM
  for (i64 t = 0; t < outer * nblk; ++t) {
    const i64 o = t / nblk, k0 = (t % nblk) * kColBlock;
    const i64 off = o * len * inner + k0;
    softmax_backward_cols(dy + off, y + off, dx + off, len, inner,
                          std::min(kColBlock, inner - k0));
  }
}

}  // namespace fastnn
