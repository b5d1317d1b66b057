// Dense (fully connected) forward/backward on top of fastnn::sgemm.
#include "fastnn/dense.hpp"

#include <algorithm>

#include "fastnn/gemm.hpp"

namespace fastnn {

void dense_forward(i64 rows, i64 in, i64 out, const float* x, const float* w,
                   const float* b, float* y, bool relu) {
  if (rows <= 0 || out <= 0) return;
  int flags = 0;
  if (b) flags |= kBias;
  if (relu) flags |= kRelu;
  // A = x (rows x I, row stride I), B = w (I x O, row stride O).
  sgemm(rows, out, in, x, in, 1, w, out, 1, y, out, flags, b);
}

void column_sums(i64 rows, i64 cols, const float* a, float* out) {
  const i64 nblocks = ceil_div(cols, kDenseColBlock);
  const bool par = rows * cols >= (i64(1) << 15) && nblocks > 1;
  for_each_task(nblocks, par ? fastnn::num_threads() : 1, [&](i64 blk) {
    const i64 j0 = blk * kDenseColBlock;
    const i64 nj = std::min<i64>(kDenseColBlock, cols - j0);
    double acc[kDenseColBlock];
    for (i64 j = 0; j < kDenseColBlock; ++j) acc[j] = 0.0;
    for (i64 i = 0; i < rows; ++i) {
      const float* ai = a + i * cols + j0;
      for (i64 j = 0; j < nj; ++j) acc[j] += static_cast<double>(ai[j]);
    }
    for (i64 j = 0; j < nj; ++j) out[j0 + j] = static_cast<float>(acc[j]);
  });
}

void dense_backward(i64 rows, i64 in, i64 out, const float* dy, const float* x,
                    const float* w, float* dx, float* dw, float* db) {
  if (dx && rows > 0) {
    // dx (rows x I) = dy (rows x O) * w^T, where w^T(k, j) = w[j * O + k].
    sgemm(rows, in, out, dy, out, 1, w, 1, out, dx, in, 0, nullptr);
  }
  // dw (I x O) = x^T * dy, where x^T(i, k) = x[k * I + i]; K = rows (an empty
  // sum when rows == 0 gives zeros).
  sgemm(in, out, rows, x, 1, in, dy, out, 1, dw, out, 0, nullptr);
  if (db) column_sums(rows, out, dy, db);
}

}  // namespace fastnn
