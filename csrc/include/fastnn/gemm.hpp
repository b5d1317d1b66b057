// fastnn/gemm.hpp -- single-precision GEMM (BLIS/Goto structure) and the
// register-blocked micro-kernels it shares with convolution.
//
// Canonical summation order (the same on every path, for every M and every
// thread count, so results are bitwise reproducible and batch-size invariant):
// for each output element, K is cut into blocks of KC (gemm_blocking().kc, chosen
// once per process from the CPU: see cpuinfo.hpp); each block is summed in
// increasing k from 0 with one multiply-add per step; the block sums are then added
// to C in block order; bias and ReLU come last. So the bits may differ between
// CPUs (or FASTNN_GEMM_BLOCKING settings) whose KC differs, never between thread
// counts or batch sizes in one process.
#pragma once
#include "fastnn/common.hpp"
#include "fastnn/cpuinfo.hpp"

namespace fastnn {

enum EpilogueFlags : int {
  kAccumulate = 1,  // C += result (else C = result)
  kBias = 2,        // add bias[j] (per column)
  kRelu = 4,        // max(., 0)
};

// Paths of sgemm that may be switched off (tests compare them with the packed path;
// same-process A/B timings): bit 0 = the partial row tile of each A block read in
// place by the packed loop nest (else packed with zero rows).
enum GemmPathBits : int { kGemmPathSmallM = 1 };
void set_gemm_disabled_paths(int mask);
int gemm_disabled_paths();

// One ISA's micro-kernels. A tile is mr x nr (<= MR x NR) of row-major C.
struct MicroKernels {
  int MR, NR;
  // C tile (op)= Ap * Bp; Ap packed k-major with MR values per k (zero padded),
  // Bp packed k-major with NR values per k (zero padded).
  void (*packed)(i64 kc, const float* ap, const float* bp, float* c, i64 ldc,
                 int mr, int nr, int flags, const float* bias);
  // C tile (op)= sum over segments s of A_s * B_s, where row i of A_s is the
  // seglen contiguous floats at aptr[s*MR + i] (only rows i < mr are read and
  // computed) and row k of B_s is bseg[s] + k*ldb (nr valid floats; the rest are
  // never read).
  void (*rowptr)(int nseg, i64 seglen, const float* const* aptr,
                 const float* const* bseg, i64 ldb, float* c, i64 ldc, int mr,
                 int nr, int flags, const float* bias);
  // C tile (op)= sum over segments s and k < seglen of a_{s,k} (x) b_{s,k}, where
  // a_{s,k} is the mr floats at aseg[s] + k*lda + a_off and b_{s,k} the nr floats
  // at bseg[s] + k*ldb: strided operands, one pointer pair per segment.
  void (*colseg)(int nseg, i64 seglen, const float* const* aseg, i64 lda, i64 a_off,
                 const float* const* bseg, i64 ldb, float* c, i64 ldc, int mr, int nr,
                 int flags);
};

const MicroKernels& micro_kernels();           // for active_isa()
const MicroKernels& micro_kernels_for(Isa isa);
const MicroKernels& micro_kernels_generic();
#ifdef FASTNN_X86
const MicroKernels& micro_kernels_avx2();
const MicroKernels& micro_kernels_avx512();
#endif

// C[M x N] (op)= op(A)[M x K] * op(B)[K x N] (+ bias[N]) (relu)
// A(i,k) = A[i*rsa + k*csa]; B(k,j) = B[k*rsb + j*csb]; C row-major, row stride ldc.
// flags: EpilogueFlags. Parallel over output blocks (never over K).
void sgemm(i64 M, i64 N, i64 K, const float* A, i64 rsa, i64 csa, const float* B,
           i64 rsb, i64 csb, float* C, i64 ldc, int flags = 0,
           const float* bias = nullptr);

// Plain triple loop with the same canonical order; for tests and odd paths.
void sgemm_reference(i64 M, i64 N, i64 K, const float* A, i64 rsa, i64 csa,
                     const float* B, i64 rsb, i64 csb, float* C, i64 ldc,
                     int flags = 0, const float* bias = nullptr);

// Measured FP32 multiply-add peak of this machine in GFLOP/s with the active
// ISA's widest FMA, on `threads` threads, timed over about `seconds`.
double measure_fma_peak_gflops(int threads, double seconds);
#ifdef FASTNN_X86
double fma_loop_avx512(i64 iters);
double fma_loop_avx2(i64 iters);
#endif

}  // namespace fastnn
