// fastnn/loss.hpp -- losses with their gradients (float32 in, loss as double).
// No Python in here.
//
// Decisions:
// - Every loss is a mean: softmax cross-entropy over the N rows, mse and mae over
//   all elements. Gradients are of that mean.
// - softmax_cross_entropy: per row, lse = max + log(sum exp(z - max)) (stable);
//   row loss = sum_k t_k * (lse - z_k) in double; dlogits = (T * softmax - t) / N
//   with T = sum_k t_k (T = 1 for class indices and for probability rows, so this
//   is the contract's (softmax - t) / N; for rows that do not sum to 1 it is still
//   the exact gradient of the loss returned).
// - Determinism: per-row (or per fixed chunk of kLossChunk elements) partial losses
//   are stored and then summed in index order in double, so the loss is bitwise
//   identical for any thread count.
// - An empty input (N == 0, size == 0) gives loss 0.0 and an empty gradient
//   (PyTorch would give NaN; a zero-sized batch contributes nothing).
// - mae: dpred = sign(pred - target) / size, 0 where equal, NaN where the
//   difference is NaN.
// - Class indices are validated by the caller (0 <= label < K).
// - Python binding (ops.softmax_cross_entropy): integer labels are class indices of
//   shape (N,) (Keras-style (N, 1) also accepted), any integer dtype, each in
//   [0, K) else ValueError; float labels are probability / one-hot rows (N, K);
//   float labels of shape (N,) raise TypeError (class indices must be integers);
//   integer (N, K) labels raise ValueError (pass one-hot rows as float); bool /
//   complex / object labels raise TypeError; K == 0 raises ValueError. The loss
//   comes back as a Python float.
#pragma once
#include <cstdint>

#include "fastnn/common.hpp"

namespace fastnn {

constexpr i64 kLossChunk = 16384;  // elements per partial sum (mse, mae)

// logits (N, K), labels (N,) in [0, K) -> dlogits (N, K); returns the mean loss.
double softmax_cross_entropy_index(const float* logits, const std::int64_t* labels,
                                   float* dlogits, i64 N, i64 K);
// logits (N, K), target (N, K) probability / one-hot rows -> dlogits (N, K).
double softmax_cross_entropy_prob(const float* logits, const float* target,
                                  float* dlogits, i64 N, i64 K);
// pred, target, dpred: n elements. mean((pred - target)^2); dpred = 2 (pred - target) / n.
double mse(const float* pred, const float* target, float* dpred, i64 n);
// pred, target, dpred: n elements. mean(|pred - target|); dpred = sign(pred - target) / n.
double mae(const float* pred, const float* target, float* dpred, i64 n);

}  // namespace fastnn
