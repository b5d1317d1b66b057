// Gate element loops of the recurrent kernels, compiled once per ISA: included by
// rnn.cpp (baseline, namespace rnn_generic), rnn_avx2.cpp and rnn_avx512.cpp with
// FASTNN_RNN_NS set. Each loop is restrict-qualified and not inlined, so GCC
// vectorizes it without run-time alias checks. Results may differ between ISAs
// (vector width, FMA contraction) but never with the thread count.
#ifndef FASTNN_RNN_CELLS_DECL
#define FASTNN_RNN_CELLS_DECL
#include "fastnn/activation.hpp"
#include "fastnn/common.hpp"
#define RNN_R __restrict
namespace fastnn {
struct RnnCells {
  // LSTM cells of a whole mr x nr tile; row i of each operand starts at base + i*stride,
  // the four gates of a row at +0, +H, +2H, +3H of its gate row.
  void (*lstm_tile_fwd)(int mr, int nr, i64 H, float* g, i64 gs, const float* cp, i64 cps,
                        float* co, float* ho, i64 hs);
  void (*lstm_tile_bwd)(int mr, int nr, i64 H, const float* d, i64 ds, const float* g, i64 gs,
                        const float* cc, i64 cs, const float* cp, i64 cps, float* dc,
                        float* dg, i64 dgs);
  void (*gru_cell_fwd)(int nr, float* RNN_R gz, float* RNN_R gr, float* RNN_R gn, const float* RNN_R rz, const float* RNN_R rr, const float* RNN_R rh, const float* RNN_R hp, float* RNN_R hho, float* RNN_R ho);
  void (*gru_cell_bwd)(int nr, const float* RNN_R d, const float* RNN_R gz, const float* RNN_R gr, const float* RNN_R gn, const float* RNN_R hp, const float* RNN_R hhv, float* RNN_R xz, float* RNN_R xr, float* RNN_R xn, float* RNN_R hz, float* RNN_R hr, float* RNN_R hn, float* RNN_R c);
  void (*tanh_inplace)(int nr, float* RNN_R h);
  void (*rnn_cell_bwd)(int nr, const float* RNN_R d, const float* RNN_R hv, float* RNN_R dg);
};
const RnnCells& rnn_cells_generic();
#ifdef FASTNN_X86
const RnnCells& rnn_cells_avx2();
const RnnCells& rnn_cells_avx512();
#endif
}  // namespace fastnn
#endif  // FASTNN_RNN_CELLS_DECL

#ifdef FASTNN_RNN_NS
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
namespace fastnn {
namespace FASTNN_RNN_NS {
namespace {

// The loops run over a local copy padded to a multiple of 16 lanes (zeros beyond
// nr), so they have no scalar remainder; only the first nr results are stored.
constexpr int kW = 32;  // >= NR of every ISA's micro-kernel
inline int padded(int nr) { return (nr + 15) & ~15; }
inline void load(int nr, int np, const float* RNN_R src, float* RNN_R dst) {
  for (int j = 0; j < nr; ++j) dst[j] = src[j];
  for (int j = nr; j < np; ++j) dst[j] = 0.0f;
}
inline void store(int nr, const float* RNN_R src, float* RNN_R dst) {
  for (int j = 0; j < nr; ++j) dst[j] = src[j];
}

constexpr int kT = 16 * kW;  // >= MR * NR of every ISA's micro-kernel

// Gate non-linearities of the cells: one exponential and one division each, written
// so that GCC vectorizes the loops that call them. e^x for x in [-88, 88] is
// 2^n * p(r) with n = round(x / ln2), |r| <= ln2 / 2 and p the degree-6 Taylor
// polynomial (relative error below 3e-7); sigmoid saturates to exactly 0 / 1
// beyond |x| = 88 and tanh(x) = 2 sigmoid(2x) - 1 (absolute error below 2e-7, the
// accuracy that matters for a cell state). NaN in, NaN out.
inline float clamp88(float x) {
  const float lo = x < -88.0f ? -88.0f : x;  // NaN stays NaN
  return lo > 88.0f ? 88.0f : lo;
}
inline float cell_exp(float x) {
  const float kMagic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float nf = (x * 1.44269504088896341f + kMagic) - kMagic;
  float r = x - nf * 0.693359375f;  // ln2 split (Cody-Waite)
  r = r - nf * -2.12194440e-4f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  return p * vmath::pow2i(static_cast<std::int32_t>(nf));  // n = -127 gives 0: fine here
}
// NaN needs no select: it survives the clamp, makes p NaN, and NaN * anything is NaN.
inline float cell_sigmoid(float x) { return 1.0f / (1.0f + cell_exp(-clamp88(x))); }
inline float cell_tanh(float x) { return 2.0f / (1.0f + cell_exp(-clamp88(2.0f * x))) - 1.0f; }

// Rows of a tile gathered densely (k = i*nr + j), padded to a multiple of 16 lanes.
// With AVX-512 a row (nr <= kW = 32 floats) moves as two masked vectors; a plain loop
// would become one memcpy call per row (GCC's loop distribution), ~130 calls a tile.
#if defined(__AVX512F__)
inline __mmask16 row_mask(int n) {
  return n >= 16 ? static_cast<__mmask16>(0xFFFF) : n <= 0 ? static_cast<__mmask16>(0) : static_cast<__mmask16>((1u << n) - 1u);
}
inline void copy_row(int nr, const float* src, float* dst) {
  const __mmask16 m0 = row_mask(nr), m1 = row_mask(nr - 16);
  _mm512_mask_storeu_ps(dst, m0, _mm512_maskz_loadu_ps(m0, src));
  _mm512_mask_storeu_ps(dst + 16, m1, _mm512_maskz_loadu_ps(m1, src + 16));
}
#else
inline void copy_row(int nr, const float* RNN_R src, float* RNN_R dst) {
  for (int j = 0; j < nr; ++j) dst[j] = src[j];
}
#endif
inline void gather(int mr, int nr, int np, const float* RNN_R src, i64 stride,
                   float* RNN_R dst) {
  for (int i = 0; i < mr; ++i) copy_row(nr, src + i * stride, dst + i * nr);
  for (int k = mr * nr; k < np; ++k) dst[k] = 0.0f;
}
inline void scatter(int mr, int nr, const float* RNN_R src, float* RNN_R dst, i64 stride) {
  for (int i = 0; i < mr; ++i) copy_row(nr, src + i * nr, dst + i * stride);
}

__attribute__((noinline)) void lstm_tile_fwd(int mr, int nr, i64 H, float* g, i64 gs,
                                             const float* cp, i64 cps, float* co, float* ho,
                                             i64 hs) {
  alignas(64) float i_[kT], f_[kT], g_[kT], o_[kT], p_[kT], c_[kT], h_[kT];
  const int np = padded(mr * nr);
  gather(mr, nr, np, g, gs, i_);
  gather(mr, nr, np, g + H, gs, f_);
  gather(mr, nr, np, g + 2 * H, gs, g_);
  gather(mr, nr, np, g + 3 * H, gs, o_);
  gather(mr, nr, np, cp, cps, p_);
  for (int j = 0; j < np; ++j) {
    const float ig = cell_sigmoid(i_[j]);
    const float fg = cell_sigmoid(f_[j]);
    const float cg = cell_tanh(g_[j]);
    const float og = cell_sigmoid(o_[j]);
    const float c = fg * p_[j] + ig * cg;
    i_[j] = ig;
    f_[j] = fg;
    g_[j] = cg;
    o_[j] = og;
    c_[j] = c;
    h_[j] = og * cell_tanh(c);
  }
  scatter(mr, nr, i_, g, gs);
  scatter(mr, nr, f_, g + H, gs);
  scatter(mr, nr, g_, g + 2 * H, gs);
  scatter(mr, nr, o_, g + 3 * H, gs);
  scatter(mr, nr, c_, co, hs);
  scatter(mr, nr, h_, ho, hs);
}

// dc (mr x nr, row stride H) is the running cell gradient: read, then overwritten with
// dc * f for the previous step. dg rows receive [di, df, dg, do].
__attribute__((noinline)) void lstm_tile_bwd(int mr, int nr, i64 H, const float* d, i64 ds,
                                             const float* g, i64 gs, const float* cc, i64 cs,
                                             const float* cp, i64 cps, float* dc, float* dg,
                                             i64 dgs) {
  alignas(64) float d_[kT], i_[kT], f_[kT], g_[kT], o_[kT], c_[kT], p_[kT], dc_[kT];
  alignas(64) float di_[kT], df_[kT], dg_[kT], do_[kT];
  const int np = padded(mr * nr);
  gather(mr, nr, np, d, ds, d_);
  gather(mr, nr, np, g, gs, i_);
  gather(mr, nr, np, g + H, gs, f_);
  gather(mr, nr, np, g + 2 * H, gs, g_);
  gather(mr, nr, np, g + 3 * H, gs, o_);
  gather(mr, nr, np, cc, cs, c_);
  gather(mr, nr, np, cp, cps, p_);
  gather(mr, nr, np, dc, H, dc_);
  for (int j = 0; j < np; ++j) {
    const float ig = i_[j], fg = f_[j], cg = g_[j], og = o_[j];
    const float tc = cell_tanh(c_[j]);
    const float dcv = dc_[j] + d_[j] * og * (1.0f - tc * tc);
    do_[j] = d_[j] * tc * (og * (1.0f - og));
    di_[j] = dcv * cg * (ig * (1.0f - ig));
    dg_[j] = dcv * ig * (1.0f - cg * cg);
    df_[j] = dcv * p_[j] * (fg * (1.0f - fg));
    dc_[j] = dcv * fg;
  }
  scatter(mr, nr, dc_, dc, H);
  scatter(mr, nr, di_, dg, dgs);
  scatter(mr, nr, df_, dg + H, dgs);
  scatter(mr, nr, dg_, dg + 2 * H, dgs);
  scatter(mr, nr, do_, dg + 3 * H, dgs);
}

__attribute__((noinline)) void gru_cell_fwd(int nr, float* RNN_R gz, float* RNN_R gr,
                                            float* RNN_R gn, const float* RNN_R rz,
                                            const float* RNN_R rr, const float* RNN_R rh,
                                            const float* RNN_R hp, float* RNN_R hho,
                                            float* RNN_R ho) {
  alignas(64) float z_[kW], r_[kW], n_[kW], rz_[kW], rr_[kW], rh_[kW], hp_[kW], h_[kW];
  const int np = padded(nr);
  load(nr, np, gz, z_);
  load(nr, np, gr, r_);
  load(nr, np, gn, n_);
  load(nr, np, rz, rz_);
  load(nr, np, rr, rr_);
  load(nr, np, rh, rh_);
  load(nr, np, hp, hp_);
  for (int j = 0; j < np; ++j) {
    const float zg = cell_sigmoid(z_[j] + rz_[j]);
    const float rg = cell_sigmoid(r_[j] + rr_[j]);
    const float ng = cell_tanh(n_[j] + rg * rh_[j]);
    z_[j] = zg;
    r_[j] = rg;
    n_[j] = ng;
    h_[j] = zg * hp_[j] + (1.0f - zg) * ng;
  }
  store(nr, z_, gz);
  store(nr, r_, gr);
  store(nr, n_, gn);
  store(nr, rh_, hho);
  store(nr, h_, ho);
}

__attribute__((noinline)) void gru_cell_bwd(int nr, const float* RNN_R d, const float* RNN_R gz,
                                            const float* RNN_R gr, const float* RNN_R gn,
                                            const float* RNN_R hp, const float* RNN_R hhv,
                                            float* RNN_R xz, float* RNN_R xr, float* RNN_R xn,
                                            float* RNN_R hz, float* RNN_R hr, float* RNN_R hn,
                                            float* RNN_R c) {
  // No transcendental functions here: the plain loop vectorizes well enough.
  for (int j = 0; j < nr; ++j) {
    const float zg = gz[j], rg = gr[j], ng = gn[j];
    const float dz = d[j] * (hp[j] - ng) * (zg * (1.0f - zg));
    const float dn = d[j] * (1.0f - zg) * (1.0f - ng * ng);
    const float dr = dn * hhv[j] * (rg * (1.0f - rg));
    xz[j] = dz;
    xr[j] = dr;
    xn[j] = dn;
    hz[j] = dz;
    hr[j] = dr;
    hn[j] = dn * rg;
    c[j] = d[j] * zg;
  }
}

__attribute__((noinline)) void tanh_inplace(int nr, float* RNN_R h) {
  alignas(64) float h_[kW];
  const int np = padded(nr);
  load(nr, np, h, h_);
  for (int j = 0; j < np; ++j) h_[j] = cell_tanh(h_[j]);
  store(nr, h_, h);
}

__attribute__((noinline)) void rnn_cell_bwd(int nr, const float* RNN_R d, const float* RNN_R hv,
                                            float* RNN_R dg) {
  for (int j = 0; j < nr; ++j) dg[j] = d[j] * (1.0f - hv[j] * hv[j]);
}

}  // namespace

inline const RnnCells& table() {
  static const RnnCells t{lstm_tile_fwd, lstm_tile_bwd, gru_cell_fwd, gru_cell_bwd, tanh_inplace, rnn_cell_bwd};
  return t;
}

}  // namespace FASTNN_RNN_NS
}  // namespace fastnn
#undef FASTNN_RNN_NS
#endif
