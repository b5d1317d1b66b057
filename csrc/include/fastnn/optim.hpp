// fastnn/optim.hpp -- fused, in-place optimizer updates (Keras 3 formulas) and
// gradient-clipping helpers over flat float32 arrays of n elements.
//
// Every update is one pass over memory, element-wise, parallel over fixed
// chunks of kOptChunk elements: results are bitwise identical for any thread
// count. Arithmetic is float32 in Keras 3's operation order; scalar
// hyperparameter expressions (1 - rho, Adam's alpha, ...) are formed in double
// and rounded once.
//
// Decoupled weight decay (Keras 3): when weight_decay != 0,
//   p = p - p * (weight_decay * lr)          before the update below.
//
// sgd:      momentum == 0: p = p - lr * g
//           else v = momentum * v - lr * g;  p = p + (nesterov ? momentum * v - lr * g : v)
// rmsprop:  ms = rho * ms + (1 - rho) * g^2;  p = p - lr * g / sqrt(ms + epsilon)
//           NOTE: Keras 3 (keras/src/optimizers/rmsprop.py) puts epsilon INSIDE the
//           square root; Keras 2 / torch put it outside (sqrt(ms) + epsilon).
// adam:     m = m + (g - m) * (1 - beta_1);  v = v + (g^2 - v) * (1 - beta_2)
//           alpha = lr * sqrt(1 - beta_2^step) / (1 - beta_1^step)   (step is 1-based)
//           p = p - m * alpha / (sqrt(v) + epsilon)
// adagrad:  acc = acc + g^2;  p = p - lr * g / sqrt(acc + epsilon)
// adadelta: ag = rho * ag + (1 - rho) * g^2
//           d = -sqrt(ad + epsilon) * g / sqrt(ag + epsilon)
//           ad = rho * ad + (1 - rho) * d^2;  p = p + lr * d
//
// Python bindings (ops.*_update) return None and update in place: param and
// state arrays must be writable C-contiguous float32 ndarrays; grad may be any
// real array (converted once). grad and states must have exactly param's shape
// (any rank; treated as flat). In-place arrays and grad must not overlap in
// memory (ValueError). Hyperparameters: lr, epsilon, weight_decay finite >= 0;
// SGD momentum in [0, 1] (Keras' own check); rho, beta_1, beta_2 in [0, 1);
// step an int >= 1. velocity may be None only when momentum == 0 (then ignored).
//
// Clipping: sum_squares is deterministic (fixed chunks of kOptChunk elements,
// each summed in double over kSumLanes interleaved lanes combined in lane order,
// chunks combined in chunk order). Keras clipnorm (per gradient) is
//   g *= clipnorm / max(sqrt(sum_squares(g)), clipnorm)
// and clipvalue is g = min(max(g, -clipvalue), clipvalue) (NaN stays NaN).
#pragma once
#include "fastnn/common.hpp"

namespace fastnn {

constexpr i64 kOptChunk = 16384;  // elements per parallel chunk
constexpr int kSumLanes = 8;      // interleaved double accumulators per chunk

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

// Sum of a[i]^2 in double (deterministic, see above).
double sum_squares(i64 n, const float* a);
// a = min(max(a, -clip), clip), in place.
void clip_by_value(i64 n, float* a, float clip);
// a *= factor, in place.
void scale_inplace(i64 n, float* a, float factor);

}  // namespace fastnn
