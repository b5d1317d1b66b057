// Per-ISA body of the Winograd convolution (included by conv_winograd.cpp,
// conv_winograd_avx2.cpp and conv_winograd_avx512.cpp, each compiled for its
// ISA so the channel loops of the transforms vectorize at that width).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "fastnn/gemm.hpp"
#include "winograd_transforms.hpp"

namespace fastnn {
namespace FASTNN_WINOGRAD_NS {

// Compile-time copies of the transforms (the same numbers winograd_transforms()
// computes), so unrolled loops drop zero terms and multiplications by one.
template <int A>
struct WinoConst;
template <>
struct WinoConst<4> {
  static constexpr float BT[4][4] = {{1, 0, -1, 0}, {0, 0.5f, 0.5f, 0}, {0, -0.5f, 0.5f, 0}, {0, -1, 0, 1}};
  static constexpr float AT[2][4] = {{1, 1, 1, 0}, {0, 1, -1, 1}};
};
template <>
struct WinoConst<6> {
  static constexpr float BT[6][6] = {
      {1.0f, -1.5f, -2.0f, 1.5f, 1.0f, 0.0f},
      {0.0f, -0.33333333333333335f, 0.16666666666666652f, 0.8333333333333335f, 0.3333333333333334f, 0.0f},
      {0.0f, -0.33333333333333304f, 0.8333333333333335f, -0.16666666666666696f, -0.3333333333333335f, 0.0f},
      {0.0f, 2.1333333333333337f, 1.0666666666666669f, -2.133333333333334f, -1.066666666666667f, 0.0f},
      {0.0f, 0.03333333333333338f, -0.06666666666666668f, -0.033333333333333326f, 0.06666666666666668f, 0.0f},
      {0.0f, 1.0f, -1.5f, -2.0f, 1.5f, 1.0f}};
  static constexpr float AT[2][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 0.5f, -2.0f, 1}};
};

constexpr int kLanes = 16;
// A vector of kLanes floats (GCC/Clang vector extension): lowered to one zmm,
// two ymm or four xmm registers by each ISA's compilation of this file.
typedef float vec16 __attribute__((vector_size(kLanes * sizeof(float))));

template <typename V>
inline V load_v(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}
template <typename V>
inline void store_v(float* p, V v) {
  std::memcpy(p, &v, sizeof(V));
}

// V[(a*A + b)*vstride + c0 ...] = (BT d BT^T)[a][b], where d[i][j] is the vector
// at src[i*A + j] + c0. V is vec16 (16 channels) or float (one channel).
template <int A, typename VT>
inline void input_transform(const float* const* src, i64 c0, float* V, i64 vstride) {
  using K = WinoConst<A>;
  VT d[A][A], t[A][A];
#pragma GCC unroll 36
  for (int i = 0; i < A * A; ++i) d[i / A][i % A] = load_v<VT>(src[i] + c0);
#pragma GCC unroll 6
  for (int a = 0; a < A; ++a)
#pragma GCC unroll 6
    for (int j = 0; j < A; ++j) {
      VT acc = d[0][j] * K::BT[a][0];
#pragma GCC unroll 6
      for (int i = 1; i < A; ++i)
        if (K::BT[a][i] != 0.0f) acc += d[i][j] * K::BT[a][i];
      t[a][j] = acc;
    }
#pragma GCC unroll 6
  for (int a = 0; a < A; ++a)
#pragma GCC unroll 6
    for (int bb = 0; bb < A; ++bb) {
      VT acc = t[a][0] * K::BT[bb][0];
#pragma GCC unroll 6
      for (int j = 1; j < A; ++j)
        if (K::BT[bb][j] != 0.0f) acc += t[a][j] * K::BT[bb][j];
      store_v<VT>(V + (a * A + bb) * vstride + c0, acc);
    }
}

// out[oi][oj] = (AT M AT^T)[oi][oj] for channels k0 ...; M[a][b] at m + (a*A + b)*mstride + k0.
template <int A, typename VT>
inline void output_transform(const float* m, i64 mstride, i64 k0, VT (&out)[2][2]) {
  using K = WinoConst<A>;
  VT t[2][A];
#pragma GCC unroll 2
  for (int oi = 0; oi < 2; ++oi)
#pragma GCC unroll 6
    for (int bb = 0; bb < A; ++bb) {
      VT acc = load_v<VT>(m + bb * mstride + k0) * K::AT[oi][0];
#pragma GCC unroll 6
      for (int a = 1; a < A; ++a)
        if (K::AT[oi][a] != 0.0f) acc += load_v<VT>(m + (a * A + bb) * mstride + k0) * K::AT[oi][a];
      t[oi][bb] = acc;
    }
#pragma GCC unroll 2
  for (int oi = 0; oi < 2; ++oi)
#pragma GCC unroll 2
    for (int oj = 0; oj < 2; ++oj) {
      VT acc = t[oi][0] * K::AT[oj][0];
#pragma GCC unroll 6
      for (int bb = 1; bb < A; ++bb)
        if (K::AT[oj][bb] != 0.0f) acc += t[oi][bb] * K::AT[oj][bb];
      out[oi][oj] = acc;
    }
}

template <int A>
inline void input_transform_all(const float* const* src, i64 C, float* V, i64 vstride) {
  i64 c0 = 0;
  for (; c0 + kLanes <= C; c0 += kLanes) input_transform<A, vec16>(src, c0, V, vstride);
  for (; c0 < C; ++c0) input_transform<A, float>(src, c0, V, vstride);
}

// U[xi][c][k] = (G g G^T)[xi] of the weights w (r x r x C x K) into U.
template <int A>
void transform_weights(const WinogradTransforms& T, i64 C, i64 K, int r, const float* w, float* U) {
  constexpr int A2 = A * A;
  const int uthreads = C * K * A2 < (1 << 14) ? 1 : num_threads();
#pragma omp parallel num_threads(uthreads) if (uthreads > 1) FASTNN_FP_TEAM
  {
    static thread_local Buffer<float> tmp_tls;
    tmp_tls.resize(static_cast<std::size_t>(A * 5 * K));
    float* tmp = tmp_tls.data();
#pragma omp for schedule(static)
    for (i64 c = 0; c < C; ++c) {
      for (int a = 0; a < A; ++a)
        for (int j = 0; j < r; ++j) {
          float* o = tmp + (a * 5 + j) * K;
          for (i64 k = 0; k < K; ++k) o[k] = 0.0f;
          for (int i = 0; i < r; ++i) {
            const float g = T.G[a][i];
            if (g == 0.0f) continue;
            const float* src = w + ((i * r + j) * C + c) * K;
            for (i64 k = 0; k < K; ++k) o[k] += g * src[k];
          }
        }
      for (int a = 0; a < A; ++a)
        for (int bb = 0; bb < A; ++bb) {
          float* o = U + (static_cast<i64>(a * A + bb) * C + c) * K;
          for (i64 k = 0; k < K; ++k) o[k] = 0.0f;
          for (int j = 0; j < r; ++j) {
            const float g = T.G[bb][j];
            if (g == 0.0f) continue;
            const float* src = tmp + (a * 5 + j) * K;
            for (i64 k = 0; k < K; ++k) o[k] += src[k] * g;
          }
        }
    }
  }
}

// Transformed weights for w, from a small per-thread cache: the last few weight
// tensors this thread convolved with, each kept with a copy of its bytes. A hit
// needs the same address, shape and bytes, so repeated inference with unchanged
// weights skips the transform and a changed tensor is transformed anew; the result
// is the same either way. Tensors above kCachedFloats are not cached.
struct TransformedWeights {
  const float* w = nullptr;
  i64 C = 0, K = 0;
  std::uint64_t last_use = 0;
  Buffer<float> bytes, U;
};

template <int A>
float* transformed_weights(const WinogradTransforms& T, i64 C, i64 K, int r, const float* w) {
  constexpr int A2 = A * A;
  constexpr int kEntries = 4;
  constexpr i64 kCachedFloats = i64(1) << 18;  // 1 MiB of transformed weights
  const std::size_t un = static_cast<std::size_t>(A2 * C * K + K);
  if (static_cast<i64>(un) > kCachedFloats) {
    static thread_local Buffer<float> U_tls;
    U_tls.resize(un);
    transform_weights<A>(T, C, K, r, w, U_tls.data());
    return U_tls.data();
  }
  static thread_local TransformedWeights cache[kEntries];
  static thread_local std::uint64_t clock = 0;
  const std::size_t wn = static_cast<std::size_t>(r * r * C * K);
  TransformedWeights* e = nullptr;
  for (TransformedWeights& c : cache)
    if (c.w == w && c.C == C && c.K == K) e = &c;
  if (e && std::memcmp(e->bytes.data(), w, wn * sizeof(float)) == 0) {
    e->last_use = ++clock;
    return e->U.data();
  }
  if (!e) {
    e = &cache[0];
    for (TransformedWeights& c : cache)
      if (c.last_use < e->last_use) e = &c;
  }
  e->w = w;
  e->C = C;
  e->K = K;
  e->last_use = ++clock;
  e->bytes.resize(wn);
  std::memcpy(e->bytes.data(), w, wn * sizeof(float));
  e->U.resize(un);
  transform_weights<A>(T, C, K, r, w, e->U.data());
  return e->U.data();
}

template <int A>
inline void winograd_tiles(const WinogradTransforms& T, i64 N, i64 H, i64 W, i64 C, i64 K, int r, i64 pt, i64 pl, i64 P, i64 Q,
                     const float* x, const float* w, const float* b, float* y, bool relu) {
  if (N * P * Q == 0) return;
  constexpr int A2 = A * A;
  const MicroKernels& uk = micro_kernels();
  const int MR = uk.MR, NR = uk.NR;
  const i64 th = ceil_div(P, 2), tw = ceil_div(Q, 2);
  const i64 ntiles = N * th * tw;
  const i64 nblocks = ceil_div(ntiles, kTileBlock);
  const i64 npanels = ceil_div(K, NR);

  // U[xi][c][k] = (G g G^T)[xi] for each (c, k): per input channel, vectors over k.
  float* U = transformed_weights<A>(T, C, K, r, w);
  Buffer<float> zeros(static_cast<std::size_t>(std::max(C, K)));
  zeros.zero();
  const int flags_gemm = 0;
  const int nthreads = (2.0 * ntiles * 4 * r * r * C * K < 2.0e5) ? 1 : num_threads();

#pragma omp parallel num_threads(nthreads) if (nthreads > 1) FASTNN_FP_TEAM
  {
    // Per-thread scratch kept across calls (grow-only), so small calls do not
    // page-fault fresh buffers.
    static thread_local Buffer<float> V, M;
    V.resize(static_cast<std::size_t>(A2 * kTileBlock * C));
    M.resize(static_cast<std::size_t>(A2 * kTileBlock * K));
    Buffer<const float*> src(static_cast<std::size_t>(A2));
    Buffer<const float*> aptr(static_cast<std::size_t>(MR));
    Buffer<const float*> bseg(static_cast<std::size_t>(1));
#pragma omp for schedule(static)
    for (i64 blk = 0; blk < nblocks; ++blk) {
      const i64 t0 = blk * kTileBlock;
      const i64 tb = std::min<i64>(kTileBlock, ntiles - t0);
      // 1. input transform: V[xi][t][c] = (BT d BT^T)[xi]
      for (i64 t = 0; t < tb; ++t) {
        const i64 tile = t0 + t;
        const i64 n = tile / (th * tw), ti = (tile / tw) % th, tj = tile % tw;
        const i64 h0 = 2 * ti - pt, w0 = 2 * tj - pl;
        for (int a = 0; a < A; ++a)
          for (int bb = 0; bb < A; ++bb) {
            const i64 h = h0 + a, ww = w0 + bb;
            src[a * A + bb] = (h >= 0 && h < H && ww >= 0 && ww < W) ? x + ((n * H + h) * W + ww) * C
                                                                    : zeros.data();
          }
        input_transform_all<A>(src.data(), C, V.data() + t * C, kTileBlock * C);
      }
      // 2. alpha^2 GEMMs: M[xi] (tb x K) = V[xi] (tb x C) . U[xi] (C x K)
      for (int xi = 0; xi < A2; ++xi) {
        const float* Vx = V.data() + static_cast<i64>(xi) * kTileBlock * C;
        const float* Ux = U + static_cast<i64>(xi) * C * K;
        float* Mx = M.data() + static_cast<i64>(xi) * kTileBlock * K;
        for (i64 i0 = 0; i0 < tb; i0 += MR) {
          const int mr = static_cast<int>(std::min<i64>(MR, tb - i0));
          for (int i = 0; i < MR; ++i) aptr[i] = i < mr ? Vx + (i0 + i) * C : zeros.data();
          for (i64 j = 0; j < npanels; ++j) {
            const int nr = static_cast<int>(std::min<i64>(NR, K - j * NR));
            bseg[0] = Ux + j * NR;
            uk.rowptr(1, C, aptr.data(), bseg.data(), K, Mx + i0 * K + j * NR, K, mr, nr, flags_gemm,
                      nullptr);
          }
        }
      }
      // 3. output transform: Y (2x2) = AT M AT^T, then bias and ReLU
      for (i64 t = 0; t < tb; ++t) {
        const i64 tile = t0 + t;
        const i64 n = tile / (th * tw), ti = (tile / tw) % th, tj = tile % tw;
        const float* mt = M.data() + t * K;
        for (i64 k0 = 0; k0 < K; k0 += kLanes) {
          const int L = static_cast<int>(std::min<i64>(kLanes, K - k0));
          float out[2][2][kLanes];
          if (L == kLanes) {
            vec16 o[2][2];
            output_transform<A, vec16>(mt, kTileBlock * K, k0, o);
            for (int u = 0; u < 4; ++u) store_v<vec16>(out[u / 2][u % 2], o[u / 2][u % 2]);
          } else {
            for (int l = 0; l < L; ++l) {
              float o1[2][2];
              output_transform<A, float>(mt, kTileBlock * K, k0 + l, o1);
              for (int u = 0; u < 4; ++u) out[u / 2][u % 2][l] = o1[u / 2][u % 2];
            }
          }
          for (int oi = 0; oi < 2; ++oi) {
            const i64 p = 2 * ti + oi;
            if (p >= P) continue;
            for (int oj = 0; oj < 2; ++oj) {
              const i64 q = 2 * tj + oj;
              if (q >= Q) continue;
              float* o = y + ((n * P + p) * Q + q) * K + k0;
              const float* v = out[oi][oj];
              if (b) {
                for (int l = 0; l < L; ++l) o[l] = v[l] + b[k0 + l];
              } else {
                for (int l = 0; l < L; ++l) o[l] = v[l];
              }
              if (relu)
                for (int l = 0; l < L; ++l) o[l] = o[l] < 0.0f ? 0.0f : o[l];
            }
          }
        }
      }
    }
  }
}


inline void winograd_conv2d_impl(const WinogradTransforms& T, i64 N, i64 H, i64 W, i64 C, i64 K, int r, i64 pt,
                                 i64 pl, i64 P, i64 Q, const float* x, const float* w, const float* b, float* y,
                                 bool relu) {
  if (r == 3) winograd_tiles<4>(T, N, H, W, C, K, r, pt, pl, P, Q, x, w, b, y, relu);
  else winograd_tiles<6>(T, N, H, W, C, K, r, pt, pl, P, Q, x, w, b, y, relu);
}

}  // namespace FASTNN_WINOGRAD_NS
}  // namespace fastnn
