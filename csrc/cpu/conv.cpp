// 2-D convolution: implicit-GEMM fast path and the plain reference loop nest.
#include "fastnn/conv.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "fastnn/gemm.hpp"

namespace fastnn {

void conv2d_finish_shape(Conv2dShape& s) {
  const i64 hp = s.H + s.pt + s.pb, wp = s.W + s.pl + s.pr;
  if (s.R > hp || s.S > wp)
    throw std::invalid_argument("w: kernel (" + std::to_string(s.R) + ", " + std::to_string(s.S) +
                                ") is larger than the padded input (" + std::to_string(hp) +
                                ", " + std::to_string(wp) + ")");
  s.P = (hp - s.R) / s.sh + 1;
  s.Q = (wp - s.S) / s.sw + 1;
}

namespace {

// ---------------------------------------------------------------------------
// Reference loop nests (float accumulation in the same (r, s, c) order).
void forward_direct(const Conv2dShape& s, const float* x, const float* w, const float* b,
                    float* y, bool relu) {
#pragma omp parallel for num_threads(num_threads()) schedule(static)
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
#pragma omp parallel for num_threads(num_threads()) schedule(static)
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
#pragma omp parallel for num_threads(num_threads()) schedule(static)
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
// Implicit GEMM.
//
// Forward: rows are output pixels m = (n, p, q) in tiles of MR, columns are
// output channels in panels of NR, and the reduction runs over R*S segments of
// C channels. B is the weight itself: segment (r, s) is the C x K block at
// w + (r*S + s)*C*K, read with row stride K (no packing).
void forward_gemm(const Conv2dShape& s, const float* x, const float* w, const float* b,
                  float* y, bool relu) {
  const MicroKernels& uk = micro_kernels();
  const int MR = uk.MR, NR = uk.NR;
  const i64 M = s.N * s.P * s.Q;
  const i64 nseg = s.R * s.S;
  const i64 ntiles = ceil_div(M, MR);
  const i64 npanels = ceil_div(s.K, NR);
  Buffer<float> zeros(static_cast<std::size_t>(s.C));
  zeros.zero();
  Buffer<const float*> bseg(static_cast<std::size_t>(nseg * npanels));
  for (i64 j = 0; j < npanels; ++j)
    for (i64 g = 0; g < nseg; ++g) bseg[j * nseg + g] = w + g * s.C * s.K + j * NR;
  const int flags = (b ? kBias : 0) | (relu ? kRelu : 0);
  const i64 PQ = s.P * s.Q;
  const int nthreads = (2.0 * M * s.K * nseg * s.C < 2.0e5) ? 1 : num_threads();

#pragma omp parallel num_threads(nthreads) if (nthreads > 1)
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
        const i64 n = m / PQ, pq = m % PQ, p = pq / s.Q, q = pq % s.Q;
        const i64 h0 = p * s.sh - s.pt, w0 = q * s.sw - s.pl;
        const float* xn = x + n * s.H * s.W * s.C;
        for (i64 r = 0; r < s.R; ++r) {
          const i64 h = h0 + r;
          const bool hin = h >= 0 && h < s.H;
          for (i64 t = 0; t < s.S; ++t) {
            const i64 ww = w0 + t;
            aptr[(r * s.S + t) * MR + i] =
                (hin && ww >= 0 && ww < s.W) ? xn + (h * s.W + ww) * s.C : zeros.data();
          }
        }
      }
      for (i64 j = 0; j < npanels; ++j) {
        const int nr = static_cast<int>(std::min<i64>(NR, s.K - j * NR));
        uk.rowptr(static_cast<int>(nseg), s.C, aptr.data(), bseg.data() + j * nseg, s.K,
                  y + m0 * s.K + j * NR, s.K, mr, nr, flags, b ? b + j * NR : nullptr);
      }
    }
  }
}

// Backward data: rows are input pixels (n, h, w), columns input channels, the
// reduction runs over (r, s) segments of K output channels: dy at output pixel
// ((h + pt - r)/sh, (w + pl - s)/sw) when that is an integer inside the output,
// else zeros. B segment (r, s) is w[r, s]^T (K x C), transposed once per call.
void backward_data_gemm(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
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

#pragma omp parallel num_threads(nthreads) if (nthreads > 1)
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

// Backward weight: dw[r, s] (C x K) = sum over output pixels m of
// x_pixel(m shifted by r, s)^T (x) dy[m]. The reduction over m is cut into
// chunks fixed by the shape alone; each chunk's sum is computed by one thread
// into its own partial buffer, and the partials are added in chunk order, so
// the result does not depend on the thread count. Within a chunk the
// micro-kernel reads one input pixel per m through a pointer table (C >= MR),
// or, for few channels, an im2col row of R*S*C values per m.
constexpr i64 kWeightGradChunk = 1024;
constexpr i64 kWeightGradPartialFloats = i64(16) << 20;  // cap on partial-sum memory

void backward_weight_gemm(const Conv2dShape& s, const float* dy, const float* x, float* dw) {
  const MicroKernels& uk = micro_kernels();
  const int MR = uk.MR, NR = uk.NR;
  const i64 M = s.N * s.P * s.Q;
  const i64 nseg = s.R * s.S;
  const i64 RSC = nseg * s.C;
  const i64 PQ = s.P * s.Q;
  const i64 wsize = RSC * s.K;
  if (M == 0) {
    for (i64 i = 0; i < wsize; ++i) dw[i] = 0.0f;
    return;
  }
  const bool im2col = s.C < MR;
  i64 chunk = kWeightGradChunk;
  const i64 max_partials = std::max<i64>(1, kWeightGradPartialFloats / wsize);
  chunk = std::max(chunk, ceil_div(M, max_partials));
  const i64 nchunks = ceil_div(M, chunk);
  Buffer<float> partial(static_cast<std::size_t>(nchunks > 1 ? nchunks * wsize : 1));
  Buffer<float> zeros(static_cast<std::size_t>(s.C));
  zeros.zero();
  const i64 rblocks = im2col ? ceil_div(RSC, MR) : ceil_div(s.C, MR);
  const i64 kpanels = ceil_div(s.K, NR);
  const int nthreads = (2.0 * M * wsize < 2.0e5 || nchunks == 1) ? 1 : num_threads();

#pragma omp parallel num_threads(nthreads) if (nthreads > 1)
  {
    Buffer<const float*> ptrs(static_cast<std::size_t>((im2col ? 1 : nseg) * chunk));
    Buffer<float> cols(static_cast<std::size_t>(im2col ? chunk * RSC : 1));
    Buffer<i64> pix_h(static_cast<std::size_t>(chunk)), pix_w(static_cast<std::size_t>(chunk));
    Buffer<const float*> pix_base(static_cast<std::size_t>(chunk));
    // Any schedule gives the same bits: each chunk has its own partial buffer.
#pragma omp for schedule(dynamic, 1)
    for (i64 ch = 0; ch < nchunks; ++ch) {
      const i64 m0 = ch * chunk;
      const i64 len = std::min<i64>(chunk, M - m0);
      float* out = nchunks > 1 ? partial.data() + ch * wsize : dw;
      const float* dyc = dy + m0 * s.K;
      if (im2col) {
        for (i64 i = 0; i < len; ++i) {
          const i64 m = m0 + i;
          const i64 n = m / PQ, pq = m % PQ, p = pq / s.Q, q = pq % s.Q;
          float* row = cols.data() + i * RSC;
          for (i64 r = 0; r < s.R; ++r)
            for (i64 t = 0; t < s.S; ++t) {
              const i64 h = p * s.sh - s.pt + r, ww = q * s.sw - s.pl + t;
              const bool in = h >= 0 && h < s.H && ww >= 0 && ww < s.W;
              const float* src = x + ((n * s.H + h) * s.W + ww) * s.C;
              for (i64 c = 0; c < s.C; ++c) row[(r * s.S + t) * s.C + c] = in ? src[c] : 0.0f;
            }
          ptrs[i] = row;
        }
        for (i64 task = 0; task < rblocks * kpanels; ++task) {
          const i64 rb = task / kpanels, j = task % kpanels;
          const i64 r0 = rb * MR, k0 = j * NR;
          const int mr = static_cast<int>(std::min<i64>(MR, RSC - r0));
          const int nr = static_cast<int>(std::min<i64>(NR, s.K - k0));
          uk.colptr(len, ptrs.data(), r0, dyc + k0, s.K, out + r0 * s.K + k0, s.K, mr, nr, 0);
        }
      } else {
        // Geometry of each output pixel once per chunk (no divisions per tap).
        for (i64 i = 0; i < len; ++i) {
          const i64 m = m0 + i;
          const i64 n = m / PQ, pq = m % PQ, p = pq / s.Q, q = pq % s.Q;
          pix_h[i] = p * s.sh - s.pt;
          pix_w[i] = q * s.sw - s.pl;
          pix_base[i] = x + n * s.H * s.W * s.C;
        }
        for (i64 g = 0; g < nseg; ++g) {
          const i64 r = g / s.S, t = g % s.S;
          const float** pg = ptrs.data() + g * chunk;
          for (i64 i = 0; i < len; ++i) {
            const i64 h = pix_h[i] + r, ww = pix_w[i] + t;
            pg[i] = (h >= 0 && h < s.H && ww >= 0 && ww < s.W)
                        ? pix_base[i] + (h * s.W + ww) * s.C
                        : zeros.data();
          }
          for (i64 task = 0; task < rblocks * kpanels; ++task) {
            const i64 cb = task / kpanels, j = task % kpanels;
            const i64 c0 = cb * MR, k0 = j * NR;
            const int mr = static_cast<int>(std::min<i64>(MR, s.C - c0));
            const int nr = static_cast<int>(std::min<i64>(NR, s.K - k0));
            uk.colptr(len, pg, c0, dyc + k0, s.K, out + (g * s.C + c0) * s.K + k0, s.K, mr, nr, 0);
          }
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

bool use_direct(const Conv2dShape& s, ConvAlgorithm algo) {
  if (algo == ConvAlgorithm::direct) return true;
  if (algo == ConvAlgorithm::gemm) return false;
  (void)s;
  return false;  // the implicit GEMM handles every shape
}

}  // namespace

void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* b,
                    float* y, bool relu, ConvAlgorithm algo) {
  if (s.N * s.P * s.Q == 0) return;
  if (use_direct(s, algo)) forward_direct(s, x, w, b, y, relu);
  else forward_gemm(s, x, w, b, y, relu);
}

void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx,
                          ConvAlgorithm algo) {
  if (s.N * s.H * s.W == 0) return;
  if (use_direct(s, algo)) backward_data_direct(s, dy, w, dx);
  else backward_data_gemm(s, dy, w, dx);
}

void conv2d_backward_weight(const Conv2dShape& s, const float* dy, const float* x, float* dw,
                            ConvAlgorithm algo) {
  if (use_direct(s, algo)) backward_weight_direct(s, dy, x, dw);
  else backward_weight_gemm(s, dy, x, dw);
}

void conv2d_backward_bias(const Conv2dShape& s, const float* dy, float* db) {
  const i64 M = s.N * s.P * s.Q;
  constexpr i64 kCols = 16;
  const i64 nblocks = ceil_div(s.K, kCols);
  const int nthreads = M * s.K < 65536 ? 1 : num_threads();
#pragma omp parallel for num_threads(nthreads) schedule(static) if (nthreads > 1)
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
