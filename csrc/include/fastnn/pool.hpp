// fastnn/pool.hpp -- 2-D max and average pooling, NHWC float32. No Python in here.
//
// Decisions (the contract the bindings and tests rely on):
//  * Geometry: window (kh, kw), stride (sh, sw), symmetric zero/-inf padding (ph, pw)
//    on top/bottom and left/right. Output size P = floor((H + 2*ph - kh) / sh) + 1
//    (same for Q along W); there is no ceil mode. The caller guarantees
//    ph <= kh / 2, pw <= kw / 2 (PyTorch's rule) and kh <= H + 2*ph, kw <= W + 2*pw
//    (pool2d_output_size() checks the latter). Under these rules every window holds
//    at least one real (non-padding) element and never extends past the padded input.
//  * Max pooling: padding acts as -inf, i.e. only real elements are candidates.
//    Ties go to the first maximum in row-major window order. NaN propagates: a
//    window holding a NaN yields NaN and idx points to the FIRST NaN of the window
//    (PyTorch's CPU kernel picks the last one; values agree, indices may differ
//    only in that NaN case). A window whose real elements are all -inf yields -inf
//    and its first real element.
//  * idx is the flat index into the whole x array, ((n*H + h)*W + w)*C + c, int64.
//  * max_pool2d_backward scatter-adds dy into dx at idx. When every idx of image n
//    lies inside image n (true for anything max_pool2d produced) images run in
//    parallel, each image's contributions added in output order; otherwise one
//    serial loop in output order. Either way dx equals the serial loop bitwise, so
//    results do not depend on the thread count. It validates the indices itself.
//  * Private forms for the layers: max_pool2d_inference (y only) and
//    max_pool2d_window (y and a uint8 offset inside the window, kh*kw <= 256) with
//    max_pool2d_window_backward, which gives bitwise the dx of the flat-index path.
//  * 2x2 windows with stride 2 and no padding (the workbook CNN) have dedicated loops;
//    the max loops are compiled per ISA (pool_max_impl.hpp) and give the same bits on
//    every ISA (they only compare and select).
//  * Average pooling: sums in float32 in row-major window order, then divides by the
//    divisor: kh*kw with count_include_pad (PyTorch, ceil_mode=False: windows never
//    cross the padded border), else the number of real elements in the window.
//  * avg_pool2d_backward is a gather per input element: dx[n,h,w,c] = sum over the
//    windows (p ascending, then q ascending) containing (h, w) of dy[n,p,q,c] / div.
//    No scatter, no races, independent of the thread count.
//  * Work is split over (n, output row) for the forwards and the 2x2 window backward,
//    over images for the other max backwards, (n, input row) for the average
//    backward; the inner loops run along C, which is contiguous.
#pragma once
#include <cstdint>

#include "fastnn/common.hpp"

namespace fastnn {

struct Pool2dShape {
  i64 N = 0, H = 0, W = 0, C = 0;  // input x: (N, H, W, C)
  i64 kh = 1, kw = 1;              // window (pool)
  i64 sh = 1, sw = 1;              // stride
  i64 ph = 0, pw = 0;              // padding, each side
  i64 P = 0, Q = 0;                // output y: (N, P, Q, C), set by pool2d_output_size
};

// Sets s.P and s.Q from the other fields. Returns false (leaving P, Q untouched)
// when the window is larger than the padded input along either axis. Requires
// H, W, kh, kw, sh, sw >= 1 and 0 <= ph <= kh/2, 0 <= pw <= kw/2; never overflows.
inline bool pool2d_output_size(Pool2dShape& s) {
  // kh - 2*ph >= 0 because ph <= kh/2, so nothing here can overflow.
  const i64 eh = s.kh - 2 * s.ph, ew = s.kw - 2 * s.pw;
  if (eh > s.H || ew > s.W) return false;
  s.P = (s.H - eh) / s.sh + 1;
  s.Q = (s.W - ew) / s.sw + 1;
  return true;
}

// x: (N, H, W, C) -> y: (N, P, Q, C), idx: (N, P, Q, C) flat indices into x.
void max_pool2d(const Pool2dShape& s, const float* x, float* y, i64* idx);

// The same y without the indices (inference).
void max_pool2d_inference(const Pool2dShape& s, const float* x, float* y);

// The same y, and per output the winner's offset inside its window,
// win = dh*kw + dw with (dh, dw) from the padded window's top-left corner.
// Requires kh*kw <= 256.
void max_pool2d_window(const Pool2dShape& s, const float* x, float* y, std::uint8_t* win);

// Returns -1 when every idx[i], i < count, lies in [0, limit); else the position of
// the first index outside it.
i64 max_pool2d_find_bad_index(const i64* idx, i64 count, i64 limit);

// dy, idx: N images of out_per_image elements each (e.g. (N, P, Q, C));
// dx: N images of in_per_image elements each (e.g. (N, H, W, C)), fully written
// (zeroed, then dx[idx[i]] += dy[i]). Checks the indices itself: returns -1, or the
// position of the first idx outside [0, N*in_per_image) (dx is then unspecified).
i64 max_pool2d_backward(const float* dy, const i64* idx, i64 N, i64 out_per_image,
                        i64 in_per_image, float* dx);

// Gradient from window offsets: dy, win (N, P, Q, C) -> dx (N, H, W, C), fully
// written; bitwise what max_pool2d_backward gives with the matching flat indices.
// Returns -1, or the position of the first offset that is >= kh*kw or points at
// padding (dx is then unspecified).
i64 max_pool2d_window_backward(const Pool2dShape& s, const float* dy, const std::uint8_t* win,
                               float* dx);

// x: (N, H, W, C) -> y: (N, P, Q, C).
void avg_pool2d(const Pool2dShape& s, bool count_include_pad, const float* x, float* y);

// dy: (N, P, Q, C) -> dx: (N, H, W, C), fully written.
void avg_pool2d_backward(const Pool2dShape& s, bool count_include_pad, const float* dy,
                         float* dx);

}  // namespace fastnn
