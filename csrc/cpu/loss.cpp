// Losses (float32 data, double accumulation). See fastnn/loss.hpp for the contract.
#include "fastnn/loss.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "fastnn/activation.hpp"

namespace fastnn {

namespace {

constexpr i64 kParallelMin = 32768;  // fewer elements than this: one thread
constexpr int kLanes = 8;

// Sums v[0..n) in index order (fixed, thread-independent).
double ordered_sum(const double* v, i64 n) {
  double s = 0.0;
  for (i64 i = 0; i < n; ++i) s += v[i];
  return s;
}

// Writes e[j] = exp(z[j] - max) for one row and returns lse = max + log(sum e).
// The sum over the row is in a fixed order (kLanes strided partials, in double).
double row_exp_lse(const float* z, float* e, i64 K, float* inv_sum) {
  float m = -std::numeric_limits<float>::infinity();
  for (i64 j = 0; j < K; ++j) m = vmath::select(z[j] > m, z[j], m);
  for (i64 j = 0; j < K; ++j) e[j] = vmath::exp_nonpos(z[j] - m);
  double s[kLanes] = {};
  i64 j = 0;
  for (; j + kLanes <= K; j += kLanes)
    for (int l = 0; l < kLanes; ++l) s[l] += e[j + l];
  for (int l = 0; j < K; ++j, ++l) s[l] += e[j];
  double sum = s[0];
  for (int l = 1; l < kLanes; ++l) sum += s[l];
  *inv_sum = static_cast<float>(1.0 / sum);
  return static_cast<double>(m) + std::log(sum);
}

// Runs body(c, begin, end) over fixed chunks of kLossChunk elements of [0, n),
// storing each chunk's double partial in part[c]; returns their ordered sum.
template <class F>
double chunked_sum(i64 n, F body) {
  const i64 nchunks = ceil_div(n, kLossChunk);
  Buffer<double> part(static_cast<std::size_t>(nchunks));
  for_each_task(nchunks, fastnn::num_threads(), [&](i64 c) {
    const i64 b = c * kLossChunk;
    part[c] = body(b, std::min(n, b + kLossChunk));
  });
  return ordered_sum(part.data(), nchunks);
}

}  // namespace

double softmax_cross_entropy_index(const float* logits, const std::int64_t* labels,
                                   float* dlogits, i64 N, i64 K) {
  if (N <= 0 || K <= 0) return 0.0;
  Buffer<double> row_loss(static_cast<std::size_t>(N));
  const float inv_n = static_cast<float>(1.0 / static_cast<double>(N));
  const bool par = N * K >= kParallelMin && N > 1;
#pragma omp parallel for schedule(static) num_threads(fastnn::num_threads()) if (par) FASTNN_FP_TEAM
  for (i64 n = 0; n < N; ++n) {
    const float* z = logits + n * K;
    float* g = dlogits + n * K;
    const i64 y = labels[n];
    float inv_sum;
    const double lse = row_exp_lse(z, g, K, &inv_sum);
    row_loss[n] = lse - static_cast<double>(z[y]);
    const float p_y = g[y] * inv_sum;
    const float c = inv_sum * inv_n;
    for (i64 j = 0; j < K; ++j) g[j] *= c;
    g[y] = (p_y - 1.0f) * inv_n;
  }
  return ordered_sum(row_loss.data(), N) / static_cast<double>(N);
}

double softmax_cross_entropy_prob(const float* logits, const float* target,
                                  float* dlogits, i64 N, i64 K) {
  if (N <= 0 || K <= 0) return 0.0;
  Buffer<double> row_loss(static_cast<std::size_t>(N));
  const float inv_n = static_cast<float>(1.0 / static_cast<double>(N));
  const bool par = N * K >= kParallelMin && N > 1;
#pragma omp parallel for schedule(static) num_threads(fastnn::num_threads()) if (par) FASTNN_FP_TEAM
  for (i64 n = 0; n < N; ++n) {
    const float* z = logits + n * K;
    const float* t = target + n * K;
    float* g = dlogits + n * K;
    float inv_sum;
    const double lse = row_exp_lse(z, g, K, &inv_sum);
    double loss = 0.0, tsum = 0.0;
    for (i64 j = 0; j < K; ++j) {
      const double tj = t[j];
      loss += tj * (lse - static_cast<double>(z[j]));
      tsum += tj;
    }
    row_loss[n] = loss;
    const float c = static_cast<float>(tsum) * inv_sum;
    for (i64 j = 0; j < K; ++j) g[j] = (g[j] * c - t[j]) * inv_n;
  }
  return ordered_sum(row_loss.data(), N) / static_cast<double>(N);
}

double mse(const float* pred, const float* target, float* dpred, i64 n) {
  if (n <= 0) return 0.0;
  const float scale = static_cast<float>(2.0 / static_cast<double>(n));
  const double total = chunked_sum(n, [=](i64 b, i64 e) {
    double s[kLanes] = {};
    i64 i = b;
    for (; i + kLanes <= e; i += kLanes)
      for (int l = 0; l < kLanes; ++l) {
        const float d = pred[i + l] - target[i + l];
        dpred[i + l] = d * scale;
        s[l] += static_cast<double>(d) * static_cast<double>(d);
      }
    for (int l = 0; i < e; ++i, ++l) {
      const float d = pred[i] - target[i];
      dpred[i] = d * scale;
      s[l] += static_cast<double>(d) * static_cast<double>(d);
    }
    double r = s[0];
    for (int l = 1; l < kLanes; ++l) r += s[l];
    return r;
  });
  return total / static_cast<double>(n);
}

double mae(const float* pred, const float* target, float* dpred, i64 n) {
  if (n <= 0) return 0.0;
  const float scale = static_cast<float>(1.0 / static_cast<double>(n));
  const double total = chunked_sum(n, [=](i64 b, i64 e) {
    double s[kLanes] = {};
    i64 i = b;
    for (; i + kLanes <= e; i += kLanes)
      for (int l = 0; l < kLanes; ++l) {
        const float d = pred[i + l] - target[i + l];
        // sign(d): +-1, 0 for +-0, NaN for NaN (d * 0 keeps the NaN).
        const float sg = vmath::select(d > 0.0f, 1.0f, vmath::select(d < 0.0f, -1.0f, d * 0.0f));
        dpred[i + l] = sg * scale;
        s[l] += static_cast<double>(__builtin_fabsf(d));
      }
    for (int l = 0; i < e; ++i, ++l) {
      const float d = pred[i] - target[i];
      const float sg = vmath::select(d > 0.0f, 1.0f, vmath::select(d < 0.0f, -1.0f, d * 0.0f));
      dpred[i] = sg * scale;
      s[l] += static_cast<double>(__builtin_fabsf(d));
    }
    double r = s[0];
    for (int l = 1; l < kLanes; ++l) r += s[l];
    return r;
  });
  return total / static_cast<double>(n);
}

}  // namespace fastnn
