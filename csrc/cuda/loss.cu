// Losses with their gradients: softmax cross-entropy (one warp per row), mse, mae
// (fixed chunks). Row losses / chunk partials are double and summed in a fixed
// order (sum_to_host), so the loss is the same on every run. The formulas are the
// CPU's (fastnn/loss.hpp); exp/log are CUDA's, so values agree to float rounding.
#include "fastnn/cuda/kernels.hpp"
#include "reduce.cuh"

namespace fastnn {
namespace cuda {

namespace {

constexpr int kRowsPerBlock = kThreads / 32;  // one warp per row

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float u = __shfl_xor_sync(0xffffffffu, v, o);
    v = u > v ? u : v;  // the same tree in every lane: all lanes end with one value
  }
  return v;
}

__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ i64 label_at(const void* labels, int bytes, i64 n) {
  if (bytes == 1) return static_cast<const std::uint8_t*>(labels)[n];
  if (bytes == 4) return static_cast<const std::int32_t*>(labels)[n];
  return static_cast<const std::int64_t*>(labels)[n];
}

// lse of row z (length K) computed by one warp; every lane gets the value.
// inv_sum = 1 / sum exp(z - max); m = the row maximum.
__device__ __forceinline__ double row_lse(const float* z, i64 K, float& m, float& inv_sum) {
  const int lane = threadIdx.x & 31;
  float mx = -INFINITY;
  for (i64 j = lane; j < K; j += 32) mx = z[j] > mx ? z[j] : mx;
  mx = warp_max(mx);
  double s = 0.0;
  for (i64 j = lane; j < K; j += 32) s += static_cast<double>(expf(z[j] - mx));
  s = warp_sum(s);
  m = mx;
  inv_sum = static_cast<float>(1.0 / s);
  return static_cast<double>(mx) + log(s);
}

__global__ void ce_index_kernel(const float* __restrict__ logits, const void* labels, int bytes,
                                float* __restrict__ dlogits, i64 N, i64 K, float inv_n,
                                double* __restrict__ row_loss,
                                unsigned long long* __restrict__ bad) {
  const i64 row = i64(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= N) return;  // whole warps leave together
  const float* z = logits + row * K;
  float* g = dlogits + row * K;
  const i64 y = label_at(labels, bytes, row);
  if (y < 0 || y >= K) {
    if (lane == 0) {
      atomicMin(bad, static_cast<unsigned long long>(row));
      row_loss[row] = 0.0;
    }
    return;
  }
  float m, inv_sum;
  const double lse = row_lse(z, K, m, inv_sum);
  const float c = inv_sum * inv_n;
  for (i64 j = lane; j < K; j += 32) {
    const float e = expf(z[j] - m);
    g[j] = j == y ? (e * inv_sum - 1.0f) * inv_n : e * c;
  }
  if (lane == 0) row_loss[row] = lse - static_cast<double>(z[y]);
}

__global__ void ce_prob_kernel(const float* __restrict__ logits, const float* __restrict__ target,
                               float* __restrict__ dlogits, i64 N, i64 K, float inv_n,
                               double* __restrict__ row_loss) {
  const i64 row = i64(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= N) return;
  const float* z = logits + row * K;
  const float* t = target + row * K;
  float* g = dlogits + row * K;
  float m, inv_sum;
  const double lse = row_lse(z, K, m, inv_sum);
  double loss = 0.0, tsum = 0.0;
  for (i64 j = lane; j < K; j += 32) {
    const double tj = t[j];
    loss += tj * (lse - static_cast<double>(z[j]));
    tsum += tj;
  }
  loss = warp_sum(loss);
  tsum = warp_sum(tsum);
  const float c = static_cast<float>(tsum) * inv_sum;
  for (i64 j = lane; j < K; j += 32) g[j] = (expf(z[j] - m) * c - t[j]) * inv_n;
  if (lane == 0) row_loss[row] = loss;
}

constexpr i64 kLossChunk = 16384;

template <bool kAbs>
__global__ void pointwise_loss_kernel(const float* __restrict__ pred, const float* __restrict__ target,
                                      float* __restrict__ dpred, i64 n, float scale,
                                      double* __restrict__ partial) {
  const i64 b = i64(blockIdx.x) * kLossChunk, e = min(n, b + kLossChunk);
  double s = 0.0;
  for (i64 i = b + threadIdx.x; i < e; i += kThreads) {
    const float d = pred[i] - target[i];
    if (kAbs) {
      const float sg = d > 0.0f ? 1.0f : (d < 0.0f ? -1.0f : d * 0.0f);  // NaN stays NaN
      dpred[i] = sg * scale;
      s += static_cast<double>(fabsf(d));
    } else {
      dpred[i] = d * scale;
      s += static_cast<double>(d) * static_cast<double>(d);
    }
  }
  s = block_sum(s);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

template <bool kAbs>
double pointwise_loss(const float* pred, const float* target, float* dpred, i64 n, double c,
                      const char* what) {
  if (n <= 0) return 0.0;
  const i64 chunks = (n + kLossChunk - 1) / kLossChunk;
  if (chunks > 0x7fffffffLL) throw CudaError(std::string(what) + ": array too large");
  Scratch partial(static_cast<std::size_t>(chunks) * sizeof(double));
  pointwise_loss_kernel<kAbs><<<static_cast<unsigned>(chunks), kThreads>>>(
      pred, target, dpred, n, static_cast<float>(c / static_cast<double>(n)), partial.as<double>());
  check_launch(what);
  return sum_to_host(partial.as<double>(), chunks) / static_cast<double>(n);
}

unsigned row_blocks(i64 N) {
  const i64 b = (N + kRowsPerBlock - 1) / kRowsPerBlock;
  if (b > 0x7fffffffLL) throw CudaError("softmax_cross_entropy: too many rows");
  return static_cast<unsigned>(b);
}

}  // namespace

double softmax_cross_entropy_index(const float* logits, const void* labels, int label_bytes,
                                   float* dlogits, i64 N, i64 K, i64* bad_position) {
  *bad_position = -1;
  if (N <= 0 || K <= 0) return 0.0;
  Scratch row_loss(static_cast<std::size_t>(N) * sizeof(double));
  Scratch bad(sizeof(unsigned long long));
  const unsigned long long none = ~0ull;
  copy_host_to_device(bad.as<void>(), &none, sizeof(none));
  const float inv_n = static_cast<float>(1.0 / static_cast<double>(N));
  ce_index_kernel<<<row_blocks(N), kThreads>>>(logits, labels, label_bytes, dlogits, N, K, inv_n,
                                               row_loss.as<double>(), bad.as<unsigned long long>());
  check_launch("softmax_cross_entropy");
  const double total = sum_to_host(row_loss.as<double>(), N);
  unsigned long long first_bad = none;
  copy_device_to_host(&first_bad, bad.as<void>(), sizeof(first_bad));
  if (first_bad != none) *bad_position = static_cast<i64>(first_bad);
  return total / static_cast<double>(N);
}

double softmax_cross_entropy_prob(const float* logits, const float* target, float* dlogits,
                                  i64 N, i64 K) {
  if (N <= 0 || K <= 0) return 0.0;
  Scratch row_loss(static_cast<std::size_t>(N) * sizeof(double));
  const float inv_n = static_cast<float>(1.0 / static_cast<double>(N));
  ce_prob_kernel<<<row_blocks(N), kThreads>>>(logits, target, dlogits, N, K, inv_n,
                                              row_loss.as<double>());
  check_launch("softmax_cross_entropy");
  return sum_to_host(row_loss.as<double>(), N) / static_cast<double>(N);
}

double mse(const float* pred, const float* target, float* dpred, i64 n) {
  return pointwise_loss<false>(pred, target, dpred, n, 2.0, "mse");
}

double mae(const float* pred, const float* target, float* dpred, i64 n) {
  return pointwise_loss<true>(pred, target, dpred, n, 1.0, "mae");
}

}  // namespace cuda
}  // namespace fastnn
