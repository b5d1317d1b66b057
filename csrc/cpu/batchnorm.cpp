// Batch normalization (channels last): deterministic chunked statistics.
#include "fastnn/batchnorm.hpp"

#include <algorithm>
#include <cmath>

namespace fastnn {

namespace {

inline i64 num_chunks(i64 rows) { return ceil_div(rows, kBnChunkRows); }

// Parallel only when there is enough work for it to pay off; the result never
// depends on this choice.
inline bool worth_parallel(i64 rows, i64 C) {
  return num_chunks(rows) > 1 && rows * C >= (i64(1) << 15);
}

// y = (x - mean) * scale + shift, per channel.
void normalize(i64 rows, i64 C, const float* x, const float* mean, const float* scale,
               const float* shift, float* y) {
  const i64 nchunks = num_chunks(rows);
#pragma omp parallel for schedule(static) num_threads(fastnn::num_threads()) \
    if (worth_parallel(rows, C)) FASTNN_FP_TEAM
  for (i64 k = 0; k < nchunks; ++k) {
    const i64 r1 = std::min<i64>(rows, (k + 1) * kBnChunkRows);
    for (i64 r = k * kBnChunkRows; r < r1; ++r) {
      const float* xr = x + r * C;
      float* yr = y + r * C;
      for (i64 c = 0; c < C; ++c) yr[c] = (xr[c] - mean[c]) * scale[c] + shift[c];
    }
  }
}

// Per-channel batch mean and biased variance of x (rows > 0), in double.
void batch_stats(i64 rows, i64 C, const float* x, double* mean, double* var) {
  const i64 nchunks = num_chunks(rows);
  Buffer<double> cmean(static_cast<std::size_t>(nchunks * C));
  Buffer<double> cm2(static_cast<std::size_t>(nchunks * C));
#pragma omp parallel for schedule(static) num_threads(fastnn::num_threads()) \
    if (worth_parallel(rows, C)) FASTNN_FP_TEAM
  for (i64 k = 0; k < nchunks; ++k) {
    const i64 r0 = k * kBnChunkRows, r1 = std::min<i64>(rows, r0 + kBnChunkRows);
    double* s = cmean.data() + k * C;
    double* q = cm2.data() + k * C;
    for (i64 c = 0; c < C; ++c) s[c] = 0.0;
    for (i64 r = r0; r < r1; ++r) {
      const float* xr = x + r * C;
      for (i64 c = 0; c < C; ++c) s[c] += static_cast<double>(xr[c]);
    }
    const double inv_n = 1.0 / static_cast<double>(r1 - r0);
    for (i64 c = 0; c < C; ++c) {
      s[c] *= inv_n;
      q[c] = 0.0;
    }
    for (i64 r = r0; r < r1; ++r) {
      const float* xr = x + r * C;
      for (i64 c = 0; c < C; ++c) {
        const double d = static_cast<double>(xr[c]) - s[c];
        q[c] += d * d;
      }
    }
  }
  // Merge the chunks in order (Chan et al.).
  for (i64 c = 0; c < C; ++c) {
    mean[c] = cmean[c];
    var[c] = cm2[c];  // running M2
  }
  double na = static_cast<double>(std::min<i64>(rows, kBnChunkRows));
  for (i64 k = 1; k < nchunks; ++k) {
    const double nb =
        static_cast<double>(std::min<i64>(rows, (k + 1) * kBnChunkRows) - k * kBnChunkRows);
    const double n = na + nb;
    const double* s = cmean.data() + k * C;
    const double* q = cm2.data() + k * C;
    for (i64 c = 0; c < C; ++c) {
      const double delta = s[c] - mean[c];
      mean[c] += delta * (nb / n);
      var[c] += q[c] + delta * delta * (na * nb / n);
    }
    na = n;
  }
  const double inv_rows = 1.0 / static_cast<double>(rows);
  for (i64 c = 0; c < C; ++c) var[c] *= inv_rows;
}

void scale_shift(i64 C, const float* gamma, const float* beta, const float* inv_std,
                 float* scale, float* shift) {
  for (i64 c = 0; c < C; ++c) {
    scale[c] = gamma ? static_cast<float>(static_cast<double>(gamma[c]) * inv_std[c])
                     : inv_std[c];
    shift[c] = beta ? beta[c] : 0.0f;
  }
}

}  // namespace

void batch_norm_train_forward(i64 rows, i64 C, const float* x, const float* gamma,
                              const float* beta, double momentum, double epsilon,
                              float* running_mean, float* running_var, float* y,
                              float* mean_out, float* inv_std_out) {
  if (C <= 0) return;
  if (rows <= 0) {
    for (i64 c = 0; c < C; ++c) {
      mean_out[c] = running_mean[c];
      inv_std_out[c] =
          static_cast<float>(1.0 / std::sqrt(static_cast<double>(running_var[c]) + epsilon));
    }
    return;
  }
  Buffer<double> mean(static_cast<std::size_t>(C)), var(static_cast<std::size_t>(C));
  batch_stats(rows, C, x, mean.data(), var.data());
  for (i64 c = 0; c < C; ++c) {
    mean_out[c] = static_cast<float>(mean[c]);
    inv_std_out[c] = static_cast<float>(1.0 / std::sqrt(var[c] + epsilon));
  }
  Buffer<float> scale(static_cast<std::size_t>(C)), shift(static_cast<std::size_t>(C));
  scale_shift(C, gamma, beta, inv_std_out, scale.data(), shift.data());
  normalize(rows, C, x, mean_out, scale.data(), shift.data(), y);
  const double keep = momentum, take = 1.0 - momentum;
  for (i64 c = 0; c < C; ++c) {
    running_mean[c] =
        static_cast<float>(static_cast<double>(running_mean[c]) * keep + mean[c] * take);
    running_var[c] =
        static_cast<float>(static_cast<double>(running_var[c]) * keep + var[c] * take);
  }
}

void batch_norm_infer_forward(i64 rows, i64 C, const float* x, const float* gamma,
                              const float* beta, const float* running_mean,
                              const float* running_var, double epsilon, float* y,
                              float* mean_out, float* inv_std_out) {
  if (C <= 0) return;
  for (i64 c = 0; c < C; ++c) {
    mean_out[c] = running_mean[c];
    inv_std_out[c] =
        static_cast<float>(1.0 / std::sqrt(static_cast<double>(running_var[c]) + epsilon));
  }
  if (rows <= 0) return;
  Buffer<float> scale(static_cast<std::size_t>(C)), shift(static_cast<std::size_t>(C));
  scale_shift(C, gamma, beta, inv_std_out, scale.data(), shift.data());
  normalize(rows, C, x, mean_out, scale.data(), shift.data(), y);
}

void batch_norm_backward(bool training, i64 rows, i64 C, const float* dy,
                         const float* x, const float* gamma, const float* mean,
                         const float* inv_std, float* dx, float* dgamma, float* dbeta) {
  if (C <= 0) return;
  const i64 nchunks = num_chunks(rows);
  // Per-chunk partial sums of dy and dy * (x - mean), in double.
  Buffer<double> part(static_cast<std::size_t>(std::max<i64>(nchunks, 1) * 2 * C));
#pragma omp parallel for schedule(static) num_threads(fastnn::num_threads()) \
    if (worth_parallel(rows, C)) FASTNN_FP_TEAM
  for (i64 k = 0; k < nchunks; ++k) {
    const i64 r0 = k * kBnChunkRows, r1 = std::min<i64>(rows, r0 + kBnChunkRows);
    double* sdy = part.data() + k * 2 * C;
    double* sdxc = sdy + C;
    for (i64 c = 0; c < C; ++c) {
      sdy[c] = 0.0;
      sdxc[c] = 0.0;
    }
    for (i64 r = r0; r < r1; ++r) {
      const float* xr = x + r * C;
      const float* gr = dy + r * C;
      for (i64 c = 0; c < C; ++c) {
        const double g = static_cast<double>(gr[c]);
        sdy[c] += g;
        sdxc[c] += g * static_cast<double>(xr[c] - mean[c]);
      }
    }
  }
  Buffer<double> sum_dy(static_cast<std::size_t>(C)), sum_dxc(static_cast<std::size_t>(C));
  for (i64 c = 0; c < C; ++c) {
    sum_dy[c] = 0.0;
    sum_dxc[c] = 0.0;
  }
  for (i64 k = 0; k < nchunks; ++k) {
    const double* sdy = part.data() + k * 2 * C;
    const double* sdxc = sdy + C;
    for (i64 c = 0; c < C; ++c) {
      sum_dy[c] += sdy[c];
      sum_dxc[c] += sdxc[c];
    }
  }
  for (i64 c = 0; c < C; ++c) {
    if (dbeta) dbeta[c] = static_cast<float>(sum_dy[c]);
    if (dgamma) dgamma[c] = static_cast<float>(sum_dxc[c] * static_cast<double>(inv_std[c]));
  }
  if (rows <= 0 || !dx) return;

  // dx = a * (dy - b - (x - mean) * k) per channel (b = k = 0 in inference).
  Buffer<float> a(static_cast<std::size_t>(C)), b(static_cast<std::size_t>(C)),
      kk(static_cast<std::size_t>(C));
  const double inv_rows = 1.0 / static_cast<double>(rows);
  for (i64 c = 0; c < C; ++c) {
    const double is = static_cast<double>(inv_std[c]);
    a[c] = static_cast<float>((gamma ? static_cast<double>(gamma[c]) : 1.0) * is);
    b[c] = training ? static_cast<float>(sum_dy[c] * inv_rows) : 0.0f;
    kk[c] = training ? static_cast<float>(sum_dxc[c] * is * is * inv_rows) : 0.0f;
  }
  if (training) {
#pragma omp parallel for schedule(static) num_threads(fastnn::num_threads()) \
    if (worth_parallel(rows, C)) FASTNN_FP_TEAM
    for (i64 k = 0; k < nchunks; ++k) {
      const i64 r1 = std::min<i64>(rows, (k + 1) * kBnChunkRows);
      for (i64 r = k * kBnChunkRows; r < r1; ++r) {
        const float* xr = x + r * C;
        const float* gr = dy + r * C;
        float* dr = dx + r * C;
        for (i64 c = 0; c < C; ++c)
          dr[c] = a[c] * (gr[c] - b[c] - (xr[c] - mean[c]) * kk[c]);
      }
    }
  } else {
#pragma omp parallel for schedule(static) num_threads(fastnn::num_threads()) \
    if (worth_parallel(rows, C)) FASTNN_FP_TEAM
    for (i64 k = 0; k < nchunks; ++k) {
      const i64 r1 = std::min<i64>(rows, (k + 1) * kBnChunkRows);
      for (i64 r = k * kBnChunkRows; r < r1; ++r) {
        const float* gr = dy + r * C;
        float* dr = dx + r * C;
        for (i64 c = 0; c < C; ++c) dr[c] = gr[c] * a[c];
      }
    }
  }
}

}  // namespace fastnn
