// 2-D convolution (NHWC x, HWIO w) as implicit GEMM on the tiled engine of
// gemm_tile.cuh: no im2col buffer, the loaders below gather the pixels of each
// tap while the tiles are staged. Per output element the sum runs over the
// reduction index in increasing order (taps (r, s) in order, channels in order;
// split-K slices, when the engine uses them, in slice order): the same on every run.
#include "fastnn/cuda/kernels.hpp"
#include "gemm_tile.cuh"

namespace fastnn {
namespace cuda {

using namespace gemm_detail;

namespace {

__device__ __forceinline__ float4 zero4() { return make_float4(0.f, 0.f, 0.f, 0.f); }
__device__ __forceinline__ void set_lane(float4& v, int e, float f) {
  if (e == 0) v.x = f; else if (e == 1) v.y = f; else if (e == 2) v.z = f; else v.w = f;
}

// im2col(x) as a matrix: row m = (n, p, q) (output pixel), column k = (r, s, c) (tap and
// input channel): x[n, p*sh - pt + r, q*sw - pl + s, c], zero outside the image.
struct Im2col {
  const float* x;
  Conv2dShape s;
  bool vec;  // C % 4 == 0 and x 16-byte aligned: a tap's 4 channels are one float4

  __device__ __forceinline__ float at(i64 m, i64 k) const {
    const i64 q = m % s.Q, t = m / s.Q;
    const i64 p = t % s.P, n = t / s.P;
    const i64 c = k % s.C, rs = k / s.C;
    const i64 h = p * s.sh - s.pt + rs / s.S, w = q * s.sw - s.pl + rs % s.S;
    if (h < 0 || h >= s.H || w < 0 || w >= s.W) return 0.0f;
    return __ldg(x + ((n * s.H + h) * s.W + w) * s.C + c);
  }
  // A(m, k..k+3): the forward's A operand.
  __device__ __forceinline__ float4 load4(i64 m, i64 k, i64 m_end, i64 k_end) const {
    float4 v = zero4();
    if (m >= m_end) return v;
    if (vec && k + 3 < k_end) {
      const i64 q = m % s.Q, t = m / s.Q;
      const i64 p = t % s.P, n = t / s.P;
      const i64 c = k % s.C, rs = k / s.C;
      const i64 h = p * s.sh - s.pt + rs / s.S, w = q * s.sw - s.pl + rs % s.S;
      if (h < 0 || h >= s.H || w < 0 || w >= s.W) return v;
      return __ldg(reinterpret_cast<const float4*>(x + ((n * s.H + h) * s.W + w) * s.C + c));
    }
#pragma unroll
    for (int e = 0; e < 4; ++e)
      if (k + e < k_end) set_lane(v, e, at(m, k + e));
    return v;
  }
};

// The transpose of Im2col: A(k, m..m+3) for the weight gradient (rows = taps).
struct Im2colT {
  Im2col a;
  __device__ __forceinline__ float4 load4(i64 k, i64 m, i64 k_end, i64 m_end) const {
    float4 v = zero4();
    if (k >= k_end) return v;
#pragma unroll
    for (int e = 0; e < 4; ++e)
      if (m + e < m_end) set_lane(v, e, a.at(m + e, k));
    return v;
  }
};

// The data gradient's A: row m = (n, h, w) (input pixel), column k = (r, s, kout):
// dy[n, p, q, kout] with p*sh = h + pt - r, q*sw = w + pl - s when both divide
// exactly and land inside the output; else zero.
struct DyGather {
  const float* dy;
  Conv2dShape s;
  bool vec;  // K % 4 == 0 and dy 16-byte aligned

  __device__ __forceinline__ const float* tap(i64 m, i64 rs) const {
    const i64 w = m % s.W, t = m / s.W;
    const i64 h = t % s.H, n = t / s.H;
    const i64 th = h + s.pt - rs / s.S, tw = w + s.pl - rs % s.S;
    if (th < 0 || tw < 0 || th % s.sh != 0 || tw % s.sw != 0) return nullptr;
    const i64 p = th / s.sh, q = tw / s.sw;
    if (p >= s.P || q >= s.Q) return nullptr;
    return dy + ((n * s.P + p) * s.Q + q) * s.K;
  }
  __device__ __forceinline__ float4 load4(i64 m, i64 k, i64 m_end, i64 k_end) const {
    float4 v = zero4();
    if (m >= m_end) return v;
    if (vec && k + 3 < k_end) {
      const float* row = tap(m, k / s.K);
      if (row == nullptr) return v;
      return __ldg(reinterpret_cast<const float4*>(row + k % s.K));
    }
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      if (k + e >= k_end) break;
      const float* row = tap(m, (k + e) / s.K);
      if (row != nullptr) set_lane(v, e, __ldg(row + (k + e) % s.K));
    }
    return v;
  }
};

// The data gradient's B: row k = (r, s, kout), column c: w[r, s, c, kout].
struct WeightT {
  const float* w;
  Conv2dShape s;
  __device__ __forceinline__ float4 load4(i64 k, i64 c, i64 k_end, i64 c_end) const {
    float4 v = zero4();
    if (k >= k_end) return v;
    const i64 rs = k / s.K, kout = k % s.K;
    const float* base = w + rs * s.C * s.K + kout;
#pragma unroll
    for (int e = 0; e < 4; ++e)
      if (c + e < c_end) set_lane(v, e, __ldg(base + (c + e) * s.K));
    return v;
  }
};

bool aligned16(const void* p) { return (reinterpret_cast<std::uintptr_t>(p) & 15) == 0; }

}  // namespace

void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* b,
                    float* y, bool relu) {
  const i64 M = s.N * s.P * s.Q, N = s.K, K = s.R * s.S * s.C;
  const Im2col a{x, s, s.C % 4 == 0 && aligned16(x)};
  run_gemm(M, N, K, a, StridedLoader(w, s.K, 1), MatrixStore{y, s.K, b, relu}, "conv2d");
}

void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  const i64 M = s.N * s.H * s.W, N = s.C, K = s.R * s.S * s.K;
  const DyGather a{dy, s, s.K % 4 == 0 && aligned16(dy)};
  run_gemm(M, N, K, a, WeightT{w, s}, MatrixStore{dx, s.C, nullptr, false},
           "conv2d_backward (data)");
}

void conv2d_backward_weight(const Conv2dShape& s, const float* dy, const float* x, float* dw) {
  const i64 M = s.R * s.S * s.C, N = s.K, K = s.N * s.P * s.Q;
  const Im2colT a{Im2col{x, s, false}};
  run_gemm(M, N, K, a, StridedLoader(dy, s.K, 1), MatrixStore{dw, s.K, nullptr, false},
           "conv2d_backward (weight)");
}

void conv2d_backward_bias(const Conv2dShape& s, const float* dy, float* db) {
  column_sums(s.N * s.P * s.Q, s.K, dy, db);
}

}  // namespace cuda
}  // namespace fastnn
