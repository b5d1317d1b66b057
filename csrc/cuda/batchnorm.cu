// Batch normalization over all axes but the last (channels last), forward and
// backward; the contract of fastnn/batchnorm.hpp. x is viewed as (rows, C).
//
// Per-channel statistics are exact two-pass sums in double (mean, then the centred
// sum of squares), over fixed chunks of rows combined in chunk order: the same on
// every run. y = (x - mean) * (gamma * inv_std) + beta with inv_std rounded once
// from double. Running statistics: running * momentum + batch * (1 - momentum)
// with the biased variance (Keras), in double, rounded once.
#include <cmath>

#include "fastnn/cuda/kernels.hpp"
#include "launch.cuh"

namespace fastnn {
namespace cuda {

namespace {

constexpr i64 kChunkRows = 1024;

// Per-channel partial sums of f(r, c) over row chunks: block (32 channels x 8 row
// lanes) -> partial[chunk * C + c], lanes combined in lane order.
template <class F>
__global__ void channel_partial_kernel(F f, i64 rows, i64 C, double* __restrict__ partial) {
  __shared__ double lanes[8][32];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const i64 c = i64(blockIdx.x) * 32 + tx;
  const i64 chunk = blockIdx.y;
  const i64 r0 = chunk * kChunkRows, r1 = min(rows, r0 + kChunkRows);
  double s = 0.0;
  if (c < C)
    for (i64 r = r0 + ty; r < r1; r += 8) s += f(r, c);
  lanes[ty][tx] = s;
  __syncthreads();
  if (ty == 0 && c < C) {
    double t = 0.0;
    for (int l = 0; l < 8; ++l) t += lanes[l][tx];
    partial[chunk * C + c] = t;
  }
}

__global__ void channel_final_kernel(const double* __restrict__ partial, i64 chunks, i64 C,
                                     double* __restrict__ out) {
  for (i64 c = global_index(); c < C; c += global_stride()) {
    double s = 0.0;
    for (i64 k = 0; k < chunks; ++k) s += partial[k * C + c];
    out[c] = s;
  }
}

// out[c] = sum over rows of f(r, c), in double (rows >= 1).
template <class F>
void channel_sums(F f, i64 rows, i64 C, double* out, const char* what) {
  const i64 chunks = (rows + kChunkRows - 1) / kChunkRows;
  if (chunks > 65535) throw CudaError(std::string(what) + ": too many rows");
  Scratch partial(static_cast<std::size_t>(chunks * C) * sizeof(double));
  const dim3 grid(static_cast<unsigned>((C + 31) / 32), static_cast<unsigned>(chunks));
  channel_partial_kernel<<<grid, dim3(32, 8)>>>(f, rows, C, partial.as<double>());
  check_launch(what);
  channel_final_kernel<<<grid_1d(C), kThreads>>>(partial.as<double>(), chunks, C, out);
  check_launch(what);
}

struct XValue {
  const float* x;
  i64 C;
  __device__ double operator()(i64 r, i64 c) const { return static_cast<double>(x[r * C + c]); }
};
struct CentredSquare {
  const float* x;
  const double* mean;
  i64 C;
  __device__ double operator()(i64 r, i64 c) const {
    const double d = static_cast<double>(x[r * C + c]) - mean[c];
    return d * d;
  }
};
struct DyValue {
  const float* dy;
  i64 C;
  __device__ double operator()(i64 r, i64 c) const { return static_cast<double>(dy[r * C + c]); }
};
struct DyXhat {
  const float* dy;
  const float* x;
  const float* mean;
  const float* inv_std;
  i64 C;
  __device__ double operator()(i64 r, i64 c) const {
    const float xhat = (x[r * C + c] - mean[c]) * inv_std[c];
    return static_cast<double>(dy[r * C + c]) * static_cast<double>(xhat);
  }
};

// Batch statistics -> saved mean / inv_std and the running statistics (one thread per channel).
__global__ void train_stats_kernel(const double* __restrict__ mean_d, const double* __restrict__ sq, i64 rows,
                                   i64 C, double momentum, double epsilon, float* __restrict__ rm,
                                   float* __restrict__ rv, float* __restrict__ mean_out,
                                   float* __restrict__ inv_std_out) {
  for (i64 c = global_index(); c < C; c += global_stride()) {
    const double mean = mean_d[c];
    const double var = sq[c] / static_cast<double>(rows);
    mean_out[c] = static_cast<float>(mean);
    inv_std_out[c] = static_cast<float>(1.0 / sqrt(var + epsilon));
    rm[c] = static_cast<float>(static_cast<double>(rm[c]) * momentum + mean * (1.0 - momentum));
    rv[c] = static_cast<float>(static_cast<double>(rv[c]) * momentum + var * (1.0 - momentum));
  }
}

__global__ void running_stats_kernel(const float* __restrict__ rm, const float* __restrict__ rv, i64 C,
                                     double epsilon, float* __restrict__ mean_out,
                                     float* __restrict__ inv_std_out) {
  for (i64 c = global_index(); c < C; c += global_stride()) {
    mean_out[c] = rm[c];
    inv_std_out[c] = static_cast<float>(1.0 / sqrt(static_cast<double>(rv[c]) + epsilon));
  }
}

__global__ void normalize_kernel(const float* __restrict__ x, const float* __restrict__ gamma,
                                 const float* __restrict__ beta, const float* __restrict__ mean,
                                 const float* __restrict__ inv_std, i64 n, i64 C, float* __restrict__ y) {
  for (i64 i = global_index(); i < n; i += global_stride()) {
    const i64 c = i % C;
    const float scale = gamma != nullptr ? gamma[c] * inv_std[c] : inv_std[c];
    const float shift = beta != nullptr ? beta[c] : 0.0f;
    y[i] = (x[i] - mean[c]) * scale + shift;
  }
}

__global__ void backward_dx_kernel(bool training, const float* __restrict__ dy, const float* __restrict__ x,
                                   const float* __restrict__ gamma, const float* __restrict__ mean,
                                   const float* __restrict__ inv_std, const double* __restrict__ sum_dy,
                                   const double* __restrict__ sum_dy_xhat, i64 rows, i64 C,
                                   float* __restrict__ dx) {
  const i64 n = rows * C;
  for (i64 i = global_index(); i < n; i += global_stride()) {
    const i64 c = i % C;
    const float scale = gamma != nullptr ? gamma[c] * inv_std[c] : inv_std[c];
    if (!training) {
      dx[i] = dy[i] * scale;
      continue;
    }
    const float mean_dy = static_cast<float>(sum_dy[c] / static_cast<double>(rows));
    const float mean_dy_xhat = static_cast<float>(sum_dy_xhat[c] / static_cast<double>(rows));
    const float xhat = (x[i] - mean[c]) * inv_std[c];
    dx[i] = scale * (dy[i] - mean_dy - xhat * mean_dy_xhat);
  }
}

__global__ void mean_kernel(const double* __restrict__ sum, i64 rows, i64 C, double* __restrict__ mean) {
  for (i64 c = global_index(); c < C; c += global_stride()) mean[c] = sum[c] / static_cast<double>(rows);
}

__global__ void to_float_kernel(const double* __restrict__ in, i64 n, float* __restrict__ out) {
  for (i64 i = global_index(); i < n; i += global_stride()) out[i] = static_cast<float>(in[i]);
}

}  // namespace

void batch_norm_train_forward(i64 rows, i64 C, const float* x, const float* gamma, const float* beta,
                              double momentum, double epsilon, float* running_mean, float* running_var,
                              float* y, float* mean_out, float* inv_std_out) {
  if (C <= 0) return;
  if (rows <= 0) {  // no batch statistics: running statistics untouched, saved = running
    running_stats_kernel<<<grid_1d(C), kThreads>>>(running_mean, running_var, C, epsilon, mean_out,
                                                   inv_std_out);
    check_launch("batch_norm");
    return;
  }
  Scratch stats(static_cast<std::size_t>(3 * C) * sizeof(double));
  double* sum = stats.as<double>();
  double* mean = sum + C;
  double* sq = sum + 2 * C;
  channel_sums(XValue{x, C}, rows, C, sum, "batch_norm");
  mean_kernel<<<grid_1d(C), kThreads>>>(sum, rows, C, mean);
  check_launch("batch_norm");
  channel_sums(CentredSquare{x, mean, C}, rows, C, sq, "batch_norm");
  train_stats_kernel<<<grid_1d(C), kThreads>>>(mean, sq, rows, C, momentum, epsilon, running_mean,
                                               running_var, mean_out, inv_std_out);
  check_launch("batch_norm");
  normalize_kernel<<<grid_1d(rows * C), kThreads>>>(x, gamma, beta, mean_out, inv_std_out, rows * C, C, y);
  check_launch("batch_norm");
}

void batch_norm_infer_forward(i64 rows, i64 C, const float* x, const float* gamma, const float* beta,
                              const float* running_mean, const float* running_var, double epsilon, float* y,
                              float* mean_out, float* inv_std_out) {
  if (C <= 0) return;
  running_stats_kernel<<<grid_1d(C), kThreads>>>(running_mean, running_var, C, epsilon, mean_out, inv_std_out);
  check_launch("batch_norm");
  if (rows <= 0) return;
  normalize_kernel<<<grid_1d(rows * C), kThreads>>>(x, gamma, beta, mean_out, inv_std_out, rows * C, C, y);
  check_launch("batch_norm");
}

void batch_norm_backward(bool training, i64 rows, i64 C, const float* dy, const float* x, const float* gamma,
                         const float* mean, const float* inv_std, float* dx, float* dgamma, float* dbeta) {
  if (C <= 0) return;
  if (rows <= 0) {
    if (dgamma != nullptr) fill_zero(dgamma, static_cast<std::size_t>(C) * sizeof(float));
    if (dbeta != nullptr) fill_zero(dbeta, static_cast<std::size_t>(C) * sizeof(float));
    return;
  }
  Scratch sums(static_cast<std::size_t>(2 * C) * sizeof(double));
  double* sum_dy = sums.as<double>();
  double* sum_dy_xhat = sum_dy + C;
  channel_sums(DyValue{dy, C}, rows, C, sum_dy, "batch_norm_backward");
  channel_sums(DyXhat{dy, x, mean, inv_std, C}, rows, C, sum_dy_xhat, "batch_norm_backward");
  backward_dx_kernel<<<grid_1d(rows * C), kThreads>>>(training, dy, x, gamma, mean, inv_std, sum_dy,
                                                      sum_dy_xhat, rows, C, dx);
  check_launch("batch_norm_backward");
  if (dgamma != nullptr) to_float_kernel<<<grid_1d(C), kThreads>>>(sum_dy_xhat, C, dgamma);
  if (dbeta != nullptr) to_float_kernel<<<grid_1d(C), kThreads>>>(sum_dy, C, dbeta);
  check_launch("batch_norm_backward");
}

}  // namespace cuda
}  // namespace fastnn
