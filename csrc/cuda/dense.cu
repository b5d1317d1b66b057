// Dense (fully connected) forward and backward on the tiled SGEMM.
#include "fastnn/cuda/kernels.hpp"

namespace fastnn {
namespace cuda {

void dense_forward(i64 rows, i64 in, i64 out, const float* x, const float* w,
                   const float* b, float* y, bool relu) {
  // y (rows x out) = x (rows x in) . w (in x out) + b
  sgemm(rows, out, in, x, in, 1, w, out, 1, y, out, b, relu);
}

void dense_backward(i64 rows, i64 in, i64 out, const float* dy, const float* x,
                    const float* w, float* dx, float* dw, float* db) {
  // dx (rows x in) = dy (rows x out) . w^T: B(k = o, n = i) = w[i*out + o]
  if (dx != nullptr) sgemm(rows, in, out, dy, out, 1, w, 1, out, dx, in, nullptr, false);
  // dw (in x out) = x^T . dy: A(m = i, k = r) = x[r*in + i]
  sgemm(in, out, rows, x, 1, in, dy, out, 1, dw, out, nullptr, false);
  if (db != nullptr) column_sums(rows, out, dy, db);
}

}  // namespace cuda
}  // namespace fastnn
