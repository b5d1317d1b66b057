// fastnn/dense.hpp -- fully connected layer (Keras Dense) forward and backward.
//
// Layout (Keras): x is (rows, I) row-major (the binding flattens any leading
// dims into rows), kernel w is (I, O), bias b is (O,), y is (rows, O).
//
// Decisions:
// - Every product goes through fastnn::sgemm, so results inherit its canonical
//   summation order: bitwise identical for any thread count, and batch-size
//   invariant (row i of y does not depend on the other rows).
// - Transposed operands (w^T for dx, x^T for dw) are expressed with strides;
//   nothing is copied.
// - db (column sums of dy) is accumulated in double, per column, in increasing
//   row order, then rounded once; the work is split over fixed blocks of
//   columns, never over rows, so it does not depend on the thread count.
// - rows == 0 is valid: y is empty, dw and db are zeros.
// - Python binding: x rank >= 2 (only the first dim may be 0), w (I, O) with
//   O >= 1, b (O,) or None. _core.dense_relu is the private fused
//   relu(x @ w + b) (sgemm kRelu epilogue) for the layers; there is no fused
//   relu backward (use relu_backward on the output).
#pragma once
#include "fastnn/common.hpp"

namespace fastnn {

constexpr i64 kDenseColBlock = 64;  // columns per task in column_sums

// y[rows x O] = x[rows x I] * w[I x O] (+ b[O]) (then max(., 0) when relu).
// b may be nullptr (no bias).
void dense_forward(i64 rows, i64 in, i64 out, const float* x, const float* w,
                   const float* b, float* y, bool relu);

// Gradients of y = x * w + b given dy[rows x O]:
//   dx[rows x I] = dy * w^T   (skipped when dx == nullptr)
//   dw[I x O]    = x^T * dy   (always written; zeros when rows == 0)
//   db[O]        = sum over rows of dy (skipped when db == nullptr)
void dense_backward(i64 rows, i64 in, i64 out, const float* dy, const float* x,
                    const float* w, float* dx, float* dw, float* db);

// out[j] = sum_i a[i * cols + j] for a[rows x cols], accumulated in double in
// increasing i; parallel over blocks of kDenseColBlock columns.
void column_sums(i64 rows, i64 cols, const float* a, float* out);

}  // namespace fastnn
