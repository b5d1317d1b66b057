// 2-D max and average pooling, NHWC float32 (see fastnn/pool.hpp for the contract).
#include "fastnn/pool.hpp"

#include <cstdint>
#include <limits>

#define FASTNN_POOL_NS pool_generic
#include "pool_max_impl.hpp"
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

// Max-pooling loops of the active ISA (pool_max_impl.hpp, one copy per ISA; every
// copy gives the same bits).
const MaxPoolLoops& loops() {
  static const MaxPoolLoops& t = []() -> const MaxPoolLoops& {
#ifdef FASTNN_X86
    if (active_isa() == Isa::avx512) return max_pool_loops_avx512();
    if (active_isa() == Isa::avx2) return max_pool_loops_avx2();
#endif
    return max_pool_loops_generic();
  }();
  return t;
}

inline bool is_2x2_stride2(const Pool2dShape& s) {
  return s.kh == 2 && s.kw == 2 && s.sh == 2 && s.sw == 2 && s.ph == 0 && s.pw == 0;
}

// The forwards: work split over output rows r = n*P + p (static schedule); each
// output element depends only on its own window.
template <MaxArg A>
void max_pool2d_rows(const Pool2dShape& s, const float* x, float* y, i64* idx, std::uint8_t* win) {
  const i64 H = s.H, W = s.W, C = s.C, P = s.P, Q = s.Q;
  if (s.N * P * Q * C == 0) return;
  const i64 rows = s.N * P;
  const MaxPoolLoops& L = loops();
  const int nt = num_threads();
  if (is_2x2_stride2(s)) {
#pragma omp parallel for schedule(static) num_threads(nt) FASTNN_FP_TEAM
    for (i64 r = 0; r < rows; ++r) {
      const i64 n = r / P, p = r % P;
      const i64 in_base = ((n * H + 2 * p) * W) * C;  // flat index of x[n, 2p, 0, 0]
      const float* x0 = x + in_base;
      float* yr = y + r * Q * C;
      if (A == MaxArg::none) L.row2x2_none(Q, C, W, x0, yr);
      if (A == MaxArg::flat) L.row2x2_flat(Q, C, W, x0, yr, idx + r * Q * C, in_base);
      if (A == MaxArg::window) L.row2x2_window(Q, C, W, x0, yr, win + r * Q * C);
    }
    return;
  }
  if (A == MaxArg::none) {
#pragma omp parallel for schedule(static) num_threads(nt) FASTNN_FP_TEAM
    for (i64 r = 0; r < rows; ++r) L.row_none(s, r, x, y);
    return;
  }
  const bool wide = A == MaxArg::flat && H * W > std::numeric_limits<std::int32_t>::max();
  Buffer<std::int32_t> pos32(wide ? 1 : static_cast<std::size_t>(nt) * static_cast<std::size_t>(C));
  Buffer<i64> pos64(wide ? static_cast<std::size_t>(nt) * static_cast<std::size_t>(C) : 1);
#pragma omp parallel num_threads(nt) FASTNN_FP_TEAM
  {
    const i64 t = thread_id();
    std::int32_t* pos = pos32.data() + (wide ? 0 : t * C);
    i64* pos_wide = pos64.data() + (wide ? t * C : 0);
#pragma omp for schedule(static)
    for (i64 r = 0; r < rows; ++r) {
      if (A == MaxArg::window)
        L.row_window(s, r, x, y, win, pos);
      else if (!wide)
        L.row_flat(s, r, x, y, idx, pos);
      else  // an image of 2**31 pixels or more: int64 positions, baseline loop
        max_pool_row_general<MaxArg::flat, i64>(s, r, x, y, idx, nullptr, pos_wide);
    }
  }
}

}  // namespace

const MaxPoolLoops& max_pool_loops_generic() { return pool_generic::table(); }

// x: (N, H, W, C) -> y, idx: (N, P, Q, C)
void max_pool2d(const Pool2dShape& s, const float* x, float* y, i64* idx) {
  max_pool2d_rows<MaxArg::flat>(s, x, y, idx, nullptr);
}

void max_pool2d_inference(const Pool2dShape& s, const float* x, float* y) {
  max_pool2d_rows<MaxArg::none>(s, x, y, nullptr, nullptr);
}

void max_pool2d_window(const Pool2dShape& s, const float* x, float* y, std::uint8_t* win) {
  max_pool2d_rows<MaxArg::window>(s, x, y, nullptr, win);
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
// Images whose indices all point into themselves (anything max_pool2d produced) run in
// parallel, each zeroed and accumulated while it is in cache, every index checked just
// before its add; if some image has an index outside it, every index is checked and
// one serial loop does it all again.
i64 max_pool2d_backward(const float* dy, const i64* idx, i64 N, i64 out_per_image,
                        i64 in_per_image, float* dx) {
  if (N == 0 || in_per_image == 0) return -1;
  int outside = 0;
#pragma omp parallel for schedule(static) reduction(| : outside) num_threads(num_threads()) FASTNN_FP_TEAM
  for (i64 n = 0; n < N; ++n) {
    const i64 lo = n * in_per_image;
    const i64* in = idx + n * out_per_image;
    float* dxn = dx + lo;
    for (i64 i = 0; i < in_per_image; ++i) dxn[i] = 0.0f;
    const float* g = dy + n * out_per_image;
    for (i64 i = 0; i < out_per_image; ++i) {
      // checked as it goes (unsigned: wraps instead of overflowing for any int64)
      const std::uint64_t j = static_cast<std::uint64_t>(in[i]) - static_cast<std::uint64_t>(lo);
      if (j >= static_cast<std::uint64_t>(in_per_image)) {
        outside = 1;
        break;
      }
      dxn[j] += g[i];
    }
  }
  if (!outside) return -1;
  const i64 total_out = N * out_per_image, total_in = N * in_per_image;
  const i64 bad = max_pool2d_find_bad_index(idx, total_out, total_in);
  if (bad >= 0) return bad;
  for (i64 i = 0; i < total_in; ++i) dx[i] = 0.0f;
  for (i64 i = 0; i < total_out; ++i) dx[idx[i]] += dy[i];
  return -1;
}

// dy, win: (N, P, Q, C) -> dx: (N, H, W, C). 2x2 / stride 2 / no padding: each input
// element gets at most one contribution, written directly per output row. Otherwise
// per image: zero, then dx[winner] += dy in output order (what the flat-index path
// does, so the bits agree).
i64 max_pool2d_window_backward(const Pool2dShape& s, const float* dy, const std::uint8_t* win,
                               float* dx) {
  const i64 H = s.H, W = s.W, C = s.C, P = s.P, Q = s.Q, N = s.N;
  if (N * H * W * C == 0) return -1;
  const int nt = num_threads();
  const i64 out_per_image = P * Q * C, in_per_image = H * W * C;
  int bad = 0;
  if (is_2x2_stride2(s)) {
    const MaxPoolLoops& L = loops();
    const i64 rows = N * P;
#pragma omp parallel for schedule(static) reduction(| : bad) num_threads(nt) FASTNN_FP_TEAM
    for (i64 r = 0; r < rows; ++r) {
      const i64 n = r / P, p = r % P;
      float* dx0 = dx + ((n * H + 2 * p) * W) * C;
      bad |= L.row2x2_window_backward(Q, C, W, dy + r * Q * C, win + r * Q * C, dx0);
      if (p == P - 1)  // input rows below the last window (odd H)
        for (i64 i = (n * H + 2 * P) * W * C; i < (n + 1) * in_per_image; ++i) dx[i] = 0.0f;
    }
  } else {
    const i64 kk = s.kh * s.kw;
#pragma omp parallel for schedule(static) reduction(| : bad) num_threads(nt) FASTNN_FP_TEAM
    for (i64 n = 0; n < N; ++n) {
      float* dxn = dx + n * in_per_image;
      for (i64 i = 0; i < in_per_image; ++i) dxn[i] = 0.0f;
      const float* g = dy + n * out_per_image;
      const std::uint8_t* wn = win + n * out_per_image;
      int b = 0;
      for (i64 p = 0; p < P; ++p) {
        const i64 h_start = p * s.sh - s.ph;
        for (i64 q = 0; q < Q; ++q) {
          const i64 w_start = q * s.sw - s.pw;
          const i64 o = (p * Q + q) * C;
          for (i64 c = 0; c < C; ++c) {
            const i64 k = wn[o + c];
            const i64 h = h_start + k / s.kw, w = w_start + k % s.kw;
            if (k >= kk || h < 0 || h >= H || w < 0 || w >= W) {
              b = 1;
              continue;
            }
            dxn[(h * W + w) * C + c] += g[o + c];
          }
        }
      }
      bad |= b;
    }
  }
  if (!bad) return -1;
  // the first offset that is out of its window or points at padding
  const i64 kk = s.kh * s.kw;
  for (i64 i = 0; i < N * out_per_image; ++i) {
    const i64 c = i % C, q = (i / C) % Q, p = (i / (C * Q)) % P;
    (void)c;
    const i64 k = win[i];
    const i64 h = p * s.sh - s.ph + k / s.kw, w = q * s.sw - s.pw + k % s.kw;
    if (k >= kk || h < 0 || h >= H || w < 0 || w >= W) return i;
  }
  return -1;
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
