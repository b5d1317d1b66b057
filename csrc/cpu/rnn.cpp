// Recurrent kernels: LSTM, GRU (reset_after=True), SimpleRNN; forward and
// backward through time. See fastnn/rnn.hpp for layouts and decisions.
#include "fastnn/rnn.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

#include <omp.h>

#include "fastnn/activation.hpp"
#include "fastnn/gemm.hpp"
#define FASTNN_RNN_NS rnn_generic
#include "rnn_cells_impl.hpp"

namespace fastnn {
namespace {

// Per-thread scratch for the backward passes' large gate-gradient buffers, kept
// (grow-only) across calls: a fresh tens-of-MB buffer per call would be page-faulted
// in and zeroed by the OS every time. Slot 0: dG / dGx, 1: dGh, 2: h_{t-1} rows,
// 3: [x | 1] rows and the [dk; db] result of the fused small-input pass.
float* scratch(int slot, i64 n) {
  static thread_local Buffer<float> bufs[4];
  bufs[slot].resize(static_cast<std::size_t>(n));
  return bufs[slot].data();
}

constexpr int kMaxMR = 16;
constexpr int kMaxNR = 32;

// The per-step work partition. Two modes, chosen by shape and thread count only
// (every row's arithmetic is the same in both, so results never depend on them):
// - by rows: samples are independent through time, so each thread owns a slice of
//   the batch for the whole sequence and no barrier is needed between steps (see
//   make_grid for when).
// - by columns: items (hidden column block jb of NR, row tile of MR), column block
//   outer so that a thread keeps its weight panels hot; a barrier after each step.
struct Grid {
  const MicroKernels* uk;
  int MR, NR;
  i64 N, H;
  i64 ntiles, nblocks, nitems;
  int nthreads;
  bool by_rows;
};

Grid make_grid(i64 N, i64 H, i64 G) {
  Grid g;
  g.uk = &micro_kernels();
  g.MR = g.uk->MR;
  g.NR = g.uk->NR;
  if (g.MR > kMaxMR || g.NR > kMaxNR) throw std::logic_error("rnn: micro-kernel tile too large");
  g.N = N;
  g.H = H;
  g.ntiles = ceil_div(N, g.MR);
  g.nblocks = ceil_div(H, g.NR);
  g.nitems = g.ntiles * g.nblocks;
  const i64 nt = num_threads();
  const double packed_bytes = 4.0 * static_cast<double>(G * H) * static_cast<double>(g.nblocks * g.NR);
  // By rows when each thread gets a few rows and the weights fit in L2, or when each
  // thread gets at least a full row tile (measured: I = H = 512, batch 64 runs its
  // time loop 1.4x faster by rows than by columns on 2 threads).
  const double step_flops = 2.0 * static_cast<double>(N) * G * H * H;
  g.by_rows = nt > 1 && N >= 4 * nt && step_flops >= 2.0e4 &&
              (packed_bytes <= 512.0 * 1024.0 || N >= g.MR * nt);
  if (g.by_rows) {
    g.nthreads = static_cast<int>(nt);
    return g;
  }
  // One barrier per step: only worth it when a step has real work.
  const i64 ntc = step_flops < 4.0e5 ? 1 : nt;
  g.nthreads = static_cast<int>(std::max<i64>(1, std::min<i64>(ntc, g.nitems)));
  return g;
}

// Recurrent kernel U (H x G*H) -> panels P[jb][g] (H x NR, zero padded):
// P[jb][g][k][jj] = U[k][g*H + jb*NR + jj]. When H <= NR (one column block) the
// gates lie side by side instead, in ceil(G*H / NR) full-width panels
// P[p][k][jj] = U[k][p*NR + jj], so that few lanes are wasted on small H
// (at most G*H*NR floats either way).
void pack_forward(const float* U, i64 H, i64 G, int NR, i64 nblocks, float* out) {
  const i64 GH = G * H;
  if (nblocks == 1) {
    for (i64 p = 0; p * NR < GH; ++p)
      for (i64 k = 0; k < H; ++k)
        for (int jj = 0; jj < NR; ++jj) {
          const i64 j = p * NR + jj;
          out[(p * H + k) * NR + jj] = j < GH ? U[k * GH + j] : 0.0f;
        }
    return;
  }
  for (i64 jb = 0; jb < nblocks; ++jb)
    for (i64 g = 0; g < G; ++g) {
      float* p = out + (jb * G + g) * H * NR;
      for (i64 k = 0; k < H; ++k)
        for (int jj = 0; jj < NR; ++jj) {
          const i64 j = jb * NR + jj;
          p[k * NR + jj] = j < H ? U[k * GH + g * H + j] : 0.0f;
        }
    }
}

// U^T (G*H x H) -> panels Q[jb] (G*H x NR, zero padded): Q[jb][k][jj] = U[jb*NR + jj][k].
void pack_backward(const float* U, i64 H, i64 G, int NR, i64 nblocks, float* out) {
  const i64 GH = G * H;
  for (i64 jb = 0; jb < nblocks; ++jb) {
    float* p = out + jb * GH * NR;
    for (i64 k = 0; k < GH; ++k)
      for (int jj = 0; jj < NR; ++jj) {
        const i64 j = jb * NR + jj;
        p[k * NR + jj] = j < H ? U[j * GH + k] : 0.0f;
      }
  }
}

// Runs item(t, jb, n0, mr) -- column block jb, rows n0 .. n0+mr-1 -- for every step
// t = first, first+step, ..., last, in one parallel region (see Grid for the modes).
template <class F>
void time_loop(const Grid& g, i64 first, i64 last, i64 step, F&& item) {
  // Rows r0 .. r1-1 through every step; a weight panel serves all of them.
  auto rows = [&](i64 r0, i64 r1) {
    for (i64 t = first;; t += step) {
      for (i64 jb = 0; jb < g.nblocks; ++jb)
        for (i64 n0 = r0; n0 < r1; n0 += g.MR)
          item(t, jb, n0, static_cast<int>(std::min<i64>(g.MR, r1 - n0)));
      if (t == last) break;
    }
  };
  if (g.by_rows) {
#pragma omp parallel num_threads(g.nthreads) FASTNN_FP_TEAM
    {
      const i64 nt = omp_get_num_threads(), tid = omp_get_thread_num();
      rows(g.N * tid / nt, g.N * (tid + 1) / nt);
    }
    return;
  }
  if (g.nthreads == 1) {  // no parallel region at all: small problems pay no OpenMP cost
    rows(0, g.N);
    return;
  }
#pragma omp parallel num_threads(g.nthreads) FASTNN_FP_TEAM
  {
    for (i64 t = first;; t += step) {
#pragma omp for schedule(static)
      for (i64 w = 0; w < g.nitems; ++w) {
        const i64 n0 = (w % g.ntiles) * g.MR;
        item(t, w / g.ntiles, n0, static_cast<int>(std::min<i64>(g.MR, g.N - n0)));
      }
      if (t == last) break;
    }
  }
}

// Zeroes the mr x nr tile at rows n0.., columns j0.. of dst (row stride H).
inline void zero_tile(float* dst, i64 n0, int mr, i64 j0, int nr, i64 H) {
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < nr; ++j) dst[(n0 + i) * H + j0 + j] = 0.0f;
}

// d (nr floats of sample n, step t) += dh_seq[n, t] and, at the last step, dh_T[n].
inline void add_upstream(float* d, i64 n, i64 t, i64 T, i64 H, i64 j0, int nr, const float* dh_seq,
                         const float* dh_T) {
  if (dh_seq) {
    const float* s = dh_seq + (n * T + t) * H + j0;
    for (int j = 0; j < nr; ++j) d[j] += s[j];
  }
  if (dh_T && t == T - 1) {
    const float* s = dh_T + n * H + j0;
    for (int j = 0; j < nr; ++j) d[j] += s[j];
  }
}

// Row n of h_{t-1}: h0 (or zeros) at t = 0, else h_seq[n, t-1].
inline const float* prev_row(const float* h0, const float* seq, i64 n, i64 t, i64 T, i64 H,
                             const float* zeros) {
  return t == 0 ? (h0 ? h0 + n * H : zeros) : seq + (n * T + t - 1) * H;
}

// Hprev (N*T x H): row (n, t) = h_{t-1} of sample n.
void build_hprev(i64 N, i64 T, i64 H, const float* h0, const float* h_seq,
                 const float* zeros, float* out) {
  for (i64 n = 0; n < N; ++n)
    for (i64 t = 0; t < T; ++t)
      std::memcpy(out + (n * T + t) * H, prev_row(h0, h_seq, n, t, T, H, zeros),
                  sizeof(float) * static_cast<std::size_t>(H));
}

void last_step(i64 N, i64 T, i64 H, const float* seq, float* out) {
  for (i64 n = 0; n < N; ++n)
    std::memcpy(out + n * H, seq + (n * T + T - 1) * H, sizeof(float) * static_cast<std::size_t>(H));
}

// C (M x Nc, row stride ldc) = A^T B summed over k < K, with A(k, i) = A[k*lda + i] and
// B(k, j) = B[k*ldb + j]. Small problems (the workbook's weight gradients: K = N*T
// rows, M and Nc tiny) go straight to the strided micro-kernel (colseg) on one thread,
// avoiding sgemm's packing; larger ones use sgemm. The choice depends on the shape
// only, so results never depend on the thread count.
void gemm_tn(i64 M, i64 Nc, i64 K, const float* A, i64 lda, const float* B, i64 ldb,
             float* C, i64 ldc) {
  if (static_cast<double>(M) * Nc * K > 4.0e6) {
    sgemm(M, Nc, K, A, 1, lda, B, ldb, 1, C, ldc);
    return;
  }
  // Each output tile is summed over all of K by one thread: the same bits for any
  // thread count.
  const MicroKernels& uk = micro_kernels();
  const i64 mtiles = ceil_div(M, uk.MR), ntiles = ceil_div(Nc, uk.NR);
  const int nt = static_cast<double>(M) * Nc * K < 1.0e5 ? 1 : num_threads();
  for_each_task(mtiles * ntiles, nt, [&](i64 w) {
    const i64 i0 = (w / ntiles) * uk.MR, j0 = (w % ntiles) * uk.NR;
    const int mr = static_cast<int>(std::min<i64>(uk.MR, M - i0));
    const int nr = static_cast<int>(std::min<i64>(uk.NR, Nc - j0));
    const float* bseg = B + j0;
    uk.colseg(1, K, &A, lda, i0, &bseg, ldb, C + i0 * ldc + j0, ldc, mr, nr, 0);
  });
}

// C (M x Nc) (op)= sum over segments s and k < seglen of A_s(k, :)^T B_s(k, :), with
// A_s(k, i) = aseg[s][k*lda + i] and B_s(k, j) = bseg[s][k*ldb + j]; nseg = 0 gives
// zeros (or leaves C). Tiles in parallel, each summed by one thread.
void gemm_tn_segments(i64 M, i64 Nc, i64 nseg, i64 seglen, const float* const* aseg, i64 lda,
                      const float* const* bseg, i64 ldb, float* C, i64 ldc, int flags) {
  const MicroKernels& uk = micro_kernels();
  // Row tiles of equal height (H = 20: 10 + 10 rather than 12 + 8), so that two
  // threads get equal work; a tile's height never changes an element's bits.
  const i64 mtiles = ceil_div(M, uk.MR), ntiles = ceil_div(Nc, uk.NR), mrow = ceil_div(M, mtiles);
  const int nt = static_cast<double>(M) * Nc * nseg * seglen < 1.0e5 ? 1 : num_threads();
  for_each_task(mtiles * ntiles, nt, [&](i64 w) {
    const i64 i0 = (w / ntiles) * mrow, j0 = (w % ntiles) * uk.NR;
    const int mr = static_cast<int>(std::min<i64>(mrow, M - i0));
    const int nr = static_cast<int>(std::min<i64>(uk.NR, Nc - j0));
    if (nseg == 0 || seglen == 0) {
      if (!(flags & kAccumulate))
        for (int i = 0; i < mr; ++i)
          for (int j = 0; j < nr; ++j) C[(i0 + i) * ldc + j0 + j] = 0.0f;
      return;
    }
    std::vector<const float*> bs(static_cast<std::size_t>(nseg));
    for (i64 s = 0; s < nseg; ++s) bs[s] = bseg[s] + j0;
    uk.colseg(static_cast<int>(nseg), seglen, aseg, lda, i0, bs.data(), ldb, C + i0 * ldc + j0,
              ldc, mr, nr, flags);
  });
}

// Weight gradients shared by all three cells, each one GEMM over all N*T rows:
// dx = dGx K^T, dk = X^T dGx, drk = Hprev^T dGh, db = 1^T dGx (and 1^T dGh for GRU).
void weight_grads(i64 N, i64 T, i64 I, i64 H, i64 GH, const float* x, const float* kernel,
                  const float* h0, const float* h_seq, const float* dGx, const float* dGh,
                  const float* zeros, float* dx, float* dk, float* drk, float* db,
                  float* db_h) {
  const i64 NT = N * T;
  if (dx) sgemm(NT, I, GH, dGx, GH, 1, kernel, 1, GH, dx, I);
  // A few inputs (the workbook: I = 1): dk and db in one pass over dGx, as the rows of
  // [x | 1]^T dGx. Each element is the same sum as in the separate products below (the
  // small path sums every row of A on its own), so the same bits; the pass over dGx,
  // latency-bound for one row, is shared.
  const bool fuse_db = db && I + 1 <= kMaxMR && static_cast<double>(I + 1) * GH * NT <= 4.0e6;
  if (fuse_db) {
    float* xa = scratch(3, NT * (I + 1) + (I + 1) * GH);
    float* out = xa + NT * (I + 1);
    for (i64 k = 0; k < NT; ++k) {
      for (i64 i = 0; i < I; ++i) xa[k * (I + 1) + i] = x[k * I + i];
      xa[k * (I + 1) + I] = 1.0f;
    }
    gemm_tn(I + 1, GH, NT, xa, I + 1, dGx, GH, out, GH);
    std::memcpy(dk, out, sizeof(float) * static_cast<std::size_t>(I * GH));
    std::memcpy(db, out + I * GH, sizeof(float) * static_cast<std::size_t>(GH));
  } else {
    gemm_tn(I, GH, NT, x, I, dGx, GH, dk, GH);
  }
  if (static_cast<double>(H) * GH * NT > 4.0e6) {
    float* hp = scratch(2, NT * H);
    build_hprev(N, T, H, h0, h_seq, zeros, hp);
    gemm_tn(H, GH, NT, hp, H, dGh, GH, drk, GH);
  } else {
    // Small: read h_{t-1} in place, one segment per sample (rows t = 1..T-1 pair
    // h_seq[n, t-1] with dGh[n, t]), after the t = 0 terms with h0 (zero without it).
    std::vector<const float*> a(static_cast<std::size_t>(N)), b(static_cast<std::size_t>(N));
    int flags = 0;
    if (h0) {
      for (i64 n = 0; n < N; ++n) a[n] = h0 + n * H, b[n] = dGh + n * T * GH;
      gemm_tn_segments(H, GH, N, 1, a.data(), H, b.data(), GH, drk, GH, 0);
      flags = kAccumulate;
    }
    if (T > 1 || !h0) {
      for (i64 n = 0; n < N; ++n) a[n] = h_seq + n * T * H, b[n] = dGh + (n * T + 1) * GH;
      gemm_tn_segments(H, GH, T > 1 ? N : 0, T - 1, a.data(), H, b.data(), GH, drk, GH, flags);
    }
  }
  Buffer<float> ones(static_cast<std::size_t>(kMaxMR));
  for (int i = 0; i < kMaxMR; ++i) ones[i] = 1.0f;
  if (db && !fuse_db) gemm_tn(1, GH, NT, ones.data(), 0, dGx, GH, db, GH);
  if (db_h) gemm_tn(1, GH, NT, ones.data(), 0, dGh, GH, db_h, GH);
}

// Columns j0 .. j0+nr-1 of hidden block jb.
inline void block_cols(const Grid& g, i64 jb, i64& j0, int& nr) {
  j0 = jb * g.NR;
  nr = static_cast<int>(std::min<i64>(g.NR, g.H - j0));
}

// aptr[i] = row i of h_{t-1} for the tile's rows n0 .. n0+mr-1.
inline void prev_rows(const float* h0, const float* h_seq, i64 n0, int mr, i64 t, i64 T, i64 H,
                      const float* zeros, const float** aptr) {
  for (int i = 0; i < mr; ++i) aptr[i] = prev_row(h0, h_seq, n0 + i, t, T, H, zeros);
}

// out (op)= h_{t-1} U (+ bias) for the tile's rows and hidden block jb of each of the G
// gates, from pack_forward's panels. One column block: all G*H columns at out + c in
// full-width panels (bias + c). Else gate q's nr columns at out + q*qstride + coloff
// (bias + q*H + j0). Rows of out are ldo apart. Same bits in both layouts.
void recurrent_product(const Grid& g, const float* upk, i64 H, i64 G, const float* const* aptr,
                       int mr, i64 jb, float* out, i64 ldo, i64 qstride, i64 coloff, int flags,
                       const float* bias) {
  const MicroKernels& uk = *g.uk;
  const i64 GH = G * H;
  if (g.nblocks == 1) {
    for (i64 c = 0; c < GH; c += g.NR) {
      const float* b = upk + c * H;  // panel c / NR
      uk.rowptr(1, H, aptr, &b, g.NR, out + c, ldo, mr, static_cast<int>(std::min<i64>(g.NR, GH - c)),
                flags, bias ? bias + c : nullptr);
    }
    return;
  }
  i64 j0;
  int nr;
  block_cols(g, jb, j0, nr);
  for (i64 q = 0; q < G; ++q) {
    const float* b = upk + (jb * G + q) * H * g.NR;
    uk.rowptr(1, H, aptr, &b, g.NR, out + q * qstride + coloff, ldo, mr, nr, flags,
              bias ? bias + q * H + j0 : nullptr);
  }
}

// Forward set-up shared by the cells: out (N*T x G*H) = x kernel (+ bias) for all steps
// as one GEMM, the recurrent kernel packed for the time loop, and a zero row (h_{-1}
// when no h0 is given).
struct ForwardSetup {
  Grid g;
  Buffer<float> upk, zeros;
};

ForwardSetup forward_setup(i64 N, i64 T, i64 I, i64 H, i64 G, const float* x, const float* kernel,
                           const float* rkernel, const float* bias, float* out) {
  const i64 GH = G * H;
  sgemm(N * T, GH, I, x, I, 1, kernel, GH, 1, out, GH, bias ? kBias : 0, bias);
  ForwardSetup f{make_grid(N, H, G), Buffer<float>(), Buffer<float>(static_cast<std::size_t>(GH))};
  f.upk.resize(static_cast<std::size_t>(f.g.nblocks * GH * f.g.NR));
  pack_forward(rkernel, H, G, f.g.NR, f.g.nblocks, f.upk.data());
  f.zeros.zero();
  return f;
}

// Gate element loops for the active ISA (rnn_cells_impl.hpp, one copy per ISA).
const RnnCells& cells() {
  static const RnnCells& c = [] () -> const RnnCells& {
#ifdef FASTNN_X86
    if (active_isa() == Isa::avx512) return rnn_cells_avx512();
    if (active_isa() == Isa::avx2) return rnn_cells_avx2();
#endif
    return rnn_cells_generic();
  }();
  return c;
}

}  // namespace

// ---------------------------------------------------------------------------
// LSTM
void lstm_forward(i64 N, i64 T, i64 I, i64 H, const float* x, const float* kernel,
                  const float* rkernel, const float* bias, const float* h0,
                  const float* c0, float* h_seq, float* c_seq, float* gates, float* h_T,
                  float* c_T) {
  const i64 GH = 4 * H;
  const ForwardSetup f = forward_setup(N, T, I, H, 4, x, kernel, rkernel, bias, gates);
  const Grid& g = f.g;
  const float* upk = f.upk.data();
  const float* z = f.zeros.data();
  const RnnCells& C = cells();
  time_loop(g, 0, T - 1, 1, [&](i64 t, i64 jb, i64 n0, int mr) {
    i64 j0;
    int nr;
    block_cols(g, jb, j0, nr);
    const float* aptr[kMaxMR];
    prev_rows(h0, h_seq, n0, mr, t, T, H, z, aptr);
    recurrent_product(g, upk, H, 4, aptr, mr, jb, gates + (n0 * T + t) * GH, T * GH, H, j0,
                      kAccumulate, nullptr);
    // previous cell state rows: c0 (stride H), zeros (stride 0) or c_seq[:, t-1]
    const float* cp = t == 0 ? (c0 ? c0 + n0 * H + j0 : z) : c_seq + (n0 * T + t - 1) * H + j0;
    const i64 cps = t == 0 ? (c0 ? H : 0) : T * H;
    C.lstm_tile_fwd(mr, nr, H, gates + (n0 * T + t) * GH + j0, T * GH, cp, cps,
                    c_seq + (n0 * T + t) * H + j0, h_seq + (n0 * T + t) * H + j0, T * H);
  });
  last_step(N, T, H, h_seq, h_T);
  last_step(N, T, H, c_seq, c_T);
}

void lstm_backward(i64 N, i64 T, i64 I, i64 H, const float* dh_seq, const float* dh_T,
                   const float* dc_T, const float* x, const float* kernel,
                   const float* rkernel, const float* h0, const float* c0,
                   const float* h_seq, const float* c_seq, const float* gates, float* dx,
                   float* dk, float* drk, float* db, float* dh0, float* dc0) {
  const i64 GH = 4 * H, NT = N * T;
  const Grid g = make_grid(N, H, 4);
  Buffer<float> utpk(static_cast<std::size_t>(g.nblocks * GH * g.NR));
  pack_backward(rkernel, H, 4, g.NR, g.nblocks, utpk.data());
  Buffer<float> zeros(static_cast<std::size_t>(GH));
  zeros.zero();
  const float* z = zeros.data();
  float* dG = scratch(0, NT * GH);
  Buffer<float> dh(static_cast<std::size_t>(N * H)), dc(static_cast<std::size_t>(N * H));
  if (dc_T)
    std::memcpy(dc.data(), dc_T, sizeof(float) * static_cast<std::size_t>(N * H));
  else
    dc.zero();
  const MicroKernels& uk = *g.uk;
  const RnnCells& C = cells();
  time_loop(g, T - 1, -1, -1, [&](i64 t, i64 jb, i64 n0, int mr) {
    i64 j0;
    int nr;
    block_cols(g, jb, j0, nr);
    float* dst = t < 0 ? dh0 : dh.data();
    if (t < T - 1) {  // recurrent gradient dG_{t+1} . U^T
      const float* aptr[kMaxMR];
      for (int i = 0; i < mr; ++i) aptr[i] = dG + ((n0 + i) * T + t + 1) * GH;
      const float* b = utpk.data() + jb * GH * g.NR;
      uk.rowptr(1, GH, aptr, &b, g.NR, dst + n0 * H + j0, H, mr, nr, 0, nullptr);
    } else {
      zero_tile(dst, n0, mr, j0, nr, H);
    }
    if (t < 0) {
      for (int i = 0; i < mr; ++i)
        for (int j = 0; j < nr; ++j) dc0[(n0 + i) * H + j0 + j] = dc[(n0 + i) * H + j0 + j];
      return;
    }
    for (int i = 0; i < mr; ++i) {
      const i64 n = n0 + i;
      float* d = dst + n * H + j0;
      add_upstream(d, n, t, T, H, j0, nr, dh_seq, dh_T);
    }
    const float* cp = t == 0 ? (c0 ? c0 + n0 * H + j0 : z) : c_seq + (n0 * T + t - 1) * H + j0;
    const i64 cps = t == 0 ? (c0 ? H : 0) : T * H;
    C.lstm_tile_bwd(mr, nr, H, dst + n0 * H + j0, H, gates + (n0 * T + t) * GH + j0, T * GH,
                    c_seq + (n0 * T + t) * H + j0, T * H, cp, cps, dc.data() + n0 * H + j0,
                    dG + (n0 * T + t) * GH + j0, T * GH);
  });
  weight_grads(N, T, I, H, GH, x, kernel, h0, h_seq, dG, dG, z, dx, dk, drk, db,
               nullptr);
}

// ---------------------------------------------------------------------------
// GRU (reset_after=True)
void gru_forward(i64 N, i64 T, i64 I, i64 H, const float* x, const float* kernel,
                 const float* rkernel, const float* bias, const float* h0, float* h_seq,
                 float* gates, float* hh, float* h_T) {
  const i64 GH = 3 * H;
  const float* b1 = bias ? bias + GH : nullptr;  // row 0 goes with x.kernel, row 1 with h.U
  const ForwardSetup f = forward_setup(N, T, I, H, 3, x, kernel, rkernel, bias, gates);
  const Grid& g = f.g;
  const float* upk = f.upk.data();
  const float* z = f.zeros.data();
  const RnnCells& C = cells();
  time_loop(g, 0, T - 1, 1, [&](i64 t, i64 jb, i64 n0, int mr) {
    i64 j0;
    int nr;
    block_cols(g, jb, j0, nr);
    const float* aptr[kMaxMR];
    prev_rows(h0, h_seq, n0, mr, t, T, H, z, aptr);
    // h.U + b1 for this tile: element (gate q, row i, column j) at R[q*qs + i*rs + j]
    float R[3 * kMaxMR * kMaxNR];
    const bool wide = g.nblocks == 1;
    const i64 qs = wide ? H : kMaxMR * kMaxNR, rs = wide ? GH : g.NR;
    recurrent_product(g, upk, H, 3, aptr, mr, jb, R, rs, qs, 0, b1 ? kBias : 0, b1);
    for (int i = 0; i < mr; ++i) {
      const i64 n = n0 + i;
      float* gz = gates + (n * T + t) * GH + j0;
      float* gr = gz + H;
      float* gn = gz + 2 * H;
      const float* hp = prev_row(h0, h_seq, n, t, T, H, z) + (t == 0 && !h0 ? 0 : j0);
      float* hho = hh + (n * T + t) * H + j0;
      float* ho = h_seq + (n * T + t) * H + j0;
      const float* rz = R + i * rs;
      const float* rr = rz + qs;
      const float* rh = rz + 2 * qs;
      C.gru_cell_fwd(nr, gz, gr, gn, rz, rr, rh, hp, hho, ho);
    }
  });
  last_step(N, T, H, h_seq, h_T);
}

void gru_backward(i64 N, i64 T, i64 I, i64 H, const float* dh_seq, const float* dh_T,
                  const float* x, const float* kernel, const float* rkernel,
                  const float* h0, const float* h_seq, const float* gates,
                  const float* hh, float* dx, float* dk, float* drk, float* db,
                  float* dh0) {
  const i64 GH = 3 * H, NT = N * T;
  const Grid g = make_grid(N, H, 3);
  Buffer<float> utpk(static_cast<std::size_t>(g.nblocks * GH * g.NR));
  pack_backward(rkernel, H, 3, g.NR, g.nblocks, utpk.data());
  Buffer<float> zeros(static_cast<std::size_t>(GH));
  zeros.zero();
  const float* z = zeros.data();
  float* dGx = scratch(0, NT * GH);
  float* dGh = scratch(1, NT * GH);
  Buffer<float> dh(static_cast<std::size_t>(N * H)), carry(static_cast<std::size_t>(N * H));
  carry.zero();
  const MicroKernels& uk = *g.uk;
  const RnnCells& C = cells();
  time_loop(g, T - 1, -1, -1, [&](i64 t, i64 jb, i64 n0, int mr) {
    i64 j0;
    int nr;
    block_cols(g, jb, j0, nr);
    float* dst = t < 0 ? dh0 : dh.data();
    if (t < T - 1) {  // dGh_{t+1} . U^T + dh_{t+1} * z_{t+1}
      const float* aptr[kMaxMR];
      for (int i = 0; i < mr; ++i) aptr[i] = dGh + ((n0 + i) * T + t + 1) * GH;
      const float* b = utpk.data() + jb * GH * g.NR;
      uk.rowptr(1, GH, aptr, &b, g.NR, dst + n0 * H + j0, H, mr, nr, 0, nullptr);
      for (int i = 0; i < mr; ++i) {
        float* d = dst + (n0 + i) * H + j0;
        const float* c = carry.data() + (n0 + i) * H + j0;
        for (int j = 0; j < nr; ++j) d[j] += c[j];
      }
    } else {
      zero_tile(dst, n0, mr, j0, nr, H);
    }
    if (t < 0) return;
    for (int i = 0; i < mr; ++i) {
      const i64 n = n0 + i;
      float* d = dst + n * H + j0;
      add_upstream(d, n, t, T, H, j0, nr, dh_seq, dh_T);
      const float* gz = gates + (n * T + t) * GH + j0;
      const float* gr = gz + H;
      const float* gn = gz + 2 * H;
      const float* hp = prev_row(h0, h_seq, n, t, T, H, z) + (t == 0 && !h0 ? 0 : j0);
      const float* hhv = hh + (n * T + t) * H + j0;
      float* xz = dGx + (n * T + t) * GH + j0;
      float* xr = xz + H;
      float* xn = xz + 2 * H;
      float* hz = dGh + (n * T + t) * GH + j0;
      float* hr = hz + H;
      float* hn = hz + 2 * H;
      float* c = carry.data() + n * H + j0;
      C.gru_cell_bwd(nr, d, gz, gr, gn, hp, hhv, xz, xr, xn, hz, hr, hn, c);
    }
  });
  weight_grads(N, T, I, H, GH, x, kernel, h0, h_seq, dGx, dGh, z, dx, dk, drk, db,
               db ? db + GH : nullptr);
}

// ---------------------------------------------------------------------------
// SimpleRNN (tanh)
void rnn_forward(i64 N, i64 T, i64 I, i64 H, const float* x, const float* kernel,
                 const float* rkernel, const float* bias, const float* h0, float* h_seq,
                 float* h_T) {
  const ForwardSetup f = forward_setup(N, T, I, H, 1, x, kernel, rkernel, bias, h_seq);
  const Grid& g = f.g;
  const float* upk = f.upk.data();
  const float* z = f.zeros.data();
  const RnnCells& C = cells();
  time_loop(g, 0, T - 1, 1, [&](i64 t, i64 jb, i64 n0, int mr) {
    i64 j0;
    int nr;
    block_cols(g, jb, j0, nr);
    const float* aptr[kMaxMR];
    prev_rows(h0, h_seq, n0, mr, t, T, H, z, aptr);
    recurrent_product(g, upk, H, 1, aptr, mr, jb, h_seq + (n0 * T + t) * H, T * H, 0, j0,
                      kAccumulate, nullptr);
    for (int i = 0; i < mr; ++i) {
      float* ho = h_seq + ((n0 + i) * T + t) * H + j0;
      C.tanh_inplace(nr, ho);
    }
  });
  last_step(N, T, H, h_seq, h_T);
}

void rnn_backward(i64 N, i64 T, i64 I, i64 H, const float* dh_seq, const float* dh_T,
                  const float* x, const float* kernel, const float* rkernel,
                  const float* h0, const float* h_seq, float* dx, float* dk, float* drk,
                  float* db, float* dh0) {
  const i64 NT = N * T;
  const Grid g = make_grid(N, H, 1);
  Buffer<float> utpk(static_cast<std::size_t>(g.nblocks * H * g.NR));
  pack_backward(rkernel, H, 1, g.NR, g.nblocks, utpk.data());
  Buffer<float> zeros(static_cast<std::size_t>(H));
  zeros.zero();
  const float* z = zeros.data();
  float* dG = scratch(0, NT * H);
  Buffer<float> dh(static_cast<std::size_t>(N * H));
  const MicroKernels& uk = *g.uk;
  const RnnCells& C = cells();
  time_loop(g, T - 1, -1, -1, [&](i64 t, i64 jb, i64 n0, int mr) {
    i64 j0;
    int nr;
    block_cols(g, jb, j0, nr);
    float* dst = t < 0 ? dh0 : dh.data();
    if (t < T - 1) {
      const float* aptr[kMaxMR];
      for (int i = 0; i < mr; ++i) aptr[i] = dG + ((n0 + i) * T + t + 1) * H;
      const float* b = utpk.data() + jb * H * g.NR;
      uk.rowptr(1, H, aptr, &b, g.NR, dst + n0 * H + j0, H, mr, nr, 0, nullptr);
    } else {
      zero_tile(dst, n0, mr, j0, nr, H);
    }
    if (t < 0) return;
    for (int i = 0; i < mr; ++i) {
      const i64 n = n0 + i;
      float* d = dst + n * H + j0;
      add_upstream(d, n, t, T, H, j0, nr, dh_seq, dh_T);
      const float* hv = h_seq + (n * T + t) * H + j0;
      float* dg = dG + (n * T + t) * H + j0;
      C.rnn_cell_bwd(nr, d, hv, dg);
    }
  });
  weight_grads(N, T, I, H, H, x, kernel, h0, h_seq, dG, dG, z, dx, dk, drk, db,
               nullptr);
}

}  // namespace fastnn

namespace fastnn {
const RnnCells& rnn_cells_generic() { return rnn_generic::table(); }
}  // namespace fastnn
