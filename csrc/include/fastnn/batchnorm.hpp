// fastnn/batchnorm.hpp -- batch normalization over all axes but the last
// (channels last, Keras BatchNormalization(axis=-1)).
//
// x is viewed as (rows, C) row-major: rows = product of all leading dims
// (N*H*W for NHWC images, N for (N, C) features).
//
// Decisions:
// - Training mode normalizes with the batch mean and the biased batch variance
//   (divide by rows) and updates the running statistics Keras-style:
//   running = running * momentum + batch * (1 - momentum), with the biased
//   variance (torch uses the unbiased one there; Keras does not).
// - Statistics are deterministic: rows are cut into fixed chunks of
//   kBnChunkRows; each chunk computes its per-channel mean and centred sum of
//   squares in double (two sweeps over the cache-resident chunk); chunks are
//   merged in chunk order (Chan et al. pairwise update). Nothing depends on the
//   thread count, and the centred form avoids E[x^2] - E[x]^2 cancellation.
// - The normalized output is y = (x - mean) * (gamma * inv_std) + beta with
//   inv_std = 1 / sqrt(var + epsilon) computed in double and rounded once.
// - rows == 0 in training mode: no batch statistics exist, so y is empty, the
//   running statistics are left unchanged (no NaN pollution) and the saved
//   mean/inv_std are those of the running statistics.
// - gamma == nullptr means scale 1 (Keras scale=False); beta == nullptr means
//   offset 0 (center=False). In Python gamma/beta may be None; the matching
//   gradient is then None.
// - Python binding (ops.batch_norm): x rank >= 2, channels last; only the first
//   dim may be 0. training=True requires running_mean/running_var to be
//   writable C-contiguous float32 (C,) arrays that do not share memory;
//   training=False only reads them (any real array-like is accepted).
//   momentum in [0, 1], epsilon finite >= 0, else ValueError.
// - The Python cache is the tuple (training, x, gamma copy or None, has_beta,
//   mean, inv_std); x is referenced, not copied (do not modify it in place
//   between forward and backward). batch_norm_backward re-validates it.
#pragma once
#include "fastnn/common.hpp"

namespace fastnn {

constexpr i64 kBnChunkRows = 256;  // rows per partial-sum chunk

// Training forward. x[rows x C] -> y[rows x C]. gamma/beta: (C,) or nullptr.
// running_mean/running_var: (C,), updated in place when rows > 0.
// mean_out/inv_std_out: (C,) float32, saved for the backward.
void batch_norm_train_forward(i64 rows, i64 C, const float* x, const float* gamma,
                              const float* beta, double momentum, double epsilon,
                              float* running_mean, float* running_var, float* y,
                              float* mean_out, float* inv_std_out);

// Inference forward: normalizes with running_mean/running_var (read only).
// mean_out = running_mean, inv_std_out = 1/sqrt(running_var + epsilon).
void batch_norm_infer_forward(i64 rows, i64 C, const float* x, const float* gamma,
                              const float* beta, const float* running_mean,
                              const float* running_var, double epsilon, float* y,
                              float* mean_out, float* inv_std_out);

// Backward. dy, x: (rows, C); gamma: (C,) or nullptr; mean, inv_std: (C,) as
// saved by the forward. training selects the full batch-statistics gradient
//   dx = gamma*inv_std * (dy - mean(dy) - xhat * mean(dy*xhat))
// or, for inference mode (statistics are constants), dx = dy * gamma * inv_std.
// In both modes dgamma = sum(dy * xhat), dbeta = sum(dy) (each (C,), skipped
// when nullptr), with xhat = (x - mean) * inv_std. dx: (rows, C).
void batch_norm_backward(bool training, i64 rows, i64 C, const float* dy,
                         const float* x, const float* gamma, const float* mean,
                         const float* inv_std, float* dx, float* dgamma, float* dbeta);

}  // namespace fastnn
