// fastnn/rnn.hpp -- recurrent kernels: LSTM, GRU (reset_after=True) and SimpleRNN
// (tanh), forward and backward through time (float32). No Python in here.
//
// Layouts (Keras, see DESIGN.md Conventions): x (N, T, I) batch-first, row-major;
// G = number of gates (LSTM 4: i, f, c, o; GRU 3: z, r, h; SimpleRNN 1);
// kernel (I, G*H), recurrent_kernel (H, G*H), gate g occupies columns [g*H, (g+1)*H).
//
// Decisions:
// - LSTM: i = s(xi + hi), f = s(xf + hf), g = tanh(xc + hc), o = s(xo + ho),
//   c_t = f*c_{t-1} + i*g, h_t = o*tanh(c_t); bias (4H,) added once.
// - GRU (reset_after=True, same as torch/cuDNN): [xz, xr, xh] = x.W + b0,
//   [hz, hr, hh] = h.U + b1, z = s(xz+hz), r = s(xr+hr), n = tanh(xh + r*hh),
//   h_t = z*h_{t-1} + (1-z)*n (z multiplies the OLD state, Keras convention).
//   bias is (2, 3H): row 0 = b0, row 1 = b1.
// - SimpleRNN: h_t = tanh(x.W + h.U + b).
// - Pointers documented "or null": null h0/c0 means a zero initial state; null bias
//   means no bias (db must then be null too); null dh_seq / dh_T / dc_T mean zero.
// - Structure: the input projection of all N*T rows is ONE sgemm (bias fused);
//   the recurrent kernel is packed once per call into NR-wide column panels; the
//   time loop calls the register-blocked micro-kernel (rowptr) directly on the
//   rows of h_{t-1} and fuses the gate non-linearities (fastnn::vmath) right
//   after it. Work items per step are (hidden column block of NR, row tile of MR);
//   one parallel region spans the whole time loop with one barrier per step.
//   The backward pass computes dh_{t-1} = dG_t . RK^T (RK^T packed once) fused with
//   the gate gradients of step t-1, then the weight gradients as single sgemms over
//   all N*T rows (dK = X^T dG, dRK = Hprev^T dG, db = 1^T dG, dx = dG K^T).
// - Gate loops (csrc/cpu/rnn_cells_impl.hpp) are compiled per ISA (rnn.cpp baseline,
//   rnn_avx2.cpp, rnn_avx512.cpp) and picked with active_isa(); a whole MR x NR tile is
//   gathered densely and padded to 16 lanes so the vector loop has no scalar tail.
//   Results may differ between ISAs (FMA contraction), never between thread counts.
// - Weight gradients X^T dG / Hprev^T dG / 1^T dG with M*N*K <= 4e6 use the strided
//   colseg micro-kernel on one thread (no packing; the workbook's H = 20 case), larger
//   ones sgemm: a rule of shape only.
// - The time loop runs on one thread when a step has < 4e5 flops (2*N*G*H*H), so the
//   small workbook LSTM has no per-step barrier.
// - Determinism: every output element is computed by a fixed sequence of
//   operations that depends neither on the thread count nor on the other rows of
//   the batch, so results are bitwise identical for any thread count and the
//   forward pass is batch-size invariant (row i of a batch == that row alone).
// - Derivatives in the backward pass use the stored post-activation values
//   (s(1-s), 1-t^2).
// - Workspaces are allocated once per call (never inside the time loop).
#pragma once
#include "fastnn/common.hpp"

namespace fastnn {

// ---- LSTM -------------------------------------------------------------------
// x (N,T,I), kernel (I,4H), rkernel (H,4H), bias (4H) or null, h0/c0 (N,H) or null.
// Outputs: h_seq (N,T,H), c_seq (N,T,H) cell states, gates (N,T,4H) activated
// [i, f, g, o], h_T (N,H), c_T (N,H). N >= 1, T >= 1, I >= 1, H >= 1.
void lstm_forward(i64 N, i64 T, i64 I, i64 H, const float* x, const float* kernel,
                  const float* rkernel, const float* bias, const float* h0,
                  const float* c0, float* h_seq, float* c_seq, float* gates, float* h_T,
                  float* c_T);
// dh_seq (N,T,H) or null, dh_T (N,H) or null, dc_T (N,H) or null; forward values
// as above. Outputs: dx (N,T,I) or null (not computed), dk (I,4H), drk (H,4H), db (4H) or null,
// dh0 (N,H), dc0 (N,H).
void lstm_backward(i64 N, i64 T, i64 I, i64 H, const float* dh_seq, const float* dh_T,
                   const float* dc_T, const float* x, const float* kernel,
                   const float* rkernel, const float* h0, const float* c0,
                   const float* h_seq, const float* c_seq, const float* gates, float* dx,
                   float* dk, float* drk, float* db, float* dh0, float* dc0);

// ---- GRU (reset_after=True) ------------------------------------------------------
// x (N,T,I), kernel (I,3H), rkernel (H,3H), bias (2,3H) or null, h0 (N,H) or null.
// Outputs: h_seq (N,T,H), gates (N,T,3H) activated [z, r, n], hh (N,T,H) = the
// recurrent part of the candidate (h_{t-1}.U_h + b1_h), h_T (N,H).
void gru_forward(i64 N, i64 T, i64 I, i64 H, const float* x, const float* kernel,
                 const float* rkernel, const float* bias, const float* h0, float* h_seq,
                 float* gates, float* hh, float* h_T);
// Outputs: dx (N,T,I) or null (not computed), dk (I,3H), drk (H,3H), db (2,3H) or null, dh0 (N,H).
void gru_backward(i64 N, i64 T, i64 I, i64 H, const float* dh_seq, const float* dh_T,
                  const float* x, const float* kernel, const float* rkernel,
                  const float* h0, const float* h_seq, const float* gates,
                  const float* hh, float* dx, float* dk, float* drk, float* db,
                  float* dh0);

// ---- SimpleRNN (tanh) ------------------------------------------------------------
// x (N,T,I), kernel (I,H), rkernel (H,H), bias (H) or null, h0 (N,H) or null.
// Outputs: h_seq (N,T,H), h_T (N,H).
void rnn_forward(i64 N, i64 T, i64 I, i64 H, const float* x, const float* kernel,
                 const float* rkernel, const float* bias, const float* h0, float* h_seq,
                 float* h_T);
// Outputs: dx (N,T,I) or null (not computed), dk (I,H), drk (H,H), db (H) or null, dh0 (N,H).
void rnn_backward(i64 N, i64 T, i64 I, i64 H, const float* dh_seq, const float* dh_T,
                  const float* x, const float* kernel, const float* rkernel,
                  const float* h0, const float* h_seq, float* dx, float* dk, float* drk,
                  float* db, float* dh0);

}  // namespace fastnn
