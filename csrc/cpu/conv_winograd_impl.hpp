// Per-ISA body of the Winograd convolution (included by conv_winograd.cpp,
// conv_winograd_avx2.cpp and conv_winograd_avx512.cpp, each compiled for its
// ISA so the channel loops of the transforms vectorize at that width).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "fastnn/gemm.hpp"
#include "winograd_transforms.hpp"

// The tile loops are unrolled fully so the compile-time zero entries and mirror pairs
// of the transforms drop out. Sanitizer builds (FASTNN_SANITIZE) compile this code at
// -O1 without forced unrolling: the same logic, without an instrumented compile of
// minutes per ISA (185 s at -O3 against 6 s).
#ifndef FASTNN_UNROLL
#define FASTNN_PRAGMA(x) _Pragma(#x)
#ifdef FASTNN_SANITIZE
#pragma GCC optimize("O1")
#define FASTNN_UNROLL(n)
#else
#define FASTNN_UNROLL(n) FASTNN_PRAGMA(GCC unroll n)
#endif
#endif

namespace fastnn {
namespace FASTNN_WINOGRAD_NS {

constexpr int kLanes = 16;
constexpr i64 kTileBlock = 48;  // most tiles per cache block
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

// The three transforms as matrices y = Mat x with compile-time entries Mat::v(a, i):
// BT (A x A) and G (A x R) by rows, and AT^T (A x M: row a = interpolation point a)
// for the output side.
template <int M, int R>
struct BTMat {
  static constexpr int rows = WinoConst<M, R>::A, cols = WinoConst<M, R>::A;
  static constexpr float v(int a, int i) { return WinoConst<M, R>::T.BT[a][i]; }
};
template <int M, int R>
struct GMat {
  static constexpr int rows = WinoConst<M, R>::A, cols = R;
  static constexpr float v(int a, int i) { return WinoConst<M, R>::T.G[a][i]; }
};
template <int M, int R>
struct ATtMat {
  static constexpr int rows = WinoConst<M, R>::A, cols = M;
  static constexpr float v(int a, int i) { return WinoConst<M, R>::T.AT[i][a]; }
};

// Mirror pairs among a matrix's rows: row b is row a with its odd-column entries
// negated, which is what the points p and -p give AT and G, and BT when the whole
// point set is symmetric (through the Lagrange basis: L_{-p}(x) = L_p(-x); not for
// alpha = 6's {0, +-1, 1/2, -2}). Such a pair costs one even and one odd
// partial sum and an add and a subtract, instead of two full rows.
struct MirrorPairs {
  int partner[kMaxAlpha];  // b > a for the first row of a pair, else -1
  bool second[kMaxAlpha];  // row b of a pair (computed with its partner)
};

template <class Mat>
constexpr MirrorPairs mirror_pairs() {
  MirrorPairs t{};
  for (int a = 0; a < Mat::rows; ++a) {
    t.partner[a] = -1;
    t.second[a] = false;
  }
  for (int a = 0; a < Mat::rows; ++a) {
    if (t.second[a]) continue;
    for (int b = a + 1; b < Mat::rows; ++b) {
      if (t.second[b]) continue;
      bool mirror = true, odd = false;
      for (int i = 0; i < Mat::cols; ++i) {
        const float va = Mat::v(a, i);
        if (Mat::v(b, i) != ((i & 1) ? -va : va)) mirror = false;
        if ((i & 1) && va != 0.0f) odd = true;
      }
      if (mirror && odd) {
        t.partner[a] = b;
        t.second[b] = true;
        break;
      }
    }
  }
  return t;
}

// The points are ordered 0, p1, -p1, p2, -p2, ..., infinity: the pairs are found.
template <class Mat>
constexpr bool pairs_are(int a, int b) {
  return mirror_pairs<Mat>().partner[a] == b && mirror_pairs<Mat>().second[b];
}
static_assert(pairs_are<BTMat<4, 5>>(1, 2) && pairs_are<BTMat<4, 5>>(3, 4) && pairs_are<BTMat<4, 5>>(5, 6),
              "BT of F(4x4, 5x5): three mirror pairs");
static_assert(pairs_are<ATtMat<4, 5>>(1, 2) && pairs_are<ATtMat<4, 5>>(3, 4) && pairs_are<ATtMat<4, 5>>(5, 6),
              "AT of F(4x4, 5x5): three mirror pairs");
static_assert(pairs_are<GMat<5, 4>>(1, 2) && pairs_are<GMat<5, 4>>(3, 4) && pairs_are<GMat<5, 4>>(5, 6),
              "G of F(5x5, 4x4): three mirror pairs");
static_assert(pairs_are<ATtMat<4, 3>>(1, 2) && pairs_are<GMat<3, 4>>(1, 2) && pairs_are<BTMat<2, 3>>(1, 2),
              "alpha = 4, 6: the +-1 pair (BT only where the whole point set is symmetric)");

// y[a] = sum_i Mat(a, i) x[i] (zero entries skipped at compile time).
template <class Mat, typename VT>
inline void mat_vec(const VT* x, VT* y) {
  constexpr MirrorPairs P = mirror_pairs<Mat>();
FASTNN_UNROLL(8)
  for (int a = 0; a < Mat::rows; ++a) {
    if (P.second[a]) continue;
    VT e{}, o{};
    bool he = false, ho = false;
FASTNN_UNROLL(8)
    for (int i = 0; i < Mat::cols; ++i) {
      const float c = Mat::v(a, i);
      if (c == 0.0f) continue;
      if (i & 1) {
        o = ho ? o + x[i] * c : x[i] * c;
        ho = true;
      } else {
        e = he ? e + x[i] * c : x[i] * c;
        he = true;
      }
    }
    if (P.partner[a] >= 0) {
      y[a] = he ? e + o : o;
      y[P.partner[a]] = he ? e - o : -o;
    } else {
      y[a] = he ? (ho ? e + o : e) : o;
    }
  }
}

// y[i] = sum_a MatT(a, i) m[a]: the transpose product, with the mirror rows of MatT
// (columns of AT) folded first: s = m[a] + m[b] serves the even outputs, d = m[a] -
// m[b] the odd ones.
template <class MatT, typename VT>
inline void mat_t_vec(const VT* m, VT* y) {
  constexpr MirrorPairs P = mirror_pairs<MatT>();
  VT s[MatT::rows], d[MatT::rows];
FASTNN_UNROLL(8)
  for (int a = 0; a < MatT::rows; ++a)
    if (P.partner[a] >= 0) {
      s[a] = m[a] + m[P.partner[a]];
      d[a] = m[a] - m[P.partner[a]];
    }
FASTNN_UNROLL(5)
  for (int i = 0; i < MatT::cols; ++i) {
    VT acc{};
    bool have = false;
FASTNN_UNROLL(8)
    for (int a = 0; a < MatT::rows; ++a) {
      if (P.second[a]) continue;
      const float c = MatT::v(a, i);
      if (c == 0.0f) continue;
      const VT src = P.partner[a] >= 0 ? ((i & 1) ? d[a] : s[a]) : m[a];
      acc = have ? acc + src * c : src * c;
      have = true;
    }
    y[i] = acc;
  }
}

// out[(a*A + b)*ostride + c0 ...] = (Mat s Mat^T)[a][b] for the n x n tile whose
// element s[i][j] is the vector at src[i*n + j] + c0 (A = Mat::rows, n = Mat::cols).
// VT is vec16 (16 channels) or float (one channel). Column pass then row pass, so at
// most 2A vectors are live at a time.
template <class Mat, typename VT>
inline void two_sided_transform(const float* const* src, i64 c0, float* out, i64 ostride) {
  constexpr int A = Mat::rows, n = Mat::cols;
  VT t[A][n];
FASTNN_UNROLL(8)
  for (int j = 0; j < n; ++j) {
    VT s[n], col[A];
FASTNN_UNROLL(8)
    for (int i = 0; i < n; ++i) s[i] = load_v<VT>(src[i * n + j] + c0);
    mat_vec<Mat, VT>(s, col);
FASTNN_UNROLL(8)
    for (int a = 0; a < A; ++a) t[a][j] = col[a];
  }
FASTNN_UNROLL(8)
  for (int a = 0; a < A; ++a) {
    VT row[A];
    mat_vec<Mat, VT>(t[a], row);
FASTNN_UNROLL(8)
    for (int bb = 0; bb < A; ++bb) store_v<VT>(out + (a * A + bb) * ostride + c0, row[bb]);
  }
}

// The input transform: V = BT d BT^T of an A x A tile of x.
template <int M, int R, typename VT>
inline void input_transform(const float* const* src, i64 c0, float* V, i64 vstride) {
  two_sided_transform<BTMat<M, R>, VT>(src, c0, V, vstride);
}

// out[oi][oj] = (AT M AT^T)[oi][oj] for channels k0 ...; M[a][b] at m + (a*A + b)*mstride + k0.
template <int M, int R, typename VT>
inline void output_transform(const float* m, i64 mstride, i64 k0, VT (&out)[M][M]) {
  constexpr int A = WinoConst<M, R>::A;
  VT t[M][A];
FASTNN_UNROLL(8)
  for (int bb = 0; bb < A; ++bb) {
    VT col[A], y[M];
FASTNN_UNROLL(8)
    for (int a = 0; a < A; ++a) col[a] = load_v<VT>(m + (a * A + bb) * mstride + k0);
    mat_t_vec<ATtMat<M, R>, VT>(col, y);
FASTNN_UNROLL(5)
    for (int oi = 0; oi < M; ++oi) t[oi][bb] = y[oi];
  }
FASTNN_UNROLL(5)
  for (int oi = 0; oi < M; ++oi) mat_t_vec<ATtMat<M, R>, VT>(t[oi], out[oi]);
}

template <int M, int R>
inline void input_transform_all(const float* const* src, i64 C, float* V, i64 vstride) {
  i64 c0 = 0;
  for (; c0 + kLanes <= C; c0 += kLanes) input_transform<M, R, vec16>(src, c0, V, vstride);
  for (; c0 < C; ++c0) input_transform<M, R, float>(src, c0, V, vstride);
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
  int m = 0;
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
    if (c.w == w && c.C == C && c.K == K && c.m == T.m) e = &c;
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
  e->m = T.m;
  e->last_use = ++clock;
  e->bytes.resize(wn);
  std::memcpy(e->bytes.data(), w, wn * sizeof(float));
  e->U.resize(un);
  transform_weights<A>(T, C, K, r, w, e->U.data());
  return e->U.data();
}

// V[xi][c] (xi = a*A + b, at V + xi*vstride) for one tile: the A x A patch of image n
// of x whose top-left pixel is (h0, w0), zero outside the image, through BT.
// src: scratch for A*A row pointers.
template <int M, int R>
inline void transform_x_tile(const float* x, i64 n, i64 h0, i64 w0, i64 H, i64 W, i64 C, const float* zeros,
                             const float** src, float* V, i64 vstride) {
  constexpr int A = WinoConst<M, R>::A;
  for (int a = 0; a < A; ++a)
    for (int bb = 0; bb < A; ++bb) {
      const i64 h = h0 + a, ww = w0 + bb;
      src[a * A + bb] = (h >= 0 && h < H && ww >= 0 && ww < W) ? x + ((n * H + h) * W + ww) * C : zeros;
    }
  input_transform_all<M, R>(src, C, V, vstride);
}

// Tiles per cache block: as many as keep one block's transformed inputs and
// products (alpha^2 x tiles x (C + K) floats) within about 512 KiB of the L2, a
// multiple of 12 (every micro-kernel's MR divides it), between 12 and 48. A function
// of the shape only; the results do not depend on it (each tile's products are the
// same dot products whatever block it sits in).
inline i64 winograd_tile_block(int A, i64 C, i64 K) {
  const i64 per_tile = static_cast<i64>(A) * A * (C + K) * static_cast<i64>(sizeof(float));
  const i64 fit = (i64(512) << 10) / std::max<i64>(per_tile, 1);
  return std::min<i64>(kTileBlock, std::max<i64>(12, fit / 12 * 12));
}

template <int M, int R>
inline void winograd_tiles(const WinogradTransforms& T, i64 N, i64 H, i64 W, i64 C, i64 K, i64 pt, i64 pl, i64 P,
                           i64 Q, const float* x, const float* w, const float* b, float* y, bool relu) {
  if (N * P * Q == 0) return;
  constexpr int A = WinoConst<M, R>::A;
  constexpr int A2 = A * A;
  const MicroKernels& uk = micro_kernels();
  const int MR = uk.MR, NR = uk.NR;
  const i64 th = ceil_div(P, M), tw = ceil_div(Q, M);
  const i64 ntiles = N * th * tw;
  const i64 tbmax = winograd_tile_block(A, C, K);
  const i64 nblocks = ceil_div(ntiles, tbmax);
  const i64 npanels = ceil_div(K, NR);

  // U[xi][c][k] = (G g G^T)[xi] for each (c, k): per input channel, vectors over k.
  float* U = transformed_weights<A>(T, C, K, R, w);
  Buffer<float> zeros(static_cast<std::size_t>(std::max(C, K)));
  zeros.zero();
  const int flags_gemm = 0;
  const int nthreads = (2.0 * N * P * Q * R * R * C * K < 2.0e5) ? 1 : num_threads();

#pragma omp parallel num_threads(nthreads) if (nthreads > 1) FASTNN_FP_TEAM
  {
    // Per-thread scratch kept across calls (grow-only), so small calls do not
    // page-fault fresh buffers.
    static thread_local Buffer<float> V, Mp;
    V.resize(static_cast<std::size_t>(A2 * tbmax * C));
    Mp.resize(static_cast<std::size_t>(A2 * tbmax * K));
    Buffer<const float*> src(static_cast<std::size_t>(A2));
    Buffer<const float*> aptr(static_cast<std::size_t>(MR));
    Buffer<const float*> bseg(static_cast<std::size_t>(1));
#pragma omp for schedule(static)
    for (i64 blk = 0; blk < nblocks; ++blk) {
      const i64 t0 = blk * tbmax;
      const i64 tb = std::min<i64>(tbmax, ntiles - t0);
      // 1. input transform: V[xi][t][c] = (BT d BT^T)[xi]
      for (i64 t = 0; t < tb; ++t) {
        const i64 tile = t0 + t;
        const i64 n = tile / (th * tw), ti = (tile / tw) % th, tj = tile % tw;
        transform_x_tile<M, R>(x, n, M * ti - pt, M * tj - pl, H, W, C, zeros.data(), src.data(),
                               V.data() + t * C, tbmax * C);
      }
      // 2. alpha^2 GEMMs: Mp[xi] (tb x K) = V[xi] (tb x C) . U[xi] (C x K)
      for (int xi = 0; xi < A2; ++xi) {
        const float* Vx = V.data() + static_cast<i64>(xi) * tbmax * C;
        const float* Ux = U + static_cast<i64>(xi) * C * K;
        float* Mx = Mp.data() + static_cast<i64>(xi) * tbmax * K;
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
      // 3. output transform: Y (M x M) = AT Mp AT^T, then bias and ReLU
      for (i64 t = 0; t < tb; ++t) {
        const i64 tile = t0 + t;
        const i64 n = tile / (th * tw), ti = (tile / tw) % th, tj = tile % tw;
        const float* mt = Mp.data() + t * K;
        for (i64 k0 = 0; k0 < K; k0 += kLanes) {
          const int L = static_cast<int>(std::min<i64>(kLanes, K - k0));
          float out[M][M][kLanes];
          if (L == kLanes) {
            vec16 o[M][M];
            output_transform<M, R, vec16>(mt, tbmax * K, k0, o);
            for (int u = 0; u < M * M; ++u) store_v<vec16>(out[u / M][u % M], o[u / M][u % M]);
          } else {
            for (int l = 0; l < L; ++l) {
              float o1[M][M];
              output_transform<M, R, float>(mt, tbmax * K, k0 + l, o1);
              for (int u = 0; u < M * M; ++u) out[u / M][u % M][l] = o1[u / M][u % M];
            }
          }
          for (int oi = 0; oi < M; ++oi) {
            const i64 p = M * ti + oi;
            if (p >= P) continue;
            for (int oj = 0; oj < M; ++oj) {
              const i64 q = M * tj + oj;
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

// The dy-tile transform of the weight gradient, which runs F(M x M, R x R) with M = the
// kernel size and R = the dy tile: D = G g G^T of an R x R tile of dy.
template <int M, int R, typename VT>
inline void filter_transform(const float* const* src, i64 k0, float* D, i64 dstride) {
  two_sided_transform<GMat<M, R>, VT>(src, k0, D, dstride);
}

// dw (RK x RK x C x K) = sum over n, p, q of x(n, p - pt + i, q - pl + j, c) . dy(n, p, q, k)
// as Winograd F(RK x RK, MT x MT): each MT x MT tile of dy is the "filter" of a
// correlation with the (MT + RK - 1)^2 tile of x under it, whose RK x RK output is
// the tile's share of dw. Per transformed position xi the shares of all tiles are
// one GEMM over tiles, Mw[xi] (C x K) += V[xi]^T (C x tiles) . D[xi] (tiles x K);
// dw = AT Mw AT^T at the end. The tiles are cut into chunks fixed by the shape,
// each summed by one thread into its own partial Mw, and the partials are added in
// chunk order: the same bits for any thread count.
template <int RK, int MT>
void winograd_weight_grad(i64 N, i64 H, i64 W, i64 C, i64 K, i64 pt, i64 pl, i64 P, i64 Q, const float* x,
                          const float* dy, float* dw) {
  constexpr int A = WinoConst<RK, MT>::A;
  constexpr int A2 = A * A;
  const i64 wsize = static_cast<i64>(RK) * RK * C * K;
  const i64 msize = static_cast<i64>(A2) * C * K;
  if (N * P * Q == 0) {
    for (i64 i = 0; i < wsize; ++i) dw[i] = 0.0f;
    return;
  }
  const MicroKernels& uk = micro_kernels();
  const int MR = uk.MR, NR = uk.NR;
  const i64 th = ceil_div(P, MT), tw = ceil_div(Q, MT);
  const i64 ntiles = N * th * tw;
  const i64 tbmax = winograd_tile_block(A, C, K);
  // At most 8 chunks of whole blocks (a rule of the shape only).
  const i64 nblocks_all = ceil_div(ntiles, tbmax);
  const i64 blocks_per_chunk = std::max<i64>(ceil_div(nblocks_all, 8), 2);
  const i64 nchunks = ceil_div(nblocks_all, blocks_per_chunk);
  static thread_local Buffer<float> partial_tls;  // grow-only, on the calling thread
  partial_tls.resize(static_cast<std::size_t>(nchunks * msize));
  float* partial = partial_tls.data();
  Buffer<float> zeros(static_cast<std::size_t>(std::max(C, K)));
  zeros.zero();
  const i64 cblocks = ceil_div(C, MR), kpanels = ceil_div(K, NR);
  const int nthreads = (2.0 * N * P * Q * RK * RK * C * K < 2.0e5 || nchunks == 1) ? 1 : num_threads();

#pragma omp parallel num_threads(nthreads) if (nthreads > 1) FASTNN_FP_TEAM
  {
    static thread_local Buffer<float> V, D;
    V.resize(static_cast<std::size_t>(A2 * tbmax * C));
    D.resize(static_cast<std::size_t>(A2 * tbmax * K));
    Buffer<const float*> src(static_cast<std::size_t>(A2));
    Buffer<const float*> aseg(static_cast<std::size_t>(1)), bseg(static_cast<std::size_t>(1));
    // Any schedule gives the same bits: each chunk has its own partial.
#pragma omp for schedule(dynamic, 1)
    for (i64 ch = 0; ch < nchunks; ++ch) {
      float* Mw = partial + ch * msize;
      const i64 b_end = std::min<i64>(nblocks_all, (ch + 1) * blocks_per_chunk);
      for (i64 blk = ch * blocks_per_chunk; blk < b_end; ++blk) {
        const i64 t0 = blk * tbmax;
        const i64 tb = std::min<i64>(tbmax, ntiles - t0);
        for (i64 t = 0; t < tb; ++t) {
          const i64 tile = t0 + t;
          const i64 n = tile / (th * tw), ti = (tile / tw) % th, tj = tile % tw;
          // V: the x tile under dy's tile, through BT
          transform_x_tile<RK, MT>(x, n, MT * ti - pt, MT * tj - pl, H, W, C, zeros.data(), src.data(),
                                   V.data() + t * C, tbmax * C);
          // D: dy's tile through G
          for (int u = 0; u < MT; ++u)
            for (int v = 0; v < MT; ++v) {
              const i64 p = MT * ti + u, q = MT * tj + v;
              src[u * MT + v] = (p < P && q < Q) ? dy + ((n * P + p) * Q + q) * K : zeros.data();
            }
          i64 k0 = 0;
          for (; k0 + kLanes <= K; k0 += kLanes)
            filter_transform<RK, MT, vec16>(src.data(), k0, D.data() + t * K, tbmax * K);
          for (; k0 < K; ++k0) filter_transform<RK, MT, float>(src.data(), k0, D.data() + t * K, tbmax * K);
        }
        const int flags = blk == ch * blocks_per_chunk ? 0 : kAccumulate;
        for (int xi = 0; xi < A2; ++xi) {
          aseg[0] = V.data() + static_cast<i64>(xi) * tbmax * C;
          const float* Dx = D.data() + static_cast<i64>(xi) * tbmax * K;
          float* Mx = Mw + static_cast<i64>(xi) * C * K;
          for (i64 cb = 0; cb < cblocks; ++cb) {
            const i64 c0 = cb * MR;
            const int mr = static_cast<int>(std::min<i64>(MR, C - c0));
            for (i64 j = 0; j < kpanels; ++j) {
              const i64 kk = j * NR;
              const int nr = static_cast<int>(std::min<i64>(NR, K - kk));
              bseg[0] = Dx + kk;
              uk.colseg(1, tb, aseg.data(), C, c0, bseg.data(), K, Mx + c0 * K + kk, K, mr, nr, flags);
            }
          }
        }
      }
    }
    // Sum the partials in chunk order (into the first), then dw = AT Mw AT^T.
#pragma omp for schedule(static)
    for (i64 c = 0; c < C; ++c) {
      for (int xi = 0; xi < A2; ++xi) {
        float* m0 = partial + static_cast<i64>(xi) * C * K + c * K;
        for (i64 ch = 1; ch < nchunks; ++ch) {
          const float* mc = m0 + ch * msize;
          for (i64 k = 0; k < K; ++k) m0[k] += mc[k];
        }
      }
      const float* mrow = partial + c * K;
      for (i64 k0 = 0; k0 < K; k0 += kLanes) {
        const int L = static_cast<int>(std::min<i64>(kLanes, K - k0));
        if (L == kLanes) {
          vec16 o[RK][RK];
          output_transform<RK, MT, vec16>(mrow, C * K, k0, o);
          for (int i = 0; i < RK; ++i)
            for (int j = 0; j < RK; ++j) store_v<vec16>(dw + ((i * RK + j) * C + c) * K + k0, o[i][j]);
        } else {
          for (int l = 0; l < L; ++l) {
            float o1[RK][RK];
            output_transform<RK, MT, float>(mrow, C * K, k0 + l, o1);
            for (int i = 0; i < RK; ++i)
              for (int j = 0; j < RK; ++j) dw[((i * RK + j) * C + c) * K + k0 + l] = o1[i][j];
          }
        }
      }
    }
  }
}

inline void winograd_backward_weight_impl(int m, int r, i64 N, i64 H, i64 W, i64 C, i64 K, i64 pt, i64 pl, i64 P,
                                          i64 Q, const float* x, const float* dy, float* dw) {
  if (m == 2 && r == 3) winograd_weight_grad<3, 2>(N, H, W, C, K, pt, pl, P, Q, x, dy, dw);
  else if (m == 2) winograd_weight_grad<5, 2>(N, H, W, C, K, pt, pl, P, Q, x, dy, dw);
  else if (r == 3) winograd_weight_grad<3, 4>(N, H, W, C, K, pt, pl, P, Q, x, dy, dw);
  else winograd_weight_grad<5, 4>(N, H, W, C, K, pt, pl, P, Q, x, dy, dw);
}

inline void winograd_conv2d_impl(const WinogradTransforms& T, i64 N, i64 H, i64 W, i64 C, i64 K, int r, i64 pt,
                                 i64 pl, i64 P, i64 Q, const float* x, const float* w, const float* b, float* y,
                                 bool relu) {
  if (T.m == 2 && r == 3) winograd_tiles<2, 3>(T, N, H, W, C, K, pt, pl, P, Q, x, w, b, y, relu);
  else if (T.m == 2) winograd_tiles<2, 5>(T, N, H, W, C, K, pt, pl, P, Q, x, w, b, y, relu);
  else if (r == 3) winograd_tiles<4, 3>(T, N, H, W, C, K, pt, pl, P, Q, x, w, b, y, relu);
  else winograd_tiles<4, 5>(T, N, H, W, C, K, pt, pl, P, Q, x, w, b, y, relu);
}

}  // namespace FASTNN_WINOGRAD_NS
}  // namespace fastnn
