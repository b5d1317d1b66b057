// AVX2+FMA micro-kernels: 6 x 16 tile of C in 12 ymm accumulators.
// Compiled with -mavx2 -mfma; only called after run-time dispatch.
#include <immintrin.h>

#include "fastnn/gemm.hpp"

namespace fastnn {
namespace {

constexpr int MR = 6;
constexpr int NR = 16;

inline __m256i lane_mask(int n) {  // lanes < n set (n may be <= 0 or >= 8)
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
}

template <int ROWS>
inline void store_tile(__m256 (&acc)[MR][2], float* c, i64 ldc, int mr, int nr,
                       int flags, const float* bias) {
  const __m256i m0 = lane_mask(nr), m1 = lane_mask(nr - 8);
  __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps();
  if (flags & kBias) {
    b0 = _mm256_maskload_ps(bias, m0);
    b1 = _mm256_maskload_ps(bias + 8, m1);
  }
  const __m256 zero = _mm256_setzero_ps();
#pragma GCC unroll 6
  for (int i = 0; i < ROWS; ++i) {
    if (i >= mr) break;
    float* ci = c + i * ldc;
    __m256 v0 = acc[i][0], v1 = acc[i][1];
    if (flags & kAccumulate) {
      v0 = _mm256_add_ps(_mm256_maskload_ps(ci, m0), v0);
      v1 = _mm256_add_ps(_mm256_maskload_ps(ci + 8, m1), v1);
    }
    if (flags & kBias) {
      v0 = _mm256_add_ps(v0, b0);
      v1 = _mm256_add_ps(v1, b1);
    }
    if (flags & kRelu) {
      v0 = _mm256_max_ps(zero, v0);
      v1 = _mm256_max_ps(zero, v1);
    }
    _mm256_maskstore_ps(ci, m0, v0);
    _mm256_maskstore_ps(ci + 8, m1, v1);
  }
}

void packed_kernel(i64 kc, const float* ap, const float* bp, float* c, i64 ldc,
                   int mr, int nr, int flags, const float* bias) {
  __m256 acc[MR][2];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (i64 k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(bp);
    const __m256 b1 = _mm256_load_ps(bp + 8);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const __m256 a = _mm256_broadcast_ss(ap + i);
      acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
    }
    ap += MR;
    bp += NR;
  }
  store_tile<MR>(acc, c, ldc, mr, nr, flags, bias);
}

// Only the first ROWS rows are computed; each row's arithmetic is the same for
// every ROWS, so the bits do not depend on it.
template <int ROWS>
void rowptr_rows(int nseg, i64 seglen, const float* const* aptr, const float* const* bseg,
                 i64 ldb, float* c, i64 ldc, int nr, int flags, const float* bias) {
  __m256 acc[MR][2];
#pragma GCC unroll 6
  for (int i = 0; i < ROWS; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  const __m256i m0 = lane_mask(nr), m1 = lane_mask(nr - 8);
  for (int s = 0; s < nseg; ++s) {
    const float* const* ap = aptr + s * MR;
    const float* bp = bseg[s];
    for (i64 k = 0; k < seglen; ++k) {
      const __m256 b0 = _mm256_maskload_ps(bp, m0);
      const __m256 b1 = _mm256_maskload_ps(bp + 8, m1);
#pragma GCC unroll 6
      for (int i = 0; i < ROWS; ++i) {
        const __m256 a = _mm256_broadcast_ss(ap[i] + k);
        acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
        acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
      }
      bp += ldb;
    }
  }
  store_tile<ROWS>(acc, c, ldc, ROWS, nr, flags, bias);
}

void rowptr_kernel(int nseg, i64 seglen, const float* const* aptr,
                   const float* const* bseg, i64 ldb, float* c, i64 ldc, int mr,
                   int nr, int flags, const float* bias) {
  switch (mr) {
    case 6: rowptr_rows<6>(nseg, seglen, aptr, bseg, ldb, c, ldc, nr, flags, bias); break;
    case 5: rowptr_rows<5>(nseg, seglen, aptr, bseg, ldb, c, ldc, nr, flags, bias); break;
    case 4: rowptr_rows<4>(nseg, seglen, aptr, bseg, ldb, c, ldc, nr, flags, bias); break;
    case 3: rowptr_rows<3>(nseg, seglen, aptr, bseg, ldb, c, ldc, nr, flags, bias); break;
    case 2: rowptr_rows<2>(nseg, seglen, aptr, bseg, ldb, c, ldc, nr, flags, bias); break;
    default: rowptr_rows<1>(nseg, seglen, aptr, bseg, ldb, c, ldc, nr, flags, bias); break;
  }
}

template <int ROWS>
void colseg_rows(int nseg, i64 seglen, const float* const* aseg, i64 lda, i64 a_off,
                 const float* const* bseg, i64 ldb, float* c, i64 ldc, int nr, int flags) {
  __m256 acc[MR][2];
#pragma GCC unroll 6
  for (int i = 0; i < ROWS; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  const __m256i m0 = lane_mask(nr), m1 = lane_mask(nr - 8);
  for (int s = 0; s < nseg; ++s) {
    const float* a = aseg[s] + a_off;
    const float* b = bseg[s];
    for (i64 k = 0; k < seglen; ++k) {
      const __m256 b0 = _mm256_maskload_ps(b, m0);
      const __m256 b1 = _mm256_maskload_ps(b + 8, m1);
#pragma GCC unroll 6
      for (int i = 0; i < ROWS; ++i) {
        const __m256 av = _mm256_broadcast_ss(a + i);
        acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
        acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
      }
      a += lda;
      b += ldb;
    }
  }
  store_tile<ROWS>(acc, c, ldc, ROWS, nr, flags, nullptr);
}

void colseg_kernel(int nseg, i64 seglen, const float* const* aseg, i64 lda, i64 a_off,
                   const float* const* bseg, i64 ldb, float* c, i64 ldc, int mr, int nr,
                   int flags) {
  switch (mr) {
    case 6: colseg_rows<6>(nseg, seglen, aseg, lda, a_off, bseg, ldb, c, ldc, nr, flags); break;
    case 5: colseg_rows<5>(nseg, seglen, aseg, lda, a_off, bseg, ldb, c, ldc, nr, flags); break;
    case 4: colseg_rows<4>(nseg, seglen, aseg, lda, a_off, bseg, ldb, c, ldc, nr, flags); break;
    case 3: colseg_rows<3>(nseg, seglen, aseg, lda, a_off, bseg, ldb, c, ldc, nr, flags); break;
    case 2: colseg_rows<2>(nseg, seglen, aseg, lda, a_off, bseg, ldb, c, ldc, nr, flags); break;
    default: colseg_rows<1>(nseg, seglen, aseg, lda, a_off, bseg, ldb, c, ldc, nr, flags); break;
  }
}

}  // namespace

// Peak probe: 12 independent FMA chains; returns the flops executed.
double fma_loop_avx2(i64 iters) {
  __m256 acc[12];
  for (int j = 0; j < 12; ++j) acc[j] = _mm256_set1_ps(float(j));
  const __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
  for (i64 i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int j = 0; j < 12; ++j) acc[j] = _mm256_fmadd_ps(acc[j], b, c);
  }
  __m256 sum = acc[0];
  for (int j = 1; j < 12; ++j) sum = _mm256_add_ps(sum, acc[j]);
  alignas(32) float out[8];
  _mm256_store_ps(out, sum);
  volatile float sink = out[0];
  (void)sink;
  return double(iters) * 12 * 8 * 2;
}

const MicroKernels& micro_kernels_avx2() {
  static const MicroKernels k{MR, NR, packed_kernel, rowptr_kernel, colseg_kernel};
  return k;
}

}  // namespace fastnn
