// Batched affine warp with bilinear interpolation (see fastnn/augment.hpp for the
// contract and the decisions).
#include "fastnn/augment.hpp"

#include <cstring>

namespace fastnn {

namespace {

constexpr double kCoordLimit = 1073741824.0;  // 2^30: keeps every index math in range

// Clamp a sampling coordinate to [-2^30, 2^30]; NaN becomes -2^30.
inline double clamp_coord(double v) {
  if (!(v >= -kCoordLimit)) return -kCoordLimit;
  return v > kCoordLimit ? kCoordLimit : v;
}

// floor() for |v| <= 2^30 by truncation (no libm call on baseline x86-64).
inline i64 floor_i64(double v) {
  i64 t = static_cast<i64>(v);
  return (static_cast<double>(t) > v) ? t - 1 : t;
}

// The in-image index that neighbour i along an axis of size n reads, or -1 for
// "use cval" (constant mode).
inline i64 map_index(i64 i, i64 n, FillMode mode) {
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case FillMode::nearest:
      return i < 0 ? 0 : n - 1;
    case FillMode::reflect: {
      const i64 p = 2 * n;
      i64 m = i % p;
      if (m < 0) m += p;
      return m < n ? m : p - 1 - m;
    }
    case FillMode::wrap: {
      i64 m = i % n;
      if (m < 0) m += n;
      return m;
    }
    default:
      return -1;
  }
}

// One bilinear blend; the same expression is used by every path.
inline float blend(float v00, float v01, float v10, float v11, float wr, float wc) {
  const float ur = 1.0f - wr, uc = 1.0f - wc;
  return ur * (uc * v00 + wc * v01) + wr * (uc * v10 + wc * v11);
}

// Warps one sample.
// src: (H, W, C) float32; m: 6 doubles; cvals: C floats equal to cval;
// dst: (H, W, C) float32.
template <bool kSingleChannel>
void warp_one(const float* src, i64 H, i64 W, i64 C, const double* m, FillMode mode,
              const float* cvals, float* dst) {
  const i64 row = W * C;
  const std::uint64_t h1 = static_cast<std::uint64_t>(H - 1);
  const std::uint64_t w1 = static_cast<std::uint64_t>(W - 1);
  for (i64 r = 0; r < H; ++r) {
    const double base_r = m[0] * static_cast<double>(r) + m[2];
    const double base_c = m[3] * static_cast<double>(r) + m[5];
    float* o = dst + r * row;
    for (i64 c = 0; c < W; ++c) {
      const double sr = clamp_coord(base_r + m[1] * static_cast<double>(c));
      const double sc = clamp_coord(base_c + m[4] * static_cast<double>(c));
      const i64 r0 = floor_i64(sr), c0 = floor_i64(sc);
      const float wr = static_cast<float>(sr - static_cast<double>(r0));
      const float wc = static_cast<float>(sc - static_cast<double>(c0));
      const float *p00, *p01, *p10, *p11;
      if (static_cast<std::uint64_t>(r0) < h1 && static_cast<std::uint64_t>(c0) < w1) {
        // Interior: all four neighbours inside the image.
        p00 = src + r0 * row + c0 * C;
        p01 = p00 + C;
        p10 = p00 + row;
        p11 = p10 + C;
      } else {
        const i64 ra = map_index(r0, H, mode), rb = map_index(r0 + 1, H, mode);
        const i64 ca = map_index(c0, W, mode), cb = map_index(c0 + 1, W, mode);
        p00 = (ra < 0 || ca < 0) ? cvals : src + ra * row + ca * C;
        p01 = (ra < 0 || cb < 0) ? cvals : src + ra * row + cb * C;
        p10 = (rb < 0 || ca < 0) ? cvals : src + rb * row + ca * C;
        p11 = (rb < 0 || cb < 0) ? cvals : src + rb * row + cb * C;
      }
      if (kSingleChannel) {
        o[c] = blend(*p00, *p01, *p10, *p11, wr, wc);
      } else {
        float* oc = o + c * C;
        const float ur = 1.0f - wr, uc = 1.0f - wc;
        for (i64 k = 0; k < C; ++k)
          oc[k] = ur * (uc * p00[k] + wc * p01[k]) + wr * (uc * p10[k] + wc * p11[k]);
      }
    }
  }
}

inline bool is_identity(const double* m) {
  return m[0] == 1.0 && m[1] == 0.0 && m[2] == 0.0 && m[3] == 0.0 && m[4] == 1.0 && m[5] == 0.0;
}

}  // namespace

void affine_warp(const float* x, i64 N, i64 H, i64 W, i64 C, const i64* index, i64 B,
                 const double* mat, FillMode mode, float cval, float* out) {
  (void)N;  // indices were validated by the caller
  if (B <= 0) return;
  const i64 sample = H * W * C;
  Buffer<float> cvals(static_cast<std::size_t>(C));
  for (i64 k = 0; k < C; ++k) cvals[static_cast<std::size_t>(k)] = cval;
  const float* cv = cvals.data();
#pragma omp parallel for schedule(static) num_threads(fastnn::num_threads()) if (B > 1) FASTNN_FP_TEAM
  for (i64 b = 0; b < B; ++b) {
    const i64 s = index ? index[b] : b;
    const float* src = x + s * sample;
    float* dst = out + b * sample;
    const double* m = mat + 6 * b;
    if (is_identity(m)) {
      std::memcpy(dst, src, static_cast<std::size_t>(sample) * sizeof(float));
    } else if (C == 1) {
      warp_one<true>(src, H, W, C, m, mode, cv, dst);
    } else {
      warp_one<false>(src, H, W, C, m, mode, cv, dst);
    }
  }
}

}  // namespace fastnn
