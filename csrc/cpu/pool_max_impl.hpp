// Max-pooling loops, compiled once per ISA: included by pool.cpp (baseline, namespace
// pool_generic), pool_avx2.cpp and pool_avx512.cpp with FASTNN_POOL_NS set. The loops
// are plain C++ over the contiguous channel axis (NHWC) that GCC vectorizes with the
// flags of the including file. Max pooling only compares and selects, so every ISA
// gives the same bits; the OpenMP partitioning lives in pool.cpp.
//
// "Which element won" is recorded in one of three forms (MaxArg):
//  * none:   only y (inference);
//  * flat:   int64 flat index into x (the public max_pool2d);
//  * window: uint8 offset inside the padded window, k = dh*kw + dw with (dh, dw)
//            relative to the window's top-left corner (padding included); the layer's
//            training path, for windows of at most 256 elements.
// The rule is the same everywhere: a candidate replaces the running maximum when it is
// strictly greater, or when it is the first NaN (NaN propagates, first NaN wins), so
// ties go to the first maximum in row-major window order.
#ifndef FASTNN_POOL_MAX_DECL
#define FASTNN_POOL_MAX_DECL
#include <cstdint>
#include <cstring>

#include "fastnn/common.hpp"
#include "fastnn/pool.hpp"

#define POOL_R __restrict

namespace fastnn {

enum class MaxArg { none = 0, flat = 1, window = 2 };

struct MaxPoolLoops {
  // One output row of a 2x2 / stride 2 / no padding pool: Q pixels x C channels from
  // the input rows x0 and x0 + W*C (columns 0 .. 2Q-1). idx_base: flat index of x0[0].
  void (*row2x2_none)(i64 Q, i64 C, i64 W, const float* x0, float* y);
  void (*row2x2_flat)(i64 Q, i64 C, i64 W, const float* x0, float* y, i64* idx, i64 idx_base);
  void (*row2x2_window)(i64 Q, i64 C, i64 W, const float* x0, float* y, std::uint8_t* win);
  // Its gradient from window offsets: writes the whole input rows dx0 and dx0 + W*C
  // (each element 0.0f + its dy, or 0.0f; columns >= 2Q are not in any window).
  // Returns nonzero when some offset is > 3 (the rows are then unspecified).
  int (*row2x2_window_backward)(i64 Q, i64 C, i64 W, const float* dy, const std::uint8_t* win,
                                float* dx0);
  // Any geometry: output row r = n*P + p of y (and idx / win), the best position per
  // channel tracked in pos (C int32 of scratch). flat needs H*W < 2**31.
  void (*row_none)(const Pool2dShape& s, i64 r, const float* x, float* y);
  void (*row_flat)(const Pool2dShape& s, i64 r, const float* x, float* y, i64* idx,
                   std::int32_t* pos);
  void (*row_window)(const Pool2dShape& s, i64 r, const float* x, float* y, std::uint8_t* win,
                     std::int32_t* pos);
};

const MaxPoolLoops& max_pool_loops_generic();
#ifdef FASTNN_X86
const MaxPoolLoops& max_pool_loops_avx2();
const MaxPoolLoops& max_pool_loops_avx512();
#endif

// The real (non-padding) input range [lo, hi) covered by window o along one axis.
inline void pool_window_range(i64 o, i64 stride, i64 pad, i64 k, i64 n, i64& lo, i64& hi) {
  const i64 start = o * stride - pad;
  lo = start < 0 ? 0 : start;
  hi = start + k < n ? start + k : n;
}

// Does candidate v replace the running maximum best? Strictly greater, or the first NaN.
inline bool max_pool_takes(float v, float best) {
  return (v > best) | ((v != v) & (best == best));
}

// The general row loop (any window, stride, padding), for one PosT. pos[c] holds the
// winner's pixel offset h*W + w inside the image (flat) or its window offset (window).
template <MaxArg A, class PosT>
void max_pool_row_general(const Pool2dShape& s, i64 r, const float* POOL_R x, float* POOL_R y,
                          i64* POOL_R idx, std::uint8_t* POOL_R win, PosT* POOL_R pos) {
  const i64 H = s.H, W = s.W, C = s.C, P = s.P, Q = s.Q;
  const i64 n = r / P, p = r % P;
  i64 h_lo, h_hi;
  pool_window_range(p, s.sh, s.ph, s.kh, H, h_lo, h_hi);
  const i64 h_start = p * s.sh - s.ph;
  const float* xn = x + n * H * W * C;
  for (i64 q = 0; q < Q; ++q) {
    i64 w_lo, w_hi;
    pool_window_range(q, s.sw, s.pw, s.kw, W, w_lo, w_hi);
    const i64 w_start = q * s.sw - s.pw;
    float* POOL_R yq = y + (r * Q + q) * C;  // running maximum per channel
    {  // the first real element of the window starts the running maximum
      const float* xp = xn + (h_lo * W + w_lo) * C;
      for (i64 c = 0; c < C; ++c) yq[c] = xp[c];
      if (A != MaxArg::none) {
        const PosT first = static_cast<PosT>(A == MaxArg::flat ? h_lo * W + w_lo
                                                               : (h_lo - h_start) * s.kw + (w_lo - w_start));
        for (i64 c = 0; c < C; ++c) pos[c] = first;
      }
    }
    for (i64 h = h_lo; h < h_hi; ++h) {
      for (i64 w = (h == h_lo ? w_lo + 1 : w_lo); w < w_hi; ++w) {
        const float* POOL_R xp = xn + (h * W + w) * C;
        if (A == MaxArg::none) {
          for (i64 c = 0; c < C; ++c) {
            const float v = xp[c], best = yq[c];
            yq[c] = max_pool_takes(v, best) ? v : best;
          }
        } else {
          const PosT pix = static_cast<PosT>(A == MaxArg::flat ? h * W + w
                                                               : (h - h_start) * s.kw + (w - w_start));
          for (i64 c = 0; c < C; ++c) {
            const float v = xp[c], best = yq[c];
            const bool take = max_pool_takes(v, best);
            yq[c] = take ? v : best;
            pos[c] = take ? pix : pos[c];
          }
        }
      }
    }
    if (A == MaxArg::flat) {
      i64* POOL_R iq = idx + (r * Q + q) * C;
      const i64 base = n * H * W;
      for (i64 c = 0; c < C; ++c) iq[c] = (base + static_cast<i64>(pos[c])) * C + c;
    } else if (A == MaxArg::window) {
      std::uint8_t* POOL_R wq = win + (r * Q + q) * C;
      for (i64 c = 0; c < C; ++c) wq[c] = static_cast<std::uint8_t>(pos[c]);
    }
  }
}

}  // namespace fastnn
#endif  // FASTNN_POOL_MAX_DECL

#ifdef FASTNN_POOL_NS
namespace fastnn {
namespace FASTNN_POOL_NS {
namespace {

// The 2x2 window of output pixel q, channel c: (2p, 2q), (2p, 2q+1), (2p+1, 2q),
// (2p+1, 2q+1), visited in that (row-major) order as one pass per window element over
// the whole output row, y holding the running maximum: one select per loop body,
// which GCC vectorizes. (Measured: faster than one fused loop over the four elements
// when x comes from memory rather than cache.)
void row2x2_max(i64 Q, i64 C, i64 W, const float* POOL_R x0, float* POOL_R y) {
  const float* POOL_R x1 = x0 + W * C;
  for (i64 q = 0; q < Q; ++q) {  // (2p, 2q) against (2p, 2q+1)
    const float* POOL_R a = x0 + 2 * q * C;
    float* POOL_R yq = y + q * C;
    for (i64 c = 0; c < C; ++c) {
      const float u = a[c], v = a[C + c];
      yq[c] = max_pool_takes(v, u) ? v : u;
    }
  }
  for (i64 e = 0; e < 2; ++e) {  // then (2p+1, 2q), (2p+1, 2q+1)
    for (i64 q = 0; q < Q; ++q) {
      const float* POOL_R b = x1 + (2 * q + e) * C;
      float* POOL_R yq = y + q * C;
      for (i64 c = 0; c < C; ++c) {
        const float u = yq[c], v = b[c];
        yq[c] = max_pool_takes(v, u) ? v : u;
      }
    }
  }
}

// The winner's window offset, once the maximum m is known: the first element equal to
// m, or the first NaN when m is NaN. That is the element the running maximum kept:
// every element before the first maximum is smaller and none after it is greater
// (+0 and -0 compare equal, and the first of them wins either way). Computed in
// registers after y: tracking it in memory during the passes ("keep the old offset"
// selects) becomes masked stores with AVX-512, which stall the loads that follow.
inline std::int32_t winner2x2(float a, float b, float d, float m) {
  const bool nan = m != m;
  std::int32_t k = 3;
  k = ((d == m) | (nan & (d != d))) ? 2 : k;
  k = ((b == m) | (nan & (b != b))) ? 1 : k;
  k = ((a == m) | (nan & (a != a))) ? 0 : k;
  return k;
}

void row2x2_none(i64 Q, i64 C, i64 W, const float* x0, float* y) { row2x2_max(Q, C, W, x0, y); }

void row2x2_flat(i64 Q, i64 C, i64 W, const float* POOL_R x0, float* POOL_R y, i64* POOL_R idx,
                 i64 idx_base) {
  row2x2_max(Q, C, W, x0, y);
  const i64 WC = W * C;
  const float* POOL_R x1 = x0 + WC;
  for (i64 q = 0; q < Q; ++q) {  // the two input rows are in cache now
    const float* POOL_R a = x0 + 2 * q * C;
    const float* POOL_R d = x1 + 2 * q * C;
    const float* POOL_R yq = y + q * C;
    i64* POOL_R iq = idx + q * C;
    const i64 base = idx_base + 2 * q * C;
    for (i64 c = 0; c < C; ++c) {
      const std::int32_t k = winner2x2(a[c], a[C + c], d[c], yq[c]);
      iq[c] = base + c + static_cast<i64>(k & 1) * C + static_cast<i64>(k >> 1) * WC;
    }
  }
}

void row2x2_window(i64 Q, i64 C, i64 W, const float* POOL_R x0, float* POOL_R y,
                   std::uint8_t* POOL_R win) {
  row2x2_max(Q, C, W, x0, y);
  const float* POOL_R x1 = x0 + W * C;
  for (i64 q = 0; q < Q; ++q) {
    const float* POOL_R a = x0 + 2 * q * C;
    const float* POOL_R d = x1 + 2 * q * C;
    const float* POOL_R yq = y + q * C;
    std::uint8_t* POOL_R wq = win + q * C;
    for (i64 c = 0; c < C; ++c) wq[c] = static_cast<std::uint8_t>(winner2x2(a[c], a[C + c], d[c], yq[c]));
  }
}

int row2x2_window_backward(i64 Q, i64 C, i64 W, const float* POOL_R dy,
                           const std::uint8_t* POOL_R win, float* POOL_R dx0) {
  const i64 WC = W * C;
  int bad = 0;
  for (i64 i = 0; i < Q * C; ++i) bad |= win[i] > 3;
  // one pass per window element, so each loop has a single store stream (GCC would
  // otherwise version the loop on run-time alias checks between the four); the
  // select is a bit mask, which GCC vectorizes on every ISA (a ?: here became a
  // branch with AVX2)
  for (std::uint8_t e = 0; e < 4; ++e) {
    float* POOL_R row = dx0 + (e >> 1) * WC + (e & 1) * C;
    for (i64 q = 0; q < Q; ++q) {
      float* POOL_R out = row + 2 * q * C;
      const float* POOL_R g = dy + q * C;
      const std::uint8_t* POOL_R wq = win + q * C;
      for (i64 c = 0; c < C; ++c) {
        const float v = 0.0f + g[c];  // what a zeroed dx plus dy gives (-0 -> +0)
        std::uint32_t bits;
        std::memcpy(&bits, &v, sizeof bits);
        bits &= 0u - static_cast<std::uint32_t>(wq[c] == e);  // v, or +0.0f
        std::memcpy(&out[c], &bits, sizeof bits);
      }
    }
  }
  for (i64 i = 2 * Q * C; i < WC; ++i) dx0[i] = 0.0f;  // columns no window covers
  for (i64 i = 2 * Q * C; i < WC; ++i) dx0[WC + i] = 0.0f;
  return bad;
}

void row_none(const Pool2dShape& s, i64 r, const float* x, float* y) {
  max_pool_row_general<MaxArg::none, std::int32_t>(s, r, x, y, nullptr, nullptr, nullptr);
}
void row_flat(const Pool2dShape& s, i64 r, const float* x, float* y, i64* idx, std::int32_t* pos) {
  max_pool_row_general<MaxArg::flat, std::int32_t>(s, r, x, y, idx, nullptr, pos);
}
void row_window(const Pool2dShape& s, i64 r, const float* x, float* y, std::uint8_t* win,
                std::int32_t* pos) {
  max_pool_row_general<MaxArg::window, std::int32_t>(s, r, x, y, nullptr, win, pos);
}

const MaxPoolLoops& table() {
  static const MaxPoolLoops t{row2x2_none, row2x2_flat, row2x2_window, row2x2_window_backward,
                              row_none,    row_flat,    row_window};
  return t;
}

}  // namespace
}  // namespace FASTNN_POOL_NS
}  // namespace fastnn
#endif  // FASTNN_POOL_NS
