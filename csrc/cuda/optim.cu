// Fused in-place optimizer updates and clipping helpers, element-wise, in the
// operation order of fastnn/optim.hpp. Compiled with -fmad=false (CMakeLists) so
// that no multiply-add is contracted: with IEEE division and square root this
// gives the CPU's float32 results.
#include <cmath>

#include "fastnn/cuda/kernels.hpp"
#include "reduce.cuh"

namespace fastnn {
namespace cuda {

namespace {

template <class F>
__global__ void for_each_kernel(i64 n, F f) {
  for (i64 i = global_index(); i < n; i += global_stride()) f(i);
}

template <class F>
void for_each(i64 n, F f, const char* what) {
  if (n <= 0) return;
  for_each_kernel<<<grid_1d(n), kThreads>>>(n, f);
  check_launch(what);
}

float wd_factor(float lr, float weight_decay) {
  return static_cast<float>(static_cast<double>(weight_decay) * static_cast<double>(lr));
}

// Element-wise bodies (device lambdas are avoided to keep nvcc flags plain).
struct Sgd {
  float* p; const float* g; float* v; float lr, momentum, wd; bool decay, use_v, nesterov;
  __device__ void operator()(i64 i) const {
    float pi = p[i];
    if (decay) pi = pi - pi * wd;
    if (!use_v) {
      pi = pi - g[i] * lr;
    } else {
      const float vi = v[i] * momentum - g[i] * lr;
      v[i] = vi;
      pi = nesterov ? pi + (vi * momentum - g[i] * lr) : pi + vi;
    }
    p[i] = pi;
  }
};

struct Rmsprop {
  float* p; const float* g; float* ms; float lr, r, r1, eps, wd; bool decay;
  __device__ void operator()(i64 i) const {
    float pi = p[i];
    if (decay) pi = pi - pi * wd;
    const float gi = g[i];
    const float s = r * ms[i] + r1 * (gi * gi);
    ms[i] = s;
    p[i] = pi - (lr * gi) / sqrtf(s + eps);
  }
};

struct Adam {
  float* p; const float* g; float* m; float* v; float alpha, c1, c2, eps, wd; bool decay;
  __device__ void operator()(i64 i) const {
    float pi = p[i];
    if (decay) pi = pi - pi * wd;
    const float gi = g[i];
    const float mi = m[i] + (gi - m[i]) * c1;
    const float vi = v[i] + (gi * gi - v[i]) * c2;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi - (mi * alpha) / (sqrtf(vi) + eps);
  }
};

struct Adagrad {
  float* p; const float* g; float* acc; float lr, eps, wd; bool decay;
  __device__ void operator()(i64 i) const {
    float pi = p[i];
    if (decay) pi = pi - pi * wd;
    const float gi = g[i];
    const float a = acc[i] + gi * gi;
    acc[i] = a;
    p[i] = pi - (lr * gi) / sqrtf(a + eps);
  }
};

struct Adadelta {
  float* p; const float* g; float* ag; float* ad; float lr, r, r1, eps, wd; bool decay;
  __device__ void operator()(i64 i) const {
    float pi = p[i];
    if (decay) pi = pi - pi * wd;
    const float gi = g[i];
    const float a = r * ag[i] + r1 * (gi * gi);
    ag[i] = a;
    const float d = -((sqrtf(ad[i] + eps) * gi) / sqrtf(a + eps));
    ad[i] = r * ad[i] + r1 * (d * d);
    p[i] = pi + lr * d;
  }
};

struct Clip {
  float* a; float lo, hi;
  __device__ void operator()(i64 i) const {
    float x = a[i];
    x = x < lo ? lo : x;  // NaN stays NaN
    x = x > hi ? hi : x;
    a[i] = x;
  }
};

struct Scale {
  float* a; float factor;
  __device__ void operator()(i64 i) const { a[i] = a[i] * factor; }
};

constexpr i64 kSumChunk = 16384;  // elements per partial sum of squares

__global__ void sum_squares_kernel(const float* __restrict__ a, i64 n,
                                   double* __restrict__ partial) {
  const i64 b = i64(blockIdx.x) * kSumChunk, e = min(n, b + kSumChunk);
  double s = 0.0;
  for (i64 i = b + threadIdx.x; i < e; i += kThreads) {
    const double x = static_cast<double>(a[i]);
    s += x * x;
  }
  s = block_sum(s);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

}  // namespace

void sgd_update(i64 n, float* p, const float* g, float* v, float lr, float momentum,
                bool nesterov, float weight_decay) {
  const bool use_v = momentum != 0.0f && v != nullptr;
  for_each(n, Sgd{p, g, v, lr, momentum, wd_factor(lr, weight_decay), weight_decay != 0.0f,
                  use_v, nesterov}, "sgd_update");
}

void rmsprop_update(i64 n, float* p, const float* g, float* ms, float lr, double rho,
                    float epsilon, float weight_decay) {
  for_each(n, Rmsprop{p, g, ms, lr, static_cast<float>(rho), static_cast<float>(1.0 - rho),
                      epsilon, wd_factor(lr, weight_decay), weight_decay != 0.0f},
           "rmsprop_update");
}

void adam_update(i64 n, float* p, const float* g, float* m, float* v, float lr, i64 step,
                 double beta_1, double beta_2, float epsilon, float weight_decay) {
  const double s = static_cast<double>(step);
  const float alpha = static_cast<float>(static_cast<double>(lr) *
                                         std::sqrt(1.0 - std::pow(beta_2, s)) /
                                         (1.0 - std::pow(beta_1, s)));
  for_each(n, Adam{p, g, m, v, alpha, static_cast<float>(1.0 - beta_1),
                   static_cast<float>(1.0 - beta_2), epsilon, wd_factor(lr, weight_decay),
                   weight_decay != 0.0f}, "adam_update");
}

void adagrad_update(i64 n, float* p, const float* g, float* acc, float lr, float epsilon,
                    float weight_decay) {
  for_each(n, Adagrad{p, g, acc, lr, epsilon, wd_factor(lr, weight_decay), weight_decay != 0.0f},
           "adagrad_update");
}

void adadelta_update(i64 n, float* p, const float* g, float* ag, float* ad, float lr,
                     double rho, float epsilon, float weight_decay) {
  for_each(n, Adadelta{p, g, ag, ad, lr, static_cast<float>(rho), static_cast<float>(1.0 - rho),
                       epsilon, wd_factor(lr, weight_decay), weight_decay != 0.0f},
           "adadelta_update");
}

double sum_squares(i64 n, const float* a) {
  if (n <= 0) return 0.0;
  const i64 chunks = (n + kSumChunk - 1) / kSumChunk;
  if (chunks > 0x7fffffffLL) throw CudaError("sum_squares: array too large");
  Scratch partial(static_cast<std::size_t>(chunks) * sizeof(double));
  sum_squares_kernel<<<static_cast<unsigned>(chunks), kThreads>>>(a, n, partial.as<double>());
  check_launch("sum_squares");
  return sum_to_host(partial.as<double>(), chunks);
}

void clip_by_value(i64 n, float* a, float clip) { for_each(n, Clip{a, -clip, clip}, "clip_by_value"); }

void scale_inplace(i64 n, float* a, float factor) { for_each(n, Scale{a, factor}, "scale"); }

}  // namespace cuda
}  // namespace fastnn
