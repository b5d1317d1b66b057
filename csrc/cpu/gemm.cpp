// SGEMM driver (BLIS/Goto loop nest with packed panels), the portable
// micro-kernels, and run-time ISA dispatch.
#include "fastnn/gemm.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#ifdef FASTNN_OPENMP
#include <omp.h>
#endif

namespace fastnn {

// ---------------------------------------------------------------------------
// Portable micro-kernels (plain C++; the compiler vectorizes for the baseline).
namespace {
constexpr int GMR = 4;
constexpr int GNR = 16;

void generic_store(float (&acc)[GMR][GNR], float* c, i64 ldc, int mr, int nr, int flags,
                   const float* bias) {
  for (int i = 0; i < mr; ++i) {
    float* ci = c + i * ldc;
    for (int j = 0; j < nr; ++j) {
      float v = acc[i][j];
      if (flags & kAccumulate) v = ci[j] + v;
      if (flags & kBias) v = v + bias[j];
      if ((flags & kRelu) && !(v > 0.0f)) v = (v != v) ? v : 0.0f;
      ci[j] = v;
    }
  }
}

void generic_packed(i64 kc, const float* ap, const float* bp, float* c, i64 ldc, int mr,
                    int nr, int flags, const float* bias) {
  float acc[GMR][GNR] = {};
  for (i64 k = 0; k < kc; ++k) {
    for (int i = 0; i < GMR; ++i)
      for (int j = 0; j < GNR; ++j) acc[i][j] += ap[i] * bp[j];
    ap += GMR;
    bp += GNR;
  }
  generic_store(acc, c, ldc, mr, nr, flags, bias);
}

void generic_rowptr(int nseg, i64 seglen, const float* const* aptr, const float* const* bseg,
                    i64 ldb, float* c, i64 ldc, int mr, int nr, int flags,
                    const float* bias) {
  float acc[GMR][GNR] = {};
  for (int s = 0; s < nseg; ++s) {
    const float* const* ap = aptr + s * GMR;
    const float* bp = bseg[s];
    for (i64 k = 0; k < seglen; ++k) {
      float b[GNR] = {};
      for (int j = 0; j < nr; ++j) b[j] = bp[j];
      for (int i = 0; i < mr; ++i) {
        const float a = ap[i][k];
        for (int j = 0; j < GNR; ++j) acc[i][j] += a * b[j];
      }
      bp += ldb;
    }
  }
  generic_store(acc, c, ldc, mr, nr, flags, bias);
}

void generic_colseg(int nseg, i64 seglen, const float* const* aseg, i64 lda, i64 a_off,
                    const float* const* bseg, i64 ldb, float* c, i64 ldc, int mr, int nr,
                    int flags) {
  float acc[GMR][GNR] = {};
  for (int s = 0; s < nseg; ++s) {
    const float* a = aseg[s] + a_off;
    const float* b = bseg[s];
    for (i64 k = 0; k < seglen; ++k) {
      for (int i = 0; i < mr; ++i) {
        const float av = a[i];
        for (int j = 0; j < nr; ++j) acc[i][j] += av * b[j];
      }
      a += lda;
      b += ldb;
    }
  }
  generic_store(acc, c, ldc, mr, nr, flags, nullptr);
}
}  // namespace

const MicroKernels& micro_kernels_generic() {
  static const MicroKernels k{GMR, GNR, generic_packed, generic_rowptr, generic_colseg};
  return k;
}

const MicroKernels& micro_kernels_for(Isa isa) {
#ifdef FASTNN_X86
  if (isa == Isa::avx512) return micro_kernels_avx512();
  if (isa == Isa::avx2) return micro_kernels_avx2();
#endif
  (void)isa;
  return micro_kernels_generic();
}

const MicroKernels& micro_kernels() {
  static const MicroKernels& k = micro_kernels_for(active_isa());
  return k;
}

// ---------------------------------------------------------------------------
// Packing. Panels are zero padded to MR / NR so edge tiles run the same kernel.
namespace {

void pack_a(const MicroKernels& uk, i64 mc, i64 kc, const float* A, i64 rsa, i64 csa,
            float* ap) {
  const int MR = uk.MR;
  for (i64 i0 = 0; i0 < mc; i0 += MR) {
    const int mr = static_cast<int>(std::min<i64>(MR, mc - i0));
    if (csa == 1) {
      for (int i = 0; i < mr; ++i) {
        const float* src = A + (i0 + i) * rsa;
        for (i64 k = 0; k < kc; ++k) ap[k * MR + i] = src[k];
      }
    } else {
      for (i64 k = 0; k < kc; ++k) {
        const float* src = A + k * csa + i0 * rsa;
        for (int i = 0; i < mr; ++i) ap[k * MR + i] = src[i * rsa];
      }
    }
    for (int i = mr; i < MR; ++i)
      for (i64 k = 0; k < kc; ++k) ap[k * MR + i] = 0.0f;
    ap += kc * MR;
  }
}

// Packs NR-wide panels [p0, p1) of the kc x nc block of B.
void pack_b(const MicroKernels& uk, i64 p0, i64 p1, i64 nc, i64 kc, const float* B,
            i64 rsb, i64 csb, float* bp) {
  const int NR = uk.NR;
  for (i64 p = p0; p < p1; ++p) {
    const i64 j0 = p * NR;
    const int nr = static_cast<int>(std::min<i64>(NR, nc - j0));
    float* dst = bp + p * kc * NR;
    if (csb == 1) {
      for (i64 k = 0; k < kc; ++k) {
        const float* src = B + k * rsb + j0;
        float* d = dst + k * NR;
        std::memcpy(d, src, sizeof(float) * nr);
        for (int j = nr; j < NR; ++j) d[j] = 0.0f;
      }
    } else {
      for (int j = 0; j < nr; ++j) {
        const float* src = B + (j0 + j) * csb;
        for (i64 k = 0; k < kc; ++k) dst[k * NR + j] = src[k * rsb];
      }
      for (i64 k = 0; k < kc; ++k)
        for (int j = nr; j < NR; ++j) dst[k * NR + j] = 0.0f;
    }
  }
}

std::atomic<int> g_disabled_paths{0};

// C = A B (epilogue per flags) with the rows of A read in place (unit column stride),
// tile by tile over (row tile, column panel) on nthreads threads. B is either read in
// place (b_packed false: row stride ldb) or packed by pack_b per K block (b_packed
// true: block pc at B + pc * npan * NR, panels of kc x NR). The same K blocks and the
// same per-element operation order as the packed path, hence the same bits.
void gemm_rows_in_place(const MicroKernels& uk, i64 M, i64 N, i64 K, const float* A, i64 rsa,
                        const float* B, i64 ldb, bool b_packed, float* C, i64 ldc, int flags,
                        const float* bias, int nthreads) {
  const int MR = uk.MR, NR = uk.NR;
  const i64 npan = ceil_div(N, NR), mtiles = ceil_div(M, MR);
  for_each_task(npan * mtiles, nthreads, [&](i64 task) {
    const i64 p = task % npan, it = task / npan;
    const i64 i0 = it * MR, j0 = p * NR;
    const int mr = static_cast<int>(std::min<i64>(MR, M - i0));
    const int nr = static_cast<int>(std::min<i64>(NR, N - j0));
    float* c = C + i0 * ldc + j0;
    const i64 KC = gemm_blocking().kc;
    for (i64 pc = 0; pc < K; pc += KC) {
      const i64 kc = std::min<i64>(KC, K - pc);
      const float* b = b_packed ? B + pc * npan * NR + p * kc * NR : B + pc * ldb + j0;
      const i64 bstride = b_packed ? NR : ldb;
      const int acc = pc == 0 ? (flags & kAccumulate) : kAccumulate;
      if (mr == 1) {  // one row: the strided kernel with a single accumulator row
        const float* a = A + i0 * rsa + pc;
        uk.colseg(1, kc, &a, 1, 0, &b, bstride, c, ldc, 1, nr, acc);
        continue;
      }
      const float* ap[16];
      for (int i = 0; i < mr; ++i) ap[i] = A + (i0 + i) * rsa + pc;
      const int f = acc | (pc + kc >= K ? (flags & (kBias | kRelu)) : 0);
      uk.rowptr(1, kc, ap, &b, bstride, c, ldc, mr, nr, f, bias ? bias + j0 : nullptr);
    }
    if (mr == 1 && (flags & (kBias | kRelu))) {  // bias and ReLU after the last block
      for (int j = 0; j < nr; ++j) {
        float v = c[j];
        if (flags & kBias) v = v + bias[j0 + j];
        if ((flags & kRelu) && v < 0.0f) v = 0.0f;
        c[j] = v;
      }
    }
  });
}

// C (op)= A B with A(i, k) = A[k * lda + i] and B(k, j) = B[k * ldb + j], K <= KC:
// each (row tile, column panel) tile is one colseg call over all of K on one thread.
void gemm_tn_in_place(const MicroKernels& uk, i64 M, i64 N, i64 K, const float* A, i64 lda,
                      const float* B, i64 ldb, float* C, i64 ldc, int flags, int nthreads) {
  const int MR = uk.MR, NR = uk.NR;
  const i64 npan = ceil_div(N, NR), mtiles = ceil_div(M, MR);
  for_each_task(npan * mtiles, nthreads, [&](i64 task) {
    const i64 i0 = (task / npan) * MR, j0 = (task % npan) * NR;
    const int mr = static_cast<int>(std::min<i64>(MR, M - i0));
    const int nr = static_cast<int>(std::min<i64>(NR, N - j0));
    const float* b = B + j0;
    uk.colseg(1, K, &A, lda, i0, &b, ldb, C + i0 * ldc + j0, ldc, mr, nr, flags);
  });
}

}  // namespace

// ---------------------------------------------------------------------------
void set_gemm_disabled_paths(int mask) { g_disabled_paths.store(mask); }
int gemm_disabled_paths() { return g_disabled_paths.load(std::memory_order_relaxed); }

void sgemm(i64 M, i64 N, i64 K, const float* A, i64 rsa, i64 csa, const float* B,
           i64 rsb, i64 csb, float* C, i64 ldc, int flags, const float* bias) {
  if (M <= 0 || N <= 0) return;
  const MicroKernels& uk = micro_kernels();
  const int MR = uk.MR, NR = uk.NR;
  const GemmBlocking& blk = gemm_blocking();
  const i64 KC = blk.kc, MC = blk.mc, NC = blk.nc;
  if (K <= 0) {  // empty sum: C = 0 (or unchanged) then epilogue
    for (i64 i = 0; i < M; ++i)
      for (i64 j = 0; j < N; ++j) {
        float v = (flags & kAccumulate) ? C[i * ldc + j] : 0.0f;
        if (flags & kBias) v += bias[j];
        if ((flags & kRelu) && v < 0.0f) v = 0.0f;
        C[i * ldc + j] = v;
      }
    return;
  }
  const double flops = 2.0 * double(M) * double(N) * double(K);
  const int nthreads = flops < 2.0e5 ? 1 : num_threads();
  if (csa == 1 && csb == 1 && (M <= 4 * MR || K <= 4)) {
    // Few rows (e.g. a batch-1 dense layer) or a short sum (the input projection of a
    // recurrent layer with one feature): packing would cost as much as the product,
    // so the micro-kernel reads A rows and B rows in place. A short sum over many
    // outputs is memory work: parallel from 2^15 outputs whatever its flops.
    const int nt = K <= 4 && double(M) * double(N) >= 32768.0 ? num_threads() : nthreads;
    gemm_rows_in_place(uk, M, N, K, A, rsa, B, rsb, false, C, ldc, flags, bias, nt);
    return;
  }
  if (rsa == 1 && csb == 1 && K <= KC && !(flags & (kBias | kRelu)) &&
      double(M) * double(N) * double(K) <= 2.6e5) {
    // A small transposed product (a dense layer's weight gradient x^T dy): A's columns
    // and B's rows are contiguous, so the strided micro-kernel reads both in place.
    // One K block summed from k = 0 by one thread per tile: the canonical bits.
    gemm_tn_in_place(uk, M, N, K, A, csa, B, rsb, C, ldc, flags & kAccumulate, nthreads);
    return;
  }
  if (csa == 1 && N <= 2 * NR && K * ceil_div(N, NR) * NR <= (i64(1) << 22)) {
    // Few columns (a one-unit Dense layer, dx of a recurrent layer with one input
    // feature): packing A would cost more than the product. Pack only B (one or two
    // panels per K block) and let the micro-kernel read A rows in place.
    const i64 npan = ceil_div(N, NR);
    Buffer<float> bpack(static_cast<std::size_t>(K * npan * NR));
    for (i64 pc = 0; pc < K; pc += KC)  // block pc at bpack + pc * npan * NR
      pack_b(uk, 0, npan, N, std::min<i64>(KC, K - pc), B + pc * rsb, rsb, csb,
             bpack.data() + pc * npan * NR);
    gemm_rows_in_place(uk, M, N, K, A, rsa, bpack.data(), NR, true, C, ldc, flags, bias, nthreads);
    return;
  }
  const i64 nc_max = std::min<i64>(ceil_div(NC, NR) * NR, ceil_div(N, NR) * NR);
  Buffer<float> bpack(static_cast<std::size_t>(KC * nc_max));
  // The last, partial row tile of each A block (mr < MR rows) with contiguous A rows:
  // the micro-kernel reads those rows in place and computes only mr rows, where the
  // packed kernel would compute MR rows of zero padding (Dense at batch 86 =
  // 7 x 12 + 2 rows: 1.14x at 1 thread on m86n256k3136, Zen 4). Full tiles stay
  // packed (reading all of A in place was 0.95x on m96n512k1024). Same bits: each
  // element's K block is one micro-kernel sum from k = 0 either way.
  const bool tail_in_place = csa == 1 && !(gemm_disabled_paths() & kGemmPathSmallM);

#pragma omp parallel num_threads(nthreads) if (nthreads > 1) FASTNN_FP_TEAM
  {
    Buffer<float> apack(static_cast<std::size_t>(KC * ceil_div(MC, MR) * MR));  // whole tiles
    for (i64 jc = 0; jc < N; jc += NC) {
      const i64 nc = std::min<i64>(NC, N - jc);
      const i64 npanels = ceil_div(nc, NR);
      for (i64 pc = 0; pc < K; pc += KC) {
        const i64 kc = std::min<i64>(KC, K - pc);
        const int f = (pc == 0 ? (flags & kAccumulate) : kAccumulate) |
                      (pc + kc >= K ? (flags & (kBias | kRelu)) : 0);
#pragma omp for schedule(static)
        for (i64 p = 0; p < npanels; ++p)
          pack_b(uk, p, p + 1, nc, kc, B + pc * rsb + jc * csb, rsb, csb, bpack.data());
        // Tasks: (row block) x (column group). Each task packs its own A block.
        const i64 mblocks = ceil_div(M, MC);
        i64 ngroups = 1;
        if (mblocks < 2 * nthreads) ngroups = std::min<i64>(npanels, 2 * nthreads);
        const i64 ntasks = mblocks * ngroups;
#pragma omp for schedule(static)
        for (i64 t = 0; t < ntasks; ++t) {
          const i64 mb = t / ngroups, g = t % ngroups;
          const i64 ic = mb * MC;
          const i64 mc = std::min<i64>(MC, M - ic);
          const i64 pbeg = npanels * g / ngroups, pend = npanels * (g + 1) / ngroups;
          if (pbeg == pend) continue;
          const i64 mc_packed = tail_in_place ? mc / MR * MR : mc;
          if (mc_packed > 0) pack_a(uk, mc_packed, kc, A + ic * rsa + pc * csa, rsa, csa, apack.data());
          for (i64 ir = 0; ir < mc; ir += MR) {
            const int mr = static_cast<int>(std::min<i64>(MR, mc - ir));
            if (ir >= mc_packed) {  // the partial tile, A rows in place
              const float* arow[16];
              for (int i = 0; i < mr; ++i) arow[i] = A + (ic + ir + i) * rsa + pc;
              for (i64 p = pbeg; p < pend; ++p) {
                const i64 jr = p * NR;
                const int nr = static_cast<int>(std::min<i64>(NR, nc - jr));
                const float* b = bpack.data() + p * kc * NR;
                uk.rowptr(1, kc, arow, &b, NR, C + (ic + ir) * ldc + jc + jr, ldc, mr, nr, f,
                          bias ? bias + jc + jr : nullptr);
              }
              continue;
            }
            const float* ap = apack.data() + ir * kc;
            for (i64 p = pbeg; p < pend; ++p) {
              const i64 jr = p * NR;
              const int nr = static_cast<int>(std::min<i64>(NR, nc - jr));
              uk.packed(kc, ap, bpack.data() + p * kc * NR, C + (ic + ir) * ldc + jc + jr,
                        ldc, mr, nr, f, bias ? bias + jc + jr : nullptr);
            }
          }
        }
      }
    }
  }
}

void sgemm_reference(i64 M, i64 N, i64 K, const float* A, i64 rsa, i64 csa, const float* B,
                     i64 rsb, i64 csb, float* C, i64 ldc, int flags, const float* bias) {
  for (i64 i = 0; i < M; ++i)
    for (i64 j = 0; j < N; ++j) {
      float total = (flags & kAccumulate) ? C[i * ldc + j] : 0.0f;
      const i64 KC = gemm_blocking().kc;
      for (i64 pc = 0; pc < K; pc += KC) {
        float block = 0.0f;
        for (i64 k = pc; k < std::min<i64>(K, pc + KC); ++k)
          block += A[i * rsa + k * csa] * B[k * rsb + j * csb];
        total = (pc == 0 && !(flags & kAccumulate)) ? block : total + block;
      }
      if (flags & kBias) total += bias[j];
      if ((flags & kRelu) && total < 0.0f) total = 0.0f;  // NaN stays NaN
      C[i * ldc + j] = total;
    }
}

namespace {
double fma_loop_generic(i64 iters) {
  float acc[12][4];
  for (int j = 0; j < 12; ++j)
    for (int l = 0; l < 4; ++l) acc[j][l] = float(j);
  for (i64 i = 0; i < iters; ++i)
    for (int j = 0; j < 12; ++j)
      for (int l = 0; l < 4; ++l) acc[j][l] = acc[j][l] * 0.999999f + 1e-6f;
  volatile float sink = acc[3][1];
  (void)sink;
  return double(iters) * 12 * 4 * 2;
}
}  // namespace

double measure_fma_peak_gflops(int threads, double seconds) {
  if (threads < 1) threads = 1;
  double (*loop)(i64) = fma_loop_generic;
#ifdef FASTNN_X86
  if (active_isa() == Isa::avx512) loop = fma_loop_avx512;
  else if (active_isa() == Isa::avx2) loop = fma_loop_avx2;
#endif
  loop(100000);  // warm up (clock ramp)
  // Calibrate the iteration count on one thread, then run it on all.
  i64 iters = 1 << 20;
  for (;;) {
    auto t0 = std::chrono::steady_clock::now();
    loop(iters);
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (dt > seconds / 4 || iters > (i64(1) << 40)) break;
    iters *= 2;
  }
  double best = 0.0;
  for (int rep = 0; rep < 3; ++rep) {
    double flops = 0.0;
    auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : flops) FASTNN_FP_TEAM
    flops += loop(iters);
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, flops / dt / 1e9);
  }
  return best;
}

}  // namespace fastnn
