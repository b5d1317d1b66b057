// AVX-512 micro-kernels: 12 x 32 tile of C in 24 zmm accumulators.
// Compiled with -mavx512f...; only called after run-time dispatch.
#include <immintrin.h>

#include "fastnn/gemm.hpp"

namespace fastnn {
namespace {

constexpr int MR = 12;
constexpr int NR = 32;

inline __mmask16 lane_mask(int n) {  // first n lanes (n may be <= 0 or >= 16)
  if (n >= 16) return 0xFFFF;
  if (n <= 0) return 0;
  return static_cast<__mmask16>((1u << n) - 1u);
}

// Write an accumulator tile to C with the epilogue.
template <int ROWS>
inline void store_tile(__m512 (&acc)[MR][2], float* c, i64 ldc, int mr, int nr,
                       int flags, const float* bias) {
  const __mmask16 m0 = lane_mask(nr), m1 = lane_mask(nr - 16);
  const bool full = nr == NR;  // masked loads/stores are slower on some cores
  __m512 b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps();
  if (flags & kBias) {
    b0 = _mm512_maskz_loadu_ps(m0, bias);
    b1 = _mm512_maskz_loadu_ps(m1, bias + 16);
  }
  const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 12
  for (int i = 0; i < ROWS; ++i) {
    if (i >= mr) break;
    float* ci = c + i * ldc;
    __m512 v0 = acc[i][0], v1 = acc[i][1];
    if (flags & kAccumulate) {
      v0 = _mm512_add_ps(full ? _mm512_loadu_ps(ci) : _mm512_maskz_loadu_ps(m0, ci), v0);
      v1 = _mm512_add_ps(full ? _mm512_loadu_ps(ci + 16) : _mm512_maskz_loadu_ps(m1, ci + 16), v1);
    }
    if (flags & kBias) {
      v0 = _mm512_add_ps(v0, b0);
      v1 = _mm512_add_ps(v1, b1);
    }
    if (flags & kRelu) {
      v0 = _mm512_max_ps(zero, v0);
      v1 = _mm512_max_ps(zero, v1);
    }
    if (full) {
      _mm512_storeu_ps(ci, v0);
      _mm512_storeu_ps(ci + 16, v1);
    } else {
      _mm512_mask_storeu_ps(ci, m0, v0);
      _mm512_mask_storeu_ps(ci + 16, m1, v1);
    }
  }
}

void packed_kernel(i64 kc, const float* ap, const float* bp, float* c, i64 ldc,
                   int mr, int nr, int flags, const float* bias) {
  __m512 acc[MR][2];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (i64 k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_load_ps(bp);
    const __m512 b1 = _mm512_load_ps(bp + 16);
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      const __m512 a = _mm512_set1_ps(ap[i]);
      acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
    }
    ap += MR;
    bp += NR;
  }
  store_tile<MR>(acc, c, ldc, mr, nr, flags, bias);
}

// Only the first ROWS rows are computed (a partial tile costs what it uses); each
// row's arithmetic is the same for every ROWS, so the bits do not depend on it.
// HALF (nr <= 16): only the first vector of each row is computed; each lane's
// arithmetic is the same, so the bits do not depend on it either.
template <int ROWS, bool FULL, bool HALF = false>
void rowptr_rows(int nseg, i64 seglen, const float* const* aptr, const float* const* bseg,
                 i64 ldb, float* c, i64 ldc, int nr, int flags, const float* bias) {
  __m512 acc[MR][2];
#pragma GCC unroll 12
  for (int i = 0; i < ROWS; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  const __mmask16 m0 = lane_mask(nr), m1 = lane_mask(nr - 16);
  for (int s = 0; s < nseg; ++s) {
    const float* const* ap = aptr + s * MR;
    const float* bp = bseg[s];
    for (i64 k = 0; k < seglen; ++k) {
      const __m512 b0 = FULL ? _mm512_loadu_ps(bp) : _mm512_maskz_loadu_ps(m0, bp);
      if (HALF) {
#pragma GCC unroll 12
        for (int i = 0; i < ROWS; ++i)
          acc[i][0] = _mm512_fmadd_ps(_mm512_set1_ps(ap[i][k]), b0, acc[i][0]);
        bp += ldb;
        continue;
      }
      const __m512 b1 = FULL ? _mm512_loadu_ps(bp + 16) : _mm512_maskz_loadu_ps(m1, bp + 16);
#pragma GCC unroll 12
      for (int i = 0; i < ROWS; ++i) {
        const __m512 a = _mm512_set1_ps(ap[i][k]);
        acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
        acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
      }
      bp += ldb;
    }
  }
  store_tile<ROWS>(acc, c, ldc, ROWS, nr, flags, bias);
}

template <int ROWS>
void rowptr_dispatch_nr(int nseg, i64 seglen, const float* const* aptr, const float* const* bseg,
                        i64 ldb, float* c, i64 ldc, int nr, int flags, const float* bias) {
  if (nr == NR) rowptr_rows<ROWS, true>(nseg, seglen, aptr, bseg, ldb, c, ldc, nr, flags, bias);
  else if (nr <= 16) rowptr_rows<ROWS, false, true>(nseg, seglen, aptr, bseg, ldb, c, ldc, nr, flags, bias);
  else rowptr_rows<ROWS, false>(nseg, seglen, aptr, bseg, ldb, c, ldc, nr, flags, bias);
}

void rowptr_kernel(int nseg, i64 seglen, const float* const* aptr,
                   const float* const* bseg, i64 ldb, float* c, i64 ldc, int mr,
                   int nr, int flags, const float* bias) {
#define FASTNN_ROWPTR_CASE(R) \
  case R: rowptr_dispatch_nr<R>(nseg, seglen, aptr, bseg, ldb, c, ldc, nr, flags, bias); break;
  switch (mr) {
    FASTNN_ROWPTR_CASE(12) FASTNN_ROWPTR_CASE(11) FASTNN_ROWPTR_CASE(10) FASTNN_ROWPTR_CASE(9)
    FASTNN_ROWPTR_CASE(8) FASTNN_ROWPTR_CASE(7) FASTNN_ROWPTR_CASE(6) FASTNN_ROWPTR_CASE(5)
    FASTNN_ROWPTR_CASE(4) FASTNN_ROWPTR_CASE(3) FASTNN_ROWPTR_CASE(2)
    default: rowptr_dispatch_nr<1>(nseg, seglen, aptr, bseg, ldb, c, ldc, nr, flags, bias); break;
  }
#undef FASTNN_ROWPTR_CASE
}

template <int ROWS, bool FULL, bool HALF = false>  // HALF as in rowptr_rows
void colseg_rows(int nseg, i64 seglen, const float* const* aseg, i64 lda, i64 a_off,
                 const float* const* bseg, i64 ldb, float* c, i64 ldc, int nr, int flags) {
  __m512 acc[MR][2];
#pragma GCC unroll 12
  for (int i = 0; i < ROWS; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  const __mmask16 m0 = lane_mask(nr), m1 = lane_mask(nr - 16);
  for (int s = 0; s < nseg; ++s) {
    const float* a = aseg[s] + a_off;
    const float* b = bseg[s];
    for (i64 k = 0; k < seglen; ++k) {
      const __m512 b0 = FULL ? _mm512_loadu_ps(b) : _mm512_maskz_loadu_ps(m0, b);
      if (HALF) {
#pragma GCC unroll 12
        for (int i = 0; i < ROWS; ++i)
          acc[i][0] = _mm512_fmadd_ps(_mm512_set1_ps(a[i]), b0, acc[i][0]);
        a += lda;
        b += ldb;
        continue;
      }
      const __m512 b1 = FULL ? _mm512_loadu_ps(b + 16) : _mm512_maskz_loadu_ps(m1, b + 16);
#pragma GCC unroll 12
      for (int i = 0; i < ROWS; ++i) {
        const __m512 av = _mm512_set1_ps(a[i]);
        acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
        acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
      }
      a += lda;
      b += ldb;
    }
  }
  store_tile<ROWS>(acc, c, ldc, ROWS, nr, flags, nullptr);
}

template <int ROWS>
void colseg_dispatch_nr(int nseg, i64 seglen, const float* const* aseg, i64 lda, i64 a_off,
                        const float* const* bseg, i64 ldb, float* c, i64 ldc, int nr, int flags) {
  if (nr == NR) colseg_rows<ROWS, true>(nseg, seglen, aseg, lda, a_off, bseg, ldb, c, ldc, nr, flags);
  else if (nr <= 16) colseg_rows<ROWS, false, true>(nseg, seglen, aseg, lda, a_off, bseg, ldb, c, ldc, nr, flags);
  else colseg_rows<ROWS, false>(nseg, seglen, aseg, lda, a_off, bseg, ldb, c, ldc, nr, flags);
}

void colseg_kernel(int nseg, i64 seglen, const float* const* aseg, i64 lda, i64 a_off,
                   const float* const* bseg, i64 ldb, float* c, i64 ldc, int mr, int nr,
                   int flags) {
#define FASTNN_COLSEG_CASE(R) \
  case R: colseg_dispatch_nr<R>(nseg, seglen, aseg, lda, a_off, bseg, ldb, c, ldc, nr, flags); break;
  switch (mr) {
    FASTNN_COLSEG_CASE(12) FASTNN_COLSEG_CASE(11) FASTNN_COLSEG_CASE(10) FASTNN_COLSEG_CASE(9)
    FASTNN_COLSEG_CASE(8) FASTNN_COLSEG_CASE(7) FASTNN_COLSEG_CASE(6) FASTNN_COLSEG_CASE(5)
    FASTNN_COLSEG_CASE(4) FASTNN_COLSEG_CASE(3) FASTNN_COLSEG_CASE(2)
    default: colseg_dispatch_nr<1>(nseg, seglen, aseg, lda, a_off, bseg, ldb, c, ldc, nr, flags); break;
  }
#undef FASTNN_COLSEG_CASE
}

}  // namespace

// Peak probe: 12 independent FMA chains; returns the flops executed.
double fma_loop_avx512(i64 iters) {
  __m512 acc[12];
  for (int j = 0; j < 12; ++j) acc[j] = _mm512_set1_ps(float(j));
  const __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);
  for (i64 i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int j = 0; j < 12; ++j) acc[j] = _mm512_fmadd_ps(acc[j], b, c);
  }
  __m512 sum = acc[0];
  for (int j = 1; j < 12; ++j) sum = _mm512_add_ps(sum, acc[j]);
  volatile float sink = _mm512_reduce_add_ps(sum);
  (void)sink;
  return double(iters) * 12 * 16 * 2;
}

const MicroKernels& micro_kernels_avx512() {
  static const MicroKernels k{MR, NR, packed_kernel, rowptr_kernel, colseg_kernel};
  return k;
}

}  // namespace fastnn
