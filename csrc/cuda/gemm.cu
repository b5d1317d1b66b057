// Tiled SGEMM and deterministic column sums. See fastnn/cuda/kernels.hpp.
#include "fastnn/cuda/kernels.hpp"
#include "gemm_tile.cuh"
#include "reduce.cuh"

namespace fastnn {
namespace cuda {

using namespace gemm_detail;

void sgemm(i64 M, i64 N, i64 K, const float* a, i64 a_rs, i64 a_cs, const float* b,
           i64 b_rs, i64 b_cs, float* c, i64 ldc, const float* bias, bool relu) {
  run_gemm(M, N, K, StridedLoader(a, a_rs, a_cs), StridedLoader(b, b_rs, b_cs),
           MatrixStore{c, ldc, bias, relu}, "sgemm");
}

namespace {
constexpr i64 kColChunkRows = 1024;  // rows per partial column sum

// Block (32 columns x 8 row lanes) sums rows [chunk*1024, ...) of 32 columns:
// lane l takes rows l, l+8, ... in order, then the 8 lanes are added in order.
__global__ void column_partial_kernel(const float* __restrict__ a, i64 rows, i64 cols,
                                      double* __restrict__ partial) {
  __shared__ double lanes[8][32];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const i64 col = i64(blockIdx.x) * 32 + tx;
  const i64 chunk = blockIdx.y;
  const i64 r0 = chunk * kColChunkRows, r1 = min(rows, r0 + kColChunkRows);
  double s = 0.0;
  if (col < cols)
    for (i64 r = r0 + ty; r < r1; r += 8) s += static_cast<double>(a[r * cols + col]);
  lanes[ty][tx] = s;
  __syncthreads();
  if (ty == 0 && col < cols) {
    double t = 0.0;
    for (int l = 0; l < 8; ++l) t += lanes[l][tx];
    partial[chunk * cols + col] = t;
  }
}

__global__ void column_final_kernel(const double* __restrict__ partial, i64 chunks, i64 cols,
                                    float* __restrict__ out) {
  for (i64 j = global_index(); j < cols; j += global_stride()) {
    double s = 0.0;
    for (i64 c = 0; c < chunks; ++c) s += partial[c * cols + j];
    out[j] = static_cast<float>(s);
  }
}
}  // namespace

void column_sums(i64 rows, i64 cols, const float* a, float* out) {
  if (cols <= 0) return;
  if (rows <= 0) {
    fill_zero(out, static_cast<std::size_t>(cols) * sizeof(float));
    return;
  }
  const i64 chunks = (rows + kColChunkRows - 1) / kColChunkRows;
  if (chunks > 65535) throw CudaError("column_sums: too many rows");
  Scratch partial(static_cast<std::size_t>(chunks * cols) * sizeof(double));
  const dim3 grid(static_cast<unsigned>((cols + 31) / 32), static_cast<unsigned>(chunks));
  column_partial_kernel<<<grid, dim3(32, 8)>>>(a, rows, cols, partial.as<double>());
  check_launch("column_sums");
  column_final_kernel<<<grid_1d(cols), kThreads>>>(partial.as<double>(), chunks, cols, out);
  check_launch("column_sums");
}

}  // namespace cuda
}  // namespace fastnn
