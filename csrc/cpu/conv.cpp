// 2-D convolution: implicit-GEMM fast path and the plain reference loop nest.
#include "fastnn/conv.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "fastnn/conv_winograd.hpp"
#include "fastnn/gemm.hpp"

namespace fastnn {

namespace {

// ---------------------------------------------------------------------------
// Reference loop nests (float accumulation in the same (r, s, c) order).
void forward_direct(const Conv2dShape& s, const float* x, const float* w, const float* b,
                    float* y, bool relu) {
#pragma omp parallel for num_threads(num_threads()) schedule(static) FASTNN_FP_TEAM
  for (i64 np = 0; np < s.N * s.P; ++np) {
    const i64 n = np / s.P, p = np % s.P;
    for (i64 q = 0; q < s.Q; ++q) {
      float* yo = y + ((n * s.P + p) * s.Q + q) * s.K;
      for (i64 k = 0; k < s.K; ++k) {
        float acc = 0.0f;
        for (i64 r = 0; r < s.R; ++r) {
          const i64 h = p * s.sh - s.pt + r;
          if (h < 0 || h >= s.H) continue;
          for (i64 t = 0; t < s.S; ++t) {
            const i64 ww = q * s.sw - s.pl + t;
            if (ww < 0 || ww >= s.W) continue;
            const float* xi = x + ((n * s.H + h) * s.W + ww) * s.C;
            const float* wi = w + (r * s.S + t) * s.C * s.K + k;
            for (i64 c = 0; c < s.C; ++c) acc += xi[c] * wi[c * s.K];
          }
        }
        if (b) acc += b[k];
        if (relu && acc < 0.0f) acc = 0.0f;
        yo[k] = acc;
      }
    }
  }
}

void backward_data_direct(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
#pragma omp parallel for num_threads(num_threads()) schedule(static) FASTNN_FP_TEAM
  for (i64 nh = 0; nh < s.N * s.H; ++nh) {
    const i64 n = nh / s.H, h = nh % s.H;
    for (i64 ww = 0; ww < s.W; ++ww) {
      float* dxo = dx + ((n * s.H + h) * s.W + ww) * s.C;
      for (i64 c = 0; c < s.C; ++c) {
        float acc = 0.0f;
        for (i64 r = 0; r < s.R; ++r) {
          const i64 ph = h + s.pt - r;
          if (ph < 0 || ph % s.sh) continue;
          const i64 p = ph / s.sh;
          if (p >= s.P) continue;
          for (i64 t = 0; t < s.S; ++t) {
            const i64 qw = ww + s.pl - t;
            if (qw < 0 || qw % s.sw) continue;
            const i64 q = qw / s.sw;
            if (q >= s.Q) continue;
            const float* dyi = dy + ((n * s.P + p) * s.Q + q) * s.K;
            const float* wi = w + ((r * s.S + t) * s.C + c) * s.K;
            for (i64 k = 0; k < s.K; ++k) acc += dyi[k] * wi[k];
          }
        }
        dxo[c] = acc;
      }
    }
  }
}

void backward_weight_direct(const Conv2dShape& s, const float* dy, const float* x, float* dw) {
  const i64 RSC = s.R * s.S * s.C;
#pragma omp parallel for num_threads(num_threads()) schedule(static) FASTNN_FP_TEAM
  for (i64 rsc = 0; rsc < RSC; ++rsc) {
    const i64 r = rsc / (s.S * s.C), t = (rsc / s.C) % s.S, c = rsc % s.C;
    float* dwo = dw + rsc * s.K;
    for (i64 k = 0; k < s.K; ++k) dwo[k] = 0.0f;
    for (i64 n = 0; n < s.N; ++n)
      for (i64 p = 0; p < s.P; ++p) {
        const i64 h = p * s.sh - s.pt + r;
        if (h < 0 || h >= s.H) continue;
        for (i64 q = 0; q < s.Q; ++q) {
          const i64 ww = q * s.sw - s.pl + t;
          if (ww < 0 || ww >= s.W) continue;
          const float xv = x[((n * s.H + h) * s.W + ww) * s.C + c];
          const float* dyi = dy + ((n * s.P + p) * s.Q + q) * s.K;
          for (i64 k = 0; k < s.K; ++k) dwo[k] += xv * dyi[k];
        }
      }
  }
}

// ---------------------------------------------------------------------------
// Implicit GEMM on a zero-padded copy of the input.
//
// out[n][a][b][:] = in[n][a + oh][b + ow][:] when that is inside `in`, else 0,
// for a < Ho, b < Wo. Used to pad x (oh = -pad_top) and, for the data gradient,
// to pad and crop dy.
void shift_pad_nhwc(const float* in, i64 N, i64 Hi, i64 Wi, i64 C, i64 Ho, i64 Wo, i64 oh, i64 ow,
                    float* out) {
  const int nthreads = N * Ho * Wo * C < (i64(1) << 15) ? 1 : num_threads();
#pragma omp parallel for num_threads(nthreads) schedule(static) if (nthreads > 1) FASTNN_FP_TEAM
  for (i64 na = 0; na < N * Ho; ++na) {
    const i64 n = na / Ho, a = na % Ho, h = a + oh;
    float* dst = out + na * Wo * C;
    if (h < 0 || h >= Hi) {
      for (i64 e = 0; e < Wo * C; ++e) dst[e] = 0.0f;
      continue;
    }
    const i64 b0 = std::max<i64>(0, -ow), b1 = std::min<i64>(Wo, Wi - ow);
    for (i64 e = 0; e < b0 * C; ++e) dst[e] = 0.0f;
    if (b1 > b0) std::memcpy(dst + b0 * C, in + ((n * Hi + h) * Wi + b0 + ow) * C, sizeof(float) * (b1 - b0) * C);
    for (i64 e = std::max(b0, b1) * C; e < Wo * C; ++e) dst[e] = 0.0f;
  }
}

// The tile loop shared by the forward pass and the stride-1 data gradient.
// Output rows m = (n, a, b) of an N x A x B grid, in tiles of MR; row m reads R
// segments of `seglen` contiguous floats, segment r at
// src + ((n*Hs + a*sa + r)*Ws + b*sb)*cs; B segment r is the seglen x ncols
// block at wmat + r*seglen*ncols (row stride ncols). out is (N*A*B) x ncols.
// Summation order per output: segments in order, then along each segment.
void segment_gemm(i64 N, i64 A, i64 B, i64 sa, i64 sb, const float* src, i64 Hs, i64 Ws, i64 cs, i64 R,
                  i64 seglen, const float* wmat, i64 ncols, const float* bias, bool relu, float* out) {
  const MicroKernels& uk = micro_kernels();
  const int MR = uk.MR, NR = uk.NR;
  const i64 M = N * A * B, AB = A * B;
  const i64 ntiles = ceil_div(M, MR);
  const i64 npanels = ceil_div(ncols, NR);
  Buffer<float> zeros(static_cast<std::size_t>(seglen));
  zeros.zero();
  Buffer<const float*> bseg(static_cast<std::size_t>(R * npanels));
  for (i64 j = 0; j < npanels; ++j)
    for (i64 r = 0; r < R; ++r) bseg[j * R + r] = wmat + r * seglen * ncols + j * NR;
  const int flags = (bias ? kBias : 0) | (relu ? kRelu : 0);
  const int nthreads = (2.0 * M * ncols * R * seglen < 2.0e5) ? 1 : num_threads();

#pragma omp parallel num_threads(nthreads) if (nthreads > 1) FASTNN_FP_TEAM
  {
    Buffer<const float*> aptr(static_cast<std::size_t>(R * MR));
#pragma omp for schedule(static)
    for (i64 tile = 0; tile < ntiles; ++tile) {
      const i64 m0 = tile * MR;
      const int mr = static_cast<int>(std::min<i64>(MR, M - m0));
      for (int i = 0; i < MR; ++i) {
        if (i >= mr) {
          for (i64 r = 0; r < R; ++r) aptr[r * MR + i] = zeros.data();
          continue;
        }
        const i64 m = m0 + i;
        const i64 n = m / AB, ab = m % AB, a = ab / B, b = ab % B;
        const float* base = src + ((n * Hs + a * sa) * Ws + b * sb) * cs;
        for (i64 r = 0; r < R; ++r) aptr[r * MR + i] = base + r * Ws * cs;
      }
      for (i64 j = 0; j < npanels; ++j) {
        const int nr = static_cast<int>(std::min<i64>(NR, ncols - j * NR));
        uk.rowptr(static_cast<int>(R), seglen, aptr.data(), bseg.data() + j * R, ncols,
                  out + m0 * ncols + j * NR, ncols, mr, nr, flags, bias ? bias + j * NR : nullptr);
      }
    }
  }
}

// Forward: rows are output pixels (n, p, q), columns output channels; the
// reduction runs over R segments (one per kernel row r) of S*C contiguous
// floats of the padded input -- row p*sh + r, columns q*sw .. q*sw + S - 1 --
// against the S*C x K block of w for that r, read in place.
void forward_gemm(const Conv2dShape& s, const float* x, const float* w, const float* b,
                  float* y, bool relu) {
  const i64 Hp = s.H + s.pt + s.pb, Wp = s.W + s.pl + s.pr;
  const bool padded = s.pt || s.pb || s.pl || s.pr;
  Buffer<float> xpad(static_cast<std::size_t>(padded ? s.N * Hp * Wp * s.C : 1));
  if (padded) shift_pad_nhwc(x, s.N, s.H, s.W, s.C, Hp, Wp, -s.pt, -s.pl, xpad.data());
  segment_gemm(s.N, s.P, s.Q, s.sh, s.sw, padded ? xpad.data() : x, Hp, Wp, s.C, s.R, s.S * s.C, w, s.K, b,
               relu, y);
}

// wf[r'][s'][k][c] = w[R-1-r'][S-1-s'][c][k]: the kernel of the data gradient
// seen as a convolution of dy.
void flip_transpose_weights(const Conv2dShape& s, const float* w, float* wf) {
  for (i64 r = 0; r < s.R; ++r)
    for (i64 t = 0; t < s.S; ++t) {
      const float* src = w + ((s.R - 1 - r) * s.S + (s.S - 1 - t)) * s.C * s.K;
      float* dst = wf + (r * s.S + t) * s.K * s.C;
      for (i64 c = 0; c < s.C; ++c)
        for (i64 k = 0; k < s.K; ++k) dst[k * s.C + c] = src[c * s.K + k];
    }
}

// Data gradient, stride 1: dx = conv(dy padded by (R-1-pt, S-1-pl), w flipped
// in (r, s) and transposed to (K, C)): the forward tile loop with rows = input
// pixels and R segments of S*K contiguous floats of padded dy.
void backward_data_stride1(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  const i64 Hq = s.H + s.R - 1, Wq = s.W + s.S - 1;
  Buffer<float> dyp(static_cast<std::size_t>(s.N * Hq * Wq * s.K));
  shift_pad_nhwc(dy, s.N, s.P, s.Q, s.K, Hq, Wq, s.pt - (s.R - 1), s.pl - (s.S - 1), dyp.data());
  Buffer<float> wf(static_cast<std::size_t>(s.R * s.S * s.K * s.C));
  flip_transpose_weights(s, w, wf.data());
  segment_gemm(s.N, s.H, s.W, 1, 1, dyp.data(), Hq, Wq, s.K, s.R, s.S * s.K, wf.data(), s.C, nullptr, false, dx);
}

// Data gradient, any stride: rows are input pixels (n, h, w), columns input channels, the
// reduction runs over (r, s) segments of K output channels: dy at output pixel
// ((h + pt - r)/sh, (w + pl - s)/sw) when that is an integer inside the output,
// else zeros. B segment (r, s) is w[r, s]^T (K x C), transposed once per call.
void backward_data_strided(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  const MicroKernels& uk = micro_kernels();
  const int MR = uk.MR, NR = uk.NR;
  const i64 M = s.N * s.H * s.W;
  const i64 nseg = s.R * s.S;
  const i64 ntiles = ceil_div(M, MR);
  const i64 npanels = ceil_div(s.C, NR);
  const i64 HW = s.H * s.W;
  Buffer<float> zeros(static_cast<std::size_t>(s.K));
  zeros.zero();
  Buffer<float> wt(static_cast<std::size_t>(nseg * s.K * s.C));
  for (i64 g = 0; g < nseg; ++g)
    for (i64 c = 0; c < s.C; ++c)
      for (i64 k = 0; k < s.K; ++k) wt[(g * s.K + k) * s.C + c] = w[(g * s.C + c) * s.K + k];
  Buffer<const float*> bseg(static_cast<std::size_t>(nseg * npanels));
  for (i64 j = 0; j < npanels; ++j)
    for (i64 g = 0; g < nseg; ++g) bseg[j * nseg + g] = wt.data() + g * s.K * s.C + j * NR;
  const int nthreads = (2.0 * M * s.K * nseg * s.C < 2.0e5) ? 1 : num_threads();

#pragma omp parallel num_threads(nthreads) if (nthreads > 1) FASTNN_FP_TEAM
  {
    Buffer<const float*> aptr(static_cast<std::size_t>(nseg * MR));
#pragma omp for schedule(static)
    for (i64 tile = 0; tile < ntiles; ++tile) {
      const i64 m0 = tile * MR;
      const int mr = static_cast<int>(std::min<i64>(MR, M - m0));
      for (int i = 0; i < MR; ++i) {
        if (i >= mr) {
          for (i64 g = 0; g < nseg; ++g) aptr[g * MR + i] = zeros.data();
          continue;
        }
        const i64 m = m0 + i;
        const i64 n = m / HW, hw = m % HW, h = hw / s.W, ww = hw % s.W;
        const float* dyn = dy + n * s.P * s.Q * s.K;
        for (i64 r = 0; r < s.R; ++r) {
          // output row p with p*sh = h + pt - r (divisions only for strides > 1)
          i64 ph = h + s.pt - r, p = ph;
          bool pin = ph >= 0;
          if (s.sh > 1 && pin) {
            pin = ph % s.sh == 0;
            p = ph / s.sh;
          }
          pin = pin && p < s.P;
          for (i64 t = 0; t < s.S; ++t) {
            i64 qw = ww + s.pl - t, q = qw;
            bool in = pin && qw >= 0;
            if (s.sw > 1 && in) {
              in = qw % s.sw == 0;
              q = qw / s.sw;
            }
            in = in && q < s.Q;
            aptr[(r * s.S + t) * MR + i] = in ? dyn + (p * s.Q + q) * s.K : zeros.data();
          }
        }
      }
      for (i64 j = 0; j < npanels; ++j) {
        const int nr = static_cast<int>(std::min<i64>(NR, s.C - j * NR));
        uk.rowptr(static_cast<int>(nseg), s.K, aptr.data(), bseg.data() + j * nseg, s.C,
                  dx + m0 * s.C + j * NR, s.C, mr, nr, 0, nullptr);
      }
    }
  }
}

// Weight gradient: dw[r][(s, c)][k] = sum over output pixels m of
// xpad[n][p*sh + r][q*sw + s][c] * dy[m][k]. For each kernel row r the S*C
// values (s, c) are contiguous in the padded input, and along an output row the
// pixels are a fixed stride (sw*C) apart, so the micro-kernel walks each output
// row as one strided segment -- no per-pixel pointers. The reduction over the
// N*P output rows is cut into chunks of whole rows fixed by the shape alone;
// each chunk's sum goes to its own partial buffer (any thread may compute it),
// and the partials are added in chunk order, so the result does not depend on
// the thread count.
constexpr i64 kWeightGradChunk = 1024;   // output pixels per chunk (rounded to rows)
constexpr i64 kWeightGradSub = 64;      // pixels per L1-sized group inside a chunk
constexpr i64 kWeightGradPartialFloats = i64(16) << 20;  // cap on partial-sum memory

void backward_weight_gemm(const Conv2dShape& s, const float* dy, const float* x, float* dw) {
  const MicroKernels& uk = micro_kernels();
  const int MR = uk.MR, NR = uk.NR;
  const i64 rows = s.N * s.P;  // output rows (n, p)
  const i64 SC = s.S * s.C;
  const i64 wsize = s.R * SC * s.K;
  if (rows * s.Q == 0) {
    for (i64 i = 0; i < wsize; ++i) dw[i] = 0.0f;
    return;
  }
  const i64 Hp = s.H + s.pt + s.pb, Wp = s.W + s.pl + s.pr;
  const bool padded = s.pt || s.pb || s.pl || s.pr;
  Buffer<float> xpad(static_cast<std::size_t>(padded ? s.N * Hp * Wp * s.C : 1));
  if (padded) shift_pad_nhwc(x, s.N, s.H, s.W, s.C, Hp, Wp, -s.pt, -s.pl, xpad.data());
  const float* xp = padded ? xpad.data() : x;
  i64 chunk_rows = std::max<i64>(1, kWeightGradChunk / s.Q);
  const i64 max_partials = std::max<i64>(1, kWeightGradPartialFloats / wsize);
  chunk_rows = std::max(chunk_rows, ceil_div(rows, max_partials));
  const i64 group_rows = std::max<i64>(1, std::min(chunk_rows, kWeightGradSub / s.Q));
  const i64 nchunks = ceil_div(rows, chunk_rows);
  Buffer<float> partial(static_cast<std::size_t>(nchunks > 1 ? nchunks * wsize : 1));
  const i64 rblocks = ceil_div(SC, MR), kpanels = ceil_div(s.K, NR);
  const int nthreads = (2.0 * rows * s.Q * wsize < 2.0e5 || nchunks == 1) ? 1 : num_threads();

#pragma omp parallel num_threads(nthreads) if (nthreads > 1) FASTNN_FP_TEAM
  {
    Buffer<const float*> aseg(static_cast<std::size_t>(chunk_rows));
    Buffer<const float*> bseg(static_cast<std::size_t>(chunk_rows * kpanels));
    // Any schedule gives the same bits: each chunk has its own partial buffer.
#pragma omp for schedule(dynamic, 1)
    for (i64 ch = 0; ch < nchunks; ++ch) {
      const i64 row0 = ch * chunk_rows;
      const i64 nrows = std::min<i64>(chunk_rows, rows - row0);
      float* out = nchunks > 1 ? partial.data() + ch * wsize : dw;
      for (i64 t = 0; t < nrows; ++t) {
        const i64 np = row0 + t, n = np / s.P, p = np % s.P;
        aseg[t] = xp + (n * Hp + p * s.sh) * Wp * s.C;
        for (i64 j = 0; j < kpanels; ++j) bseg[j * chunk_rows + t] = dy + np * s.Q * s.K + j * NR;
      }
      for (i64 g0 = 0; g0 < nrows; g0 += group_rows) {
        const int ng = static_cast<int>(std::min<i64>(group_rows, nrows - g0));
        const int flags = g0 == 0 ? 0 : kAccumulate;
        for (i64 r = 0; r < s.R; ++r)
          for (i64 rb = 0; rb < rblocks; ++rb)
            for (i64 j = 0; j < kpanels; ++j) {
              const i64 r0 = rb * MR, k0 = j * NR;
              const int mr = static_cast<int>(std::min<i64>(MR, SC - r0));
              const int nr = static_cast<int>(std::min<i64>(NR, s.K - k0));
              uk.colseg(ng, s.Q, aseg.data() + g0, s.sw * s.C, r * Wp * s.C + r0,
                        bseg.data() + j * chunk_rows + g0, s.K, out + (r * SC + r0) * s.K + k0, s.K,
                        mr, nr, flags);
            }
      }
    }
    if (nchunks > 1) {
      // dw = ((p0 + p1) + p2) + ... in chunk order, element-wise.
#pragma omp for schedule(static)
      for (i64 e0 = 0; e0 < wsize; e0 += 256) {
        const i64 e1 = std::min<i64>(wsize, e0 + 256);
        for (i64 e = e0; e < e1; ++e) dw[e] = partial[e];
        for (i64 ch = 1; ch < nchunks; ++ch) {
          const float* pc = partial.data() + ch * wsize;
          for (i64 e = e0; e < e1; ++e) dw[e] += pc[e];
        }
      }
    }
  }
}

ConvAlgorithm resolve(const Conv2dShape& s, ConvAlgorithm algo) {
  if (algo == ConvAlgorithm::automatic) return conv2d_auto_algorithm(s);
  if (is_winograd(algo) && !winograd_supported(s.R, s.S, s.sh, s.sw))
    throw std::invalid_argument("algorithm: 'winograd' needs a 3x3 or 5x5 kernel with stride 1");
  return algo;
}

// The Winograd output tile (2 or 4) of a resolved Winograd algorithm for the
// convolution that produces a P x Q output.
int winograd_tile(ConvAlgorithm a, i64 r, i64 P, i64 Q) {
  if (a == ConvAlgorithm::winograd_f2x2) return 2;
  if (a == ConvAlgorithm::winograd_f4x4) return 4;
  return winograd_auto_tile(r, P, Q);
}

}  // namespace

ConvAlgorithm conv2d_auto_algorithm(const Conv2dShape& s) {
  // Winograd F(2x2, r x r) for stride-1 3x3 / 5x5 kernels with at least 16 input
  // and 16 output channels (its transforms are then amortized: on the workbook
  // layers it is 1.15-1.3x faster than the implicit GEMM, AVX-512, 2 threads);
  // the implicit GEMM everywhere else. A rule of the shape only.
  if (winograd_supported(s.R, s.S, s.sh, s.sw) && s.C >= 16 && s.K >= 16) return ConvAlgorithm::winograd;
  return ConvAlgorithm::gemm;
}

void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* b,
                    float* y, bool relu, ConvAlgorithm algo) {
  if (s.N * s.P * s.Q == 0) return;
  const ConvAlgorithm a = resolve(s, algo);
  if (a == ConvAlgorithm::direct) {
    forward_direct(s, x, w, b, y, relu);
  } else if (is_winograd(a)) {
    winograd_conv2d(s.N, s.H, s.W, s.C, s.K, winograd_tile(a, s.R, s.P, s.Q), static_cast<int>(s.R),
                    s.pt, s.pl, s.P, s.Q, x, w, b, y, relu);
  } else {
    forward_gemm(s, x, w, b, y, relu);
  }
}

void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx,
                          ConvAlgorithm algo) {
  if (s.N * s.H * s.W == 0) return;
  const ConvAlgorithm a = resolve(s, algo);
  if (a == ConvAlgorithm::direct) {
    backward_data_direct(s, dy, w, dx);
  } else if (is_winograd(a)) {
    // dx = conv(dy, w flipped in (r, s) and transposed to (K, C)), padding R-1-pt.
    Buffer<float> wf(static_cast<std::size_t>(s.R * s.S * s.K * s.C));
    flip_transpose_weights(s, w, wf.data());
    winograd_conv2d(s.N, s.P, s.Q, s.K, s.C, winograd_tile(a, s.R, s.H, s.W), static_cast<int>(s.R), s.R - 1 - s.pt, s.S - 1 - s.pl, s.H, s.W,
                    dy, wf.data(), nullptr, dx, false);
  } else if (s.sh == 1 && s.sw == 1) {
    backward_data_stride1(s, dy, w, dx);
  } else {
    backward_data_strided(s, dy, w, dx);
  }
}

void conv2d_backward_weight(const Conv2dShape& s, const float* dy, const float* x, float* dw,
                            ConvAlgorithm algo) {
  const ConvAlgorithm a = resolve(s, algo);
  if (a == ConvAlgorithm::direct) {
    backward_weight_direct(s, dy, x, dw);
  } else if (is_winograd(a)) {
    winograd_conv2d_backward_weight(s.N, s.H, s.W, s.C, s.K, winograd_tile(a, s.R, s.P, s.Q), static_cast<int>(s.R),
                                    s.pt, s.pl, s.P, s.Q, x, dy, dw);
  } else {
    backward_weight_gemm(s, dy, x, dw);
  }
}

void conv2d_backward_bias(const Conv2dShape& s, const float* dy, float* db) {
  const i64 M = s.N * s.P * s.Q;
  constexpr i64 kCols = 16;
  const i64 nblocks = ceil_div(s.K, kCols);
  const int nthreads = M * s.K < 65536 ? 1 : num_threads();
#pragma omp parallel for num_threads(nthreads) schedule(static) if (nthreads > 1) FASTNN_FP_TEAM
  for (i64 blk = 0; blk < nblocks; ++blk) {
    const i64 k0 = blk * kCols, kn = std::min<i64>(kCols, s.K - k0);
    double acc[kCols] = {};
    for (i64 m = 0; m < M; ++m) {
      const float* row = dy + m * s.K + k0;
      for (i64 k = 0; k < kn; ++k) acc[k] += row[k];
    }
    for (i64 k = 0; k < kn; ++k) db[k0 + k] = static_cast<float>(acc[k]);
  }
}

}  // namespace fastnn
