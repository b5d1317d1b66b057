// 2-D max and average pooling, NHWC float32 (see fastnn/pool.hpp for the contract).
#include "fastnn/pool.hpp"

#include <cstdint>
#include <limits>
#ifdef FASTNN_OPENMP
#include <omp.h>
#endif

namespace fastnn {

namespace {

inline int thread_id() {
#ifdef FASTNN_OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// The real (non-padding) input range [lo, hi) covered by window o along one axis.
inline void window_range(i64 o, i64 stride, i64 pad, i64 k, i64 n, i64& lo, i64& hi) {
  const i64 start = o * stride - pad;
  lo = start < 0 ? 0 : start;
  hi = start + k < n ? start + k : n;
}

// The windows [lo, hi] (inclusive) along one axis that contain input position i:
// o*stride - pad <= i <= o*stride - pad + k - 1, clipped to [0, n_out - 1].
// Empty (lo > hi) when i falls in a gap between windows (stride > k).
inline void windows_containing(i64 i, i64 stride, i64 pad, i64 k, i64 n_out, i64& lo,
                               i64& hi) {
  const i64 first = i + pad - k + 1;  // smallest o*stride allowed
  lo = first <= 0 ? 0 : ceil_div(first, stride);
  hi = (i + pad) / stride;            // i + pad >= 0
  if (hi > n_out - 1) hi = n_out - 1;
}

// Divisor of each output row (or column) along one axis: k with count_include_pad
// (windows never cross the padded border), else the number of real positions.
void axis_divisors(i64 n_out, i64 stride, i64 pad, i64 k, i64 n_in, bool count_include_pad,
                   i64* d) {
  for (i64 o = 0; o < n_out; ++o) {
    i64 lo, hi;
    window_range(o, stride, pad, k, n_in, lo, hi);
    d[o] = count_include_pad ? k : hi - lo;
  }
}

// PosT holds a pixel offset h*W + w inside one image: int32 when it fits (so the
// per-channel select vectorizes alongside the float compare), else int64.
template <class PosT>
void max_pool2d_impl(const Pool2dShape& s, const float* x, float* y, i64* idx) {
  const i64 H = s.H, W = s.W, C = s.C, P = s.P, Q = s.Q;
  const i64 rows = s.N * P;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const int nt = num_threads();
  Buffer<PosT> pos_all(static_cast<std::size_t>(nt) * static_cast<std::size_t>(C));

#pragma omp parallel num_threads(nt) FASTNN_FP_TEAM
  {
    PosT* pos = pos_all.data() + static_cast<i64>(thread_id()) * C;  // best pixel per channel
#pragma omp for schedule(static)
    for (i64 r = 0; r < rows; ++r) {  // r = n*P + p
      const i64 n = r / P, p = r % P;
      i64 h_lo, h_hi;
      window_range(p, s.sh, s.ph, s.kh, H, h_lo, h_hi);
      const float* xn = x + n * H * W * C;
      for (i64 q = 0; q < Q; ++q) {
        i64 w_lo, w_hi;
        window_range(q, s.sw, s.pw, s.kw, W, w_lo, w_hi);
        float* yq = y + (r * Q + q) * C;  // running maximum per channel
        i64* iq = idx + (r * Q + q) * C;
        const PosT first = static_cast<PosT>(h_lo * W + w_lo);
        for (i64 c = 0; c < C; ++c) {
          yq[c] = neg_inf;
          pos[c] = first;
        }
        for (i64 h = h_lo; h < h_hi; ++h) {
          for (i64 w = w_lo; w < w_hi; ++w) {
            const PosT pix = static_cast<PosT>(h * W + w);
            const float* xp = xn + (h * W + w) * C;
            for (i64 c = 0; c < C; ++c) {
              const float v = xp[c], best = yq[c];
              // strictly greater (first maximum wins), or the first NaN
              const bool take = (v > best) | ((v != v) & (best == best));
              yq[c] = take ? v : best;
              pos[c] = take ? pix : pos[c];
            }
          }
        }
        const i64 base = n * H * W;
        for (i64 c = 0; c < C; ++c) iq[c] = (base + static_cast<i64>(pos[c])) * C + c;
      }
    }
  }
}

}  // namespace

// x: (N, H, W, C) -> y, idx: (N, P, Q, C)
void max_pool2d(const Pool2dShape& s, const float* x, float* y, i64* idx) {
  if (s.N * s.P * s.Q * s.C == 0) return;
  if (s.H * s.W <= std::numeric_limits<std::int32_t>::max())
    max_pool2d_impl<std::int32_t>(s, x, y, idx);
  else
    max_pool2d_impl<i64>(s, x, y, idx);
}

i64 max_pool2d_find_bad_index(const i64* idx, i64 count, i64 limit) {
  int bad = 0;
#pragma omp parallel for schedule(static) reduction(| : bad) num_threads(num_threads()) FASTNN_FP_TEAM
  for (i64 i = 0; i < count; ++i) bad |= (idx[i] < 0) | (idx[i] >= limit);
  if (!bad) return -1;
  for (i64 i = 0; i < count; ++i)
    if (idx[i] < 0 || idx[i] >= limit) return i;
  return -1;
}

// dy, idx: (N, out_per_image) -> dx: (N, in_per_image); dx[idx[i]] += dy[i] in order i.
void max_pool2d_backward(const float* dy, const i64* idx, i64 N, i64 out_per_image,
                         i64 in_per_image, float* dx) {
  const i64 total_in = N * in_per_image;
#pragma omp parallel for schedule(static) num_threads(num_threads()) FASTNN_FP_TEAM
  for (i64 i = 0; i < total_in; ++i) dx[i] = 0.0f;
  if (N == 0 || out_per_image == 0) return;

  // Does every index of image n point into image n? Then images are independent.
  int outside = 0;
#pragma omp parallel for schedule(static) reduction(| : outside) num_threads(num_threads()) FASTNN_FP_TEAM
  for (i64 n = 0; n < N; ++n) {
    const i64 lo = n * in_per_image, hi = lo + in_per_image;
    const i64* in = idx + n * out_per_image;
    int o = 0;
    for (i64 i = 0; i < out_per_image; ++i) o |= (in[i] < lo) | (in[i] >= hi);
    outside |= o;
  }

  if (!outside) {
#pragma omp parallel for schedule(static) num_threads(num_threads()) FASTNN_FP_TEAM
    for (i64 n = 0; n < N; ++n) {
      const i64* in = idx + n * out_per_image;
      const float* g = dy + n * out_per_image;
      for (i64 i = 0; i < out_per_image; ++i) dx[in[i]] += g[i];
    }
  } else {
    const i64 total_out = N * out_per_image;
    for (i64 i = 0; i < total_out; ++i) dx[idx[i]] += dy[i];
  }
}

// Divisor of every output row (dh, P values) and column (dw, Q values).
static void window_divisors(const Pool2dShape& s, bool count_include_pad, i64* dh, i64* dw) {
  axis_divisors(s.P, s.sh, s.ph, s.kh, s.H, count_include_pad, dh);
  axis_divisors(s.Q, s.sw, s.pw, s.kw, s.W, count_include_pad, dw);
}

// x: (N, H, W, C) -> y: (N, P, Q, C)
void avg_pool2d(const Pool2dShape& s, bool count_include_pad, const float* x, float* y) {
  const i64 H = s.H, W = s.W, C = s.C, P = s.P, Q = s.Q;
  if (s.N * P * Q * C == 0) return;
  Buffer<i64> div_h(P), div_w(Q);
  window_divisors(s, count_include_pad, div_h.data(), div_w.data());
  const i64* dh = div_h.data();
  const i64* dw = div_w.data();
  const i64 rows = s.N * P;

#pragma omp parallel for schedule(static) num_threads(num_threads()) FASTNN_FP_TEAM
  for (i64 r = 0; r < rows; ++r) {  // r = n*P + p
    const i64 n = r / P, p = r % P;
    i64 h_lo, h_hi;
    window_range(p, s.sh, s.ph, s.kh, H, h_lo, h_hi);
    const float* xn = x + n * H * W * C;
    for (i64 q = 0; q < Q; ++q) {
      i64 w_lo, w_hi;
      window_range(q, s.sw, s.pw, s.kw, W, w_lo, w_hi);
      float* yq = y + (r * Q + q) * C;
      for (i64 c = 0; c < C; ++c) yq[c] = 0.0f;
      for (i64 h = h_lo; h < h_hi; ++h) {
        for (i64 w = w_lo; w < w_hi; ++w) {
          const float* xp = xn + (h * W + w) * C;
          for (i64 c = 0; c < C; ++c) yq[c] += xp[c];
        }
      }
      const float d = static_cast<float>(dh[p] * dw[q]);
      for (i64 c = 0; c < C; ++c) yq[c] /= d;
    }
  }
}

// dy: (N, P, Q, C) -> dx: (N, H, W, C); gather per input element.
void avg_pool2d_backward(const Pool2dShape& s, bool count_include_pad, const float* dy,
                         float* dx) {
  const i64 H = s.H, W = s.W, C = s.C, P = s.P, Q = s.Q;
  if (s.N * H * W * C == 0) return;
  Buffer<i64> div_h(P), div_w(Q);
  window_divisors(s, count_include_pad, div_h.data(), div_w.data());
  const i64* dh = div_h.data();
  const i64* dw = div_w.data();
  const i64 rows = s.N * H;

#pragma omp parallel for schedule(static) num_threads(num_threads()) FASTNN_FP_TEAM
  for (i64 r = 0; r < rows; ++r) {  // r = n*H + h
    const i64 n = r / H, h = r % H;
    i64 p_lo, p_hi;
    windows_containing(h, s.sh, s.ph, s.kh, P, p_lo, p_hi);
    const float* dyn = dy + n * P * Q * C;
    for (i64 w = 0; w < W; ++w) {
      i64 q_lo, q_hi;
      windows_containing(w, s.sw, s.pw, s.kw, Q, q_lo, q_hi);
      float* dxp = dx + (r * W + w) * C;
      for (i64 c = 0; c < C; ++c) dxp[c] = 0.0f;
      for (i64 p = p_lo; p <= p_hi; ++p) {
        for (i64 q = q_lo; q <= q_hi; ++q) {
          const float inv = 1.0f / static_cast<float>(dh[p] * dw[q]);
          const float* g = dyn + (p * Q + q) * C;
          for (i64 c = 0; c < C; ++c) dxp[c] += g[c] * inv;
        }
      }
    }
  }
}

}  // namespace fastnn
