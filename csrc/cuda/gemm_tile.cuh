// The tiled SGEMM engine shared by gemm.cu, dense.cu and conv.cu.
//
// C (M x N) = A (M x K) . B (K x N), where A and B are not arrays but LOADERS:
// small structs with
//     float4 load4(i64 i, i64 j, i64 i_end, i64 j_end) const
// returning the operand's elements (i, j), (i, j+1), (i, j+2), (i, j+3), with zero
// for i >= i_end or j + e >= j_end. A is asked for (m, k..k+3), B for (k, n..n+3).
// The plain GEMM's loader reads a strided matrix; the convolutions' loaders
// gather the input pixels of each tap on the fly (implicit GEMM).
// The result goes to a STORE functor: void operator()(i64 m, i64 n, float v) const.
//
// Tile: 64 x 64 outputs per block of 256 threads, k in slices of 16 staged in
// shared memory (A transposed so that each thread reads a float4 of 4 rows), a
// 4 x 4 register block per thread; the next slice's global loads are issued
// before the barrier that ends the current one.
// Split-K: when the output has few tiles and K is long, gridDim.z slices of K
// write partial tiles to a workspace that a second kernel adds up in slice order.
// The number of slices is a function of (M, N, K) only, so results are the same on
// every run and every GPU.
#pragma once
#include "launch.cuh"

namespace fastnn {
namespace cuda {
namespace gemm_detail {

constexpr int kBM = 64, kBN = 64, kBK = 16;
constexpr int kGemmThreads = 256;

// A strided matrix: element (i, j) at p[i*rs + j*cs]. float4 loads when cs == 1
// and every row start is 16-byte aligned (vec).
struct StridedLoader {
  const float* p;
  i64 rs, cs;
  bool vec;
  StridedLoader(const float* p_, i64 rs_, i64 cs_) : p(p_), rs(rs_), cs(cs_) {
    vec = cs == 1 && rs % 4 == 0 && (reinterpret_cast<std::uintptr_t>(p) & 15) == 0;
  }
  __device__ __forceinline__ float4 load4(i64 i, i64 j, i64 i_end, i64 j_end) const {
    float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
    if (i >= i_end) return v;
    const float* row = p + i * rs;
    if (vec && j + 3 < j_end) return __ldg(reinterpret_cast<const float4*>(row + j));
    if (j + 0 < j_end) v.x = __ldg(row + (j + 0) * cs);
    if (j + 1 < j_end) v.y = __ldg(row + (j + 1) * cs);
    if (j + 2 < j_end) v.z = __ldg(row + (j + 2) * cs);
    if (j + 3 < j_end) v.w = __ldg(row + (j + 3) * cs);
    return v;
  }
};

// C row-major with optional bias and ReLU.
struct MatrixStore {
  float* c;
  i64 ldc;
  const float* bias;
  bool relu;
  __device__ __forceinline__ void operator()(i64 m, i64 n, float v) const {
    if (bias != nullptr) v += bias[n];
    if (relu) v = v < 0.0f ? 0.0f : v;  // relu(NaN) = NaN, as on the CPU
    c[m * ldc + n] = v;
  }
};

// Writes a partial tile of slice z to ws[(z*M + m)*N + n].
struct PartialStore {
  float* ws;
  i64 M, N, z;
  __device__ __forceinline__ void operator()(i64 m, i64 n, float v) const {
    ws[(z * M + m) * N + n] = v;
  }
};

template <class LoadA, class LoadB, class Store>
__global__ void __launch_bounds__(kGemmThreads)
    gemm_tile_kernel(i64 M, i64 N, i64 K, i64 k_slice, LoadA la, LoadB lb, Store st,
                     float* ws) {
  __shared__ __align__(16) float As[kBK][kBM + 4];  // +4: fewer bank conflicts, 16B rows
  __shared__ __align__(16) float Bs[kBK][kBN];
  const int t = threadIdx.x;
  const i64 m0 = i64(blockIdx.x) * kBM, n0 = i64(blockIdx.y) * kBN;
  const i64 k_begin = i64(blockIdx.z) * k_slice;
  const i64 k_end = min(K, k_begin + k_slice);
  const int a_row = t >> 2, a_k = (t & 3) * 4;      // A tile 64 x 16: a float4 along k
  const int b_k = t >> 4, b_col = (t & 15) * 4;     // B tile 16 x 64: a float4 along n
  const int ty = t >> 4, tx = t & 15;               // 4 x 4 outputs at (ty*4, tx*4)

  float acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;

  float4 av = la.load4(m0 + a_row, k_begin + a_k, M, k_end);
  float4 bv = lb.load4(k_begin + b_k, n0 + b_col, k_end, N);
  for (i64 k0 = k_begin; k0 < k_end; k0 += kBK) {
    __syncthreads();  // the previous slice has been consumed
    As[a_k + 0][a_row] = av.x;
    As[a_k + 1][a_row] = av.y;
    As[a_k + 2][a_row] = av.z;
    As[a_k + 3][a_row] = av.w;
    *reinterpret_cast<float4*>(&Bs[b_k][b_col]) = bv;
    __syncthreads();
    if (k0 + kBK < k_end) {  // prefetch the next slice while this one is computed
      av = la.load4(m0 + a_row, k0 + kBK + a_k, M, k_end);
      bv = lb.load4(k0 + kBK + b_k, n0 + b_col, k_end, N);
    }
#pragma unroll
    for (int kk = 0; kk < kBK; ++kk) {
      const float4 a4 = *reinterpret_cast<const float4*>(&As[kk][ty * 4]);
      const float4 b4 = *reinterpret_cast<const float4*>(&Bs[kk][tx * 4]);
      const float a[4] = {a4.x, a4.y, a4.z, a4.w};
      const float b[4] = {b4.x, b4.y, b4.z, b4.w};
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
  }

  const bool partial = gridDim.z > 1;
  const PartialStore ps{ws, M, N, i64(blockIdx.z)};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const i64 m = m0 + ty * 4 + i;
    if (m >= M) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const i64 n = n0 + tx * 4 + j;
      if (n >= N) continue;
      if (partial)
        ps(m, n, acc[i][j]);
      else
        st(m, n, acc[i][j]);
    }
  }
}

// Adds the slices in order z = 0, 1, ... and stores through st.
template <class Store>
__global__ void splitk_reduce_kernel(const float* ws, i64 M, i64 N, i64 slices, Store st) {
  const i64 total = M * N;
  for (i64 i = global_index(); i < total; i += global_stride()) {
    float v = ws[i];
    for (i64 z = 1; z < slices; ++z) v += ws[z * total + i];
    st(i / N, i % N, v);
  }
}

// Number of K slices: enough blocks to fill a large GPU (about 256) when the output
// has few tiles, each slice at least 8 k-steps long; a rule of the shape only.
inline i64 k_slices(i64 M, i64 N, i64 K) {
  const i64 tiles = ((M + kBM - 1) / kBM) * ((N + kBN - 1) / kBN);
  if (tiles >= 128 || K <= 8 * kBK) return 1;
  i64 s = 256 / tiles;
  const i64 by_k = K / (8 * kBK);
  if (s > by_k) s = by_k;
  if (s > 64) s = 64;
  return s < 1 ? 1 : s;
}

// Runs C = A . B through st. Zero-sized outputs do nothing; K == 0 stores zeros.
template <class LoadA, class LoadB, class Store>
void run_gemm(i64 M, i64 N, i64 K, const LoadA& la, const LoadB& lb, const Store& st,
              const char* what) {
  if (M <= 0 || N <= 0) return;
  const i64 tiles_m = (M + kBM - 1) / kBM, tiles_n = (N + kBN - 1) / kBN;
  if (tiles_m > 0x7fffffffLL || tiles_n > 65535)
    throw CudaError(std::string(what) + ": GEMM of " + std::to_string(M) + " x " +
                    std::to_string(N) + " outputs exceeds the grid limits");
  i64 slices = k_slices(M, N, K);
  // each slice a multiple of the k step; recompute the count so none is empty
  i64 k_slice = K;
  if (slices > 1) {
    k_slice = ((K + slices - 1) / slices + kBK - 1) / kBK * kBK;
    slices = (K + k_slice - 1) / k_slice;
  }
  if (K == 0) k_slice = 0;
  const dim3 grid(static_cast<unsigned>(tiles_m), static_cast<unsigned>(tiles_n),
                  static_cast<unsigned>(slices));
  if (slices == 1) {
    gemm_tile_kernel<<<grid, kGemmThreads>>>(M, N, K, k_slice, la, lb, st, nullptr);
    check_launch(what);
    return;
  }
  Scratch ws(static_cast<std::size_t>(slices * M * N) * sizeof(float));
  gemm_tile_kernel<<<grid, kGemmThreads>>>(M, N, K, k_slice, la, lb, st, ws.as<float>());
  check_launch(what);
  splitk_reduce_kernel<<<grid_1d(M * N), kThreads>>>(ws.as<float>(), M, N, slices, st);
  check_launch(what);
  // ws is freed here; cudaFree waits for the kernels that use it.
}

}  // namespace gemm_detail
}  // namespace cuda
}  // namespace fastnn
