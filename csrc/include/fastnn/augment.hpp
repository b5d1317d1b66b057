// fastnn/augment.hpp -- batched affine image warp with bilinear interpolation,
// the kernel behind fastnn.data.ImageDataGenerator. No Python in here.
//
// Decisions:
// - Each output sample gets its own 2x3 inverse affine matrix M (row-major, six
//   doubles) that maps an OUTPUT pixel (r, c) (row, column; pixel centres on the
//   integer grid) to the INPUT position it samples:
//       src_r = M[0]*r + M[1]*c + M[2]
//       src_c = M[3]*r + M[4]*c + M[5]
//   This is scipy.ndimage.affine_transform's convention (matrix/offset map output
//   coordinates to input coordinates), which Keras's ImageDataGenerator uses. Random
//   parameters (rotation, zoom, shift) and flips are composed into M by the caller
//   (fastnn.data), so the kernel knows nothing about random numbers.
// - Interpolation is bilinear (scipy's order=1 spline, Keras's default): the four
//   neighbours floor(src) and floor(src)+1 are blended with weights (1-fr)(1-fc),
//   (1-fr)fc, fr(1-fc), fr*fc, in float32 (coordinates in double).
// - Neighbours outside the image are chosen by the fill mode:
//     nearest  -- clamp to the edge (aaaa|abcd|dddd), Keras's default; equals
//                 scipy mode='nearest';
//     constant -- the neighbour has the value cval (blended like any pixel), i.e.
//                 scipy mode='grid-constant' / TF's fill_mode='constant' / PyTorch
//                 grid_sample zero padding. (scipy's legacy 'constant' instead
//                 returns cval for any sample outside [0, n-1] and never blends the
//                 edge with cval; we prefer the continuous form);
//     reflect  -- half-sample symmetric (dcba|abcd|dcba), scipy mode='reflect';
//     wrap     -- periodic (abcd|abcd|abcd), scipy mode='grid-wrap' (scipy's legacy
//                 'wrap' has a known off-by-one; we use the periodic one).
// - A matrix that is exactly the identity copies the sample bitwise.
// - Coordinates are clamped to +-2^30 before rounding (a NaN coordinate becomes
//   -2^30), so any finite matrix is safe; the binding rejects non-finite matrices.
//   NaN/Inf pixels propagate through the blend (a NaN neighbour with weight 0 still
//   gives NaN, as 0*NaN does); they are never scanned for.
// - One OpenMP task per output sample, static schedule: every sample is computed by
//   the same sequential code whatever the thread count, so results are bitwise
//   identical for any number of threads. The channel loop (C > 1) is a plain loop
//   over contiguous floats that the compiler vectorizes; C == 1 has its own path.
#pragma once
#include "fastnn/common.hpp"

namespace fastnn {

enum class FillMode : int { nearest = 0, constant = 1, reflect = 2, wrap = 3 };

// x:      (N, H, W, C) float32, C-contiguous (the source images)
// index:  (B,) int64 sample indices into x, each in [0, N); nullptr means
//         index[b] = b (then B <= N)
// mat:    (B, 2, 3) float64 inverse affine matrices as described above, finite
// out:    (B, H, W, C) float32: out[b] = warp(x[index[b]], mat[b])
// H, W, C >= 1; B >= 0.
void affine_warp(const float* x, i64 N, i64 H, i64 W, i64 C, const i64* index, i64 B,
                 const double* mat, FillMode mode, float cval, float* out);

}  // namespace fastnn
