// fastnn/cuda/kernels.hpp -- the CUDA twins of the CPU kernel families (float32).
// Every pointer is DEVICE memory; every function queues work on the legacy
// default stream and returns without waiting, except the ones returning a value
// (losses, norms, index checks), which wait for their result. Plain C++ (no CUDA
// headers); the definitions are in csrc/cuda/<family>.cu. No Python in here.
//
// Shared decisions:
// - Determinism: every output element is computed by one thread in a fixed order
//   that depends on the shape only (never on timing, atomics or the grid), so
//   results are bitwise identical run to run. Reductions (bias gradients, losses,
//   norms, split-K GEMM) use fixed partitions combined in a fixed order.
// - Results agree with the CPU kernels within float32 rounding (FMA contraction
//   and a different summation blocking); dropout masks are bitwise identical to
//   the CPU's (same counter-based stream), as are max/avg pooling, the optimizer
//   updates up to FMA contraction, and relu.
// - Sizes are int64; the callers (bindings) validate shapes and arguments.
#pragma once
#include <cstdint>

#include "fastnn/conv.hpp"
#include "fastnn/pool.hpp"

namespace fastnn {
namespace cuda {

using i64 = std::int64_t;

// ---- gemm.cu ------------------------------------------------------------------
// C[m, n] = sum_k A(m, k) B(k, n) (+ bias[n]) (then max(., 0) when relu) with
// A(m, k) = a[m*a_rs + k*a_cs], B(k, n) = b[k*b_rs + n*b_cs], C row-major (ldc).
// Tiled: 64x64 output tiles, 16-deep k slices staged in shared memory, a 4x4
// register block per thread, float4 loads where the operand is contiguous and
// aligned. Each C element sums k in increasing order; when the output has few tiles
// and K is long, K is cut into slices (a count fixed by (M, N, K)) whose partial
// sums are added in slice order. So results are the same on every run, but a
// different M (batch size) can change the slicing and thus the last bits.
// bias may be nullptr. M, N >= 0, K >= 0 (K == 0 gives bias / zeros).
void sgemm(i64 M, i64 N, i64 K, const float* a, i64 a_rs, i64 a_cs, const float* b,
           i64 b_rs, i64 b_cs, float* c, i64 ldc, const float* bias, bool relu);
// out[j] = sum_i a[i*cols + j] (double accumulation, fixed row chunks in order).
void column_sums(i64 rows, i64 cols, const float* a, float* out);

// ---- dense.cu (Keras layout: x (rows, I), w (I, O), y (rows, O)) ---------------
void dense_forward(i64 rows, i64 in, i64 out, const float* x, const float* w,
                   const float* b, float* y, bool relu);
// dx may be nullptr (skipped), db may be nullptr (skipped); dw always written.
void dense_backward(i64 rows, i64 in, i64 out, const float* dy, const float* x,
                    const float* w, float* dx, float* dw, float* db);

// ---- activation.cu --------------------------------------------------------------
void relu_forward(const float* x, float* y, i64 n);
void sigmoid_forward(const float* x, float* y, i64 n);
void tanh_forward(const float* x, float* y, i64 n);
void relu_backward(const float* dy, const float* x, float* dx, i64 n);
void sigmoid_backward(const float* dy, const float* x, float* dx, i64 n);
void tanh_backward(const float* dy, const float* x, float* dx, i64 n);
// (outer, len, inner) views as on the CPU; softmax along len.
void softmax_forward(const float* x, float* y, i64 outer, i64 len, i64 inner);
void softmax_backward(const float* dy, const float* y, float* dx, i64 outer, i64 len,
                      i64 inner);

// ---- dropout.cu (same stream as fastnn/dropout.hpp: masks equal the CPU's) -------
void dropout_forward(const float* x, float* y, std::uint8_t* mask, i64 n, double rate,
                     std::uint64_t seed, std::uint64_t first_counter);
void dropout_backward(const float* dy, const std::uint8_t* mask, float* dx, i64 n,
                      double rate);

// ---- loss.cu (return the mean loss; wait for it) -----------------------------------
// labels: N class indices of label_bytes = 1 (uint8), 4 (int32) or 8 (int64) each.
// A label outside [0, K) sets *bad_position to its position (the first one) and
// the return value is meaningless; else *bad_position = -1.
double softmax_cross_entropy_index(const float* logits, const void* labels, int label_bytes,
                                   float* dlogits, i64 N, i64 K, i64* bad_position);
double softmax_cross_entropy_prob(const float* logits, const float* target,
                                  float* dlogits, i64 N, i64 K);
double mse(const float* pred, const float* target, float* dpred, i64 n);
double mae(const float* pred, const float* target, float* dpred, i64 n);

// ---- pool.cu (geometry as fastnn::Pool2dShape, validated by the caller) -----------
void max_pool2d(const Pool2dShape& s, const float* x, float* y, std::int64_t* idx);
// Checks idx (count = N * out_per_image entries, images of out_per_image = P*Q*C):
// returns -1 when all lie in [0, N*in_per_image), else the first bad position.
// *in_plane tells whether every idx of (image n, channel c) points into that same
// image and channel (always true for what max_pool2d produced).
i64 max_pool2d_check_index(const std::int64_t* idx, i64 N, i64 out_per_image,
                           i64 in_per_image, i64 C, bool* in_plane);
// dx (zeroed, then dx[idx[i]] += dy[i] in increasing i for each element): one
// thread per (n, c) plane when in_plane, else one serial pass. Equal to the CPU
// bitwise.
void max_pool2d_backward(const float* dy, const std::int64_t* idx, i64 N, i64 out_per_image,
                         i64 in_per_image, i64 C, bool in_plane, float* dx);
void avg_pool2d(const Pool2dShape& s, bool count_include_pad, const float* x, float* y);
void avg_pool2d_backward(const Pool2dShape& s, bool count_include_pad, const float* dy,
                         float* dx);

// ---- conv.cu: implicit GEMM (no im2col buffer), NHWC x, HWIO w ----------------------
// forward: (N*P*Q) x K output = im2col(x) (N*P*Q x R*S*C) . w (R*S*C x K)
void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* b,
                    float* y, bool relu);
// dx (N*H*W x C) = dy gathered per tap (N*H*W x R*S*K) . w^T rearranged (R*S*K x C)
void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx);
// dw (R*S*C x K) = im2col(x)^T (R*S*C x N*P*Q) . dy (N*P*Q x K), split over N*P*Q
void conv2d_backward_weight(const Conv2dShape& s, const float* dy, const float* x, float* dw);
void conv2d_backward_bias(const Conv2dShape& s, const float* dy, float* db);

// ---- batchnorm.cu (contract of fastnn/batchnorm.hpp; x viewed as (rows, C)) --------
void batch_norm_train_forward(i64 rows, i64 C, const float* x, const float* gamma, const float* beta,
                              double momentum, double epsilon, float* running_mean, float* running_var,
                              float* y, float* mean_out, float* inv_std_out);
void batch_norm_infer_forward(i64 rows, i64 C, const float* x, const float* gamma, const float* beta,
                              const float* running_mean, const float* running_var, double epsilon, float* y,
                              float* mean_out, float* inv_std_out);
void batch_norm_backward(bool training, i64 rows, i64 C, const float* dy, const float* x, const float* gamma,
                         const float* mean, const float* inv_std, float* dx, float* dgamma, float* dbeta);

// ---- optim.cu (formulas and argument rules of fastnn/optim.hpp) ----------------------
void sgd_update(i64 n, float* p, const float* g, float* v, float lr, float momentum,
                bool nesterov, float weight_decay);
void rmsprop_update(i64 n, float* p, const float* g, float* ms, float lr, double rho,
                    float epsilon, float weight_decay);
void adam_update(i64 n, float* p, const float* g, float* m, float* v, float lr, i64 step,
                 double beta_1, double beta_2, float epsilon, float weight_decay);
void adagrad_update(i64 n, float* p, const float* g, float* acc, float lr, float epsilon,
                    float weight_decay);
void adadelta_update(i64 n, float* p, const float* g, float* ag, float* ad, float lr,
                     double rho, float epsilon, float weight_decay);
double sum_squares(i64 n, const float* a);  // waits for the result
void clip_by_value(i64 n, float* a, float clip);
void scale_inplace(i64 n, float* a, float factor);

}  // namespace cuda
}  // namespace fastnn
