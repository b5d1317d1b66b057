// Fused in-place optimizer updates and clipping helpers (element-wise).
#include "fastnn/optim.hpp"

#include <algorithm>
#include <cmath>

namespace fastnn {

namespace {

// Runs body(begin, end) over fixed chunks of kOptChunk elements, in parallel
// when there is more than one chunk. Element-wise bodies make the result
// independent of the partitioning.
template <class Body>
void for_chunks(i64 n, Body body) {
  const i64 nchunks = ceil_div(n, kOptChunk);
  for_each_task(nchunks, fastnn::num_threads(), [&](i64 k) {
    const i64 b = k * kOptChunk;
    body(b, std::min<i64>(n, b + kOptChunk));
  });
}

inline float wd_factor(float lr, float weight_decay) {
  return static_cast<float>(static_cast<double>(weight_decay) * static_cast<double>(lr));
}

}  // namespace

void sgd_update(i64 n, float* p, const float* g, float* v, float lr, float momentum,
                bool nesterov, float weight_decay) {
  if (n <= 0) return;
  const float wd = wd_factor(lr, weight_decay);
  const bool decay = weight_decay != 0.0f;
  const bool use_momentum = momentum != 0.0f && v != nullptr;
  for_chunks(n, [=](i64 b, i64 e) {
    if (decay)
      for (i64 i = b; i < e; ++i) p[i] = p[i] - p[i] * wd;
    if (!use_momentum) {
      for (i64 i = b; i < e; ++i) p[i] = p[i] - g[i] * lr;
    } else if (nesterov) {
      for (i64 i = b; i < e; ++i) {
        const float vi = v[i] * momentum - g[i] * lr;
        v[i] = vi;
        p[i] = p[i] + (vi * momentum - g[i] * lr);
      }
    } else {
      for (i64 i = b; i < e; ++i) {
        const float vi = v[i] * momentum - g[i] * lr;
        v[i] = vi;
        p[i] = p[i] + vi;
      }
    }
  });
}

void rmsprop_update(i64 n, float* p, const float* g, float* ms, float lr, double rho,
                    float epsilon, float weight_decay) {
  if (n <= 0) return;
  const float wd = wd_factor(lr, weight_decay);
  const bool decay = weight_decay != 0.0f;
  const float r = static_cast<float>(rho), r1 = static_cast<float>(1.0 - rho);
  for_chunks(n, [=](i64 b, i64 e) {
    if (decay)
      for (i64 i = b; i < e; ++i) p[i] = p[i] - p[i] * wd;
    for (i64 i = b; i < e; ++i) {
      const float gi = g[i];
      const float s = r * ms[i] + r1 * (gi * gi);
      ms[i] = s;
      p[i] = p[i] - (lr * gi) / std::sqrt(s + epsilon);
    }
  });
}

void adam_update(i64 n, float* p, const float* g, float* m, float* v, float lr, i64 step,
                 double beta_1, double beta_2, float epsilon, float weight_decay) {
  if (n <= 0) return;
  const float wd = wd_factor(lr, weight_decay);
  const bool decay = weight_decay != 0.0f;
  const double s = static_cast<double>(step);
  const float alpha = static_cast<float>(static_cast<double>(lr) *
                                         std::sqrt(1.0 - std::pow(beta_2, s)) /
                                         (1.0 - std::pow(beta_1, s)));
  const float c1 = static_cast<float>(1.0 - beta_1), c2 = static_cast<float>(1.0 - beta_2);
  for_chunks(n, [=](i64 b, i64 e) {
    if (decay)
      for (i64 i = b; i < e; ++i) p[i] = p[i] - p[i] * wd;
    for (i64 i = b; i < e; ++i) {
      const float gi = g[i];
      const float mi = m[i] + (gi - m[i]) * c1;
      const float vi = v[i] + (gi * gi - v[i]) * c2;
      m[i] = mi;
      v[i] = vi;
      p[i] = p[i] - (mi * alpha) / (std::sqrt(vi) + epsilon);
    }
  });
}

void adagrad_update(i64 n, float* p, const float* g, float* acc, float lr, float epsilon,
                    float weight_decay) {
  if (n <= 0) return;
  const float wd = wd_factor(lr, weight_decay);
  const bool decay = weight_decay != 0.0f;
  for_chunks(n, [=](i64 b, i64 e) {
    if (decay)
      for (i64 i = b; i < e; ++i) p[i] = p[i] - p[i] * wd;
    for (i64 i = b; i < e; ++i) {
      const float gi = g[i];
      const float a = acc[i] + gi * gi;
      acc[i] = a;
      p[i] = p[i] - (lr * gi) / std::sqrt(a + epsilon);
    }
  });
}

void adadelta_update(i64 n, float* p, const float* g, float* ag, float* ad, float lr,
                     double rho, float epsilon, float weight_decay) {
  if (n <= 0) return;
  const float wd = wd_factor(lr, weight_decay);
  const bool decay = weight_decay != 0.0f;
  const float r = static_cast<float>(rho), r1 = static_cast<float>(1.0 - rho);
  for_chunks(n, [=](i64 b, i64 e) {
    if (decay)
      for (i64 i = b; i < e; ++i) p[i] = p[i] - p[i] * wd;
    for (i64 i = b; i < e; ++i) {
      const float gi = g[i];
      const float a = r * ag[i] + r1 * (gi * gi);
      ag[i] = a;
      const float d = -((std::sqrt(ad[i] + epsilon) * gi) / std::sqrt(a + epsilon));
      ad[i] = r * ad[i] + r1 * (d * d);
      p[i] = p[i] + lr * d;
    }
  });
}

double sum_squares(i64 n, const float* a) {
  if (n <= 0) return 0.0;
  const i64 nchunks = ceil_div(n, kOptChunk);
  Buffer<double> part(static_cast<std::size_t>(nchunks));
#pragma omp parallel for schedule(static) num_threads(fastnn::num_threads()) if (nchunks > 1) FASTNN_FP_TEAM
  for (i64 k = 0; k < nchunks; ++k) {
    const i64 b = k * kOptChunk, e = std::min<i64>(n, b + kOptChunk);
    double lane[kSumLanes];
    for (int l = 0; l < kSumLanes; ++l) lane[l] = 0.0;
    i64 i = b;
    for (; i + kSumLanes <= e; i += kSumLanes)
      for (int l = 0; l < kSumLanes; ++l) {
        const double x = static_cast<double>(a[i + l]);
        lane[l] += x * x;
      }
    for (int l = 0; i < e; ++i, ++l) {
      const double x = static_cast<double>(a[i]);
      lane[l] += x * x;
    }
    double s = 0.0;
    for (int l = 0; l < kSumLanes; ++l) s += lane[l];
    part[k] = s;
  }
  double total = 0.0;
  for (i64 k = 0; k < nchunks; ++k) total += part[k];
  return total;
}

void clip_by_value(i64 n, float* a, float clip) {
  if (n <= 0) return;
  const float lo = -clip, hi = clip;
  for_chunks(n, [=](i64 b, i64 e) {
    for (i64 i = b; i < e; ++i) {
      float x = a[i];
      x = x < lo ? lo : x;  // NaN compares false: stays NaN
      x = x > hi ? hi : x;
      a[i] = x;
    }
  });
}

void scale_inplace(i64 n, float* a, float factor) {
  if (n <= 0) return;
  for_chunks(n, [=](i64 b, i64 e) {
    for (i64 i = b; i < e; ++i) a[i] = a[i] * factor;
  });
}

}  // namespace fastnn
