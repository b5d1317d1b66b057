// Bindings: lstm_forward/lstm_backward, gru_forward/gru_backward,
// rnn_forward/rnn_backward (SimpleRNN, tanh). See fastnn/rnn.hpp.
//
// cache (returned by the forward, checked again by the backward) is a tuple of
// float32 arrays (None where noted); x, kernel, recurrent_kernel, bias, h0, c0 are
// the float32 inputs themselves (not copies), so modifying them in place between
// the forward and the backward changes the gradient:
//   LSTM: (x (N,T,I), kernel (I,4H), recurrent_kernel (H,4H), bias (4H,) or None,
//          h0 (N,H) or None, c0 (N,H) or None, h_seq (N,T,H), c_seq (N,T,H) cell
//          states, gates (N,T,4H) activated [i, f, g, o])
//   GRU:  (x, kernel (I,3H), recurrent_kernel (H,3H), bias (2,3H) or None,
//          h0 or None, h_seq (N,T,H), gates (N,T,3H) activated [z, r, n],
//          hh (N,T,H) = h_{t-1}.U_h + b1_h)
//   RNN:  (x, kernel (I,H), recurrent_kernel (H,H), bias (H,) or None, h0 or None,
//          h_seq (N,T,H))
// h_seq in the cache is the same array object as the returned h_seq.
#include <string>
#include <vector>

#include "common.hpp"
#include "fastnn/rnn.hpp"

namespace fastnn {
namespace bind {
namespace {

struct Dims {
  i64 N = 0, T = 0, I = 0, H = 0;
};

// x (N, T, I): rank 3, T and I positive (N may be 0).
Dims check_x(const f32array& x, const char* name) {
  require_rank(x, 3, name, "(N, T, I)");
  Dims d;
  d.N = x.shape(0);
  d.T = x.shape(1);
  d.I = x.shape(2);
  if (d.T == 0)
    value_error(std::string(name) + ": the time dimension T must be positive, got shape " +
                shape_str(x));
  if (d.I == 0)
    value_error(std::string(name) + ": the feature dimension I must be positive, got shape " +
                shape_str(x));
  return d;
}

// kernel (I, G*H) and recurrent_kernel (H, G*H); sets d.H.
void check_weights(Dims& d, i64 G, const f32array& k, const f32array& rk, const char* kname,
                   const char* rkname) {
  const std::string gl = G == 1 ? "H" : std::to_string(G) + "H";
  require_rank(k, 2, kname, ("(I, " + gl + ")").c_str());
  if (k.shape(0) != d.I)
    value_error(std::string(kname) + ": expected " + std::to_string(d.I) +
                " rows (the last dimension of x, I), got shape " + shape_str(k));
  if (k.shape(1) == 0 || k.shape(1) % G != 0)
    value_error(std::string(kname) + ": expected shape (I, " + gl +
                ") with a positive multiple of " + std::to_string(G) + " columns, got shape " +
                shape_str(k));
  d.H = k.shape(1) / G;
  require_rank(rk, 2, rkname, ("(H, " + gl + ")").c_str());
  if (rk.shape(0) != d.H || rk.shape(1) != G * d.H)
    value_error(std::string(rkname) + ": expected shape (" + std::to_string(d.H) + ", " +
                std::to_string(G * d.H) + ") to match kernel " + shape_str(k) + ", got shape " +
                shape_str(rk));
}

// Optional float32 argument of a fixed shape; returns whether it was given.
bool optional_arg(py::handle obj, f32array& out, const std::vector<i64>& shape,
                  const char* name) {
  if (obj.is_none()) return false;
  out = as_f32(obj, name);
  require_shape(out, shape, name);
  return true;
}

const float* ptr(bool has, const f32array& a) { return has ? a.data() : nullptr; }
py::object obj_or_none(bool has, const f32array& a) {
  return has ? py::object(a) : py::object(py::none());
}

std::vector<i64> bias_shape(i64 G, i64 H, bool gru) {
  if (gru) return {2, G * H};
  return {G * H};
}

// ---- forward ----------------------------------------------------------------
// kind: 0 LSTM, 1 GRU, 2 SimpleRNN.
py::tuple forward_impl(int kind, py::handle x_obj, py::handle k_obj, py::handle rk_obj,
                       py::handle b_obj, py::handle h0_obj, py::handle c0_obj) {
  const i64 G = kind == 0 ? 4 : kind == 1 ? 3 : 1;
  f32array x = as_f32(x_obj, "x");
  Dims d = check_x(x, "x");
  f32array k = as_f32(k_obj, "kernel");
  f32array rk = as_f32(rk_obj, "recurrent_kernel");
  check_weights(d, G, k, rk, "kernel", "recurrent_kernel");
  const i64 N = d.N, T = d.T, I = d.I, H = d.H;
  f32array b, h0, c0;
  const bool hb = optional_arg(b_obj, b, bias_shape(G, H, kind == 1), "bias");
  const bool hh0 = optional_arg(h0_obj, h0, {N, H}, "h0");
  const bool hc0 = kind == 0 && optional_arg(c0_obj, c0, {N, H}, "c0");
  f32array h_seq = new_f32({N, T, H}), h_T = new_f32({N, H});
  py::object ob = obj_or_none(hb, b), oh0 = obj_or_none(hh0, h0);
  if (kind == 0) {
    f32array c_seq = new_f32({N, T, H}), c_T = new_f32({N, H}), gates = new_f32({N, T, 4 * H});
    if (N > 0) {
      KernelCall nogil;
      lstm_forward(N, T, I, H, x.data(), k.data(), rk.data(), ptr(hb, b), ptr(hh0, h0),
                   ptr(hc0, c0), h_seq.mutable_data(), c_seq.mutable_data(),
                   gates.mutable_data(), h_T.mutable_data(), c_T.mutable_data());
    }
    py::tuple cache = py::make_tuple(x, k, rk, ob, oh0, obj_or_none(hc0, c0), h_seq, c_seq, gates);
    return py::make_tuple(h_seq, h_T, c_T, cache);
  }
  if (kind == 1) {
    f32array gates = new_f32({N, T, 3 * H}), hh = new_f32({N, T, H});
    if (N > 0) {
      KernelCall nogil;
      gru_forward(N, T, I, H, x.data(), k.data(), rk.data(), ptr(hb, b), ptr(hh0, h0),
                  h_seq.mutable_data(), gates.mutable_data(), hh.mutable_data(),
                  h_T.mutable_data());
    }
    py::tuple cache = py::make_tuple(x, k, rk, ob, oh0, h_seq, gates, hh);
    return py::make_tuple(h_seq, h_T, cache);
  }
  if (N > 0) {
    KernelCall nogil;
    rnn_forward(N, T, I, H, x.data(), k.data(), rk.data(), ptr(hb, b), ptr(hh0, h0),
                h_seq.mutable_data(), h_T.mutable_data());
  }
  py::tuple cache = py::make_tuple(x, k, rk, ob, oh0, h_seq);
  return py::make_tuple(h_seq, h_T, cache);
}

// ---- backward ---------------------------------------------------------------
py::tuple backward_impl(int kind, py::handle dhs_obj, py::handle cache_obj, py::handle dhT_obj,
                        py::handle dcT_obj, bool need_dx) {
  const char* names[3] = {"lstm", "gru", "rnn"};
  const i64 G = kind == 0 ? 4 : kind == 1 ? 3 : 1;
  const std::size_t len = kind == 0 ? 9 : kind == 1 ? 8 : 6;
  if (!py::isinstance<py::tuple>(cache_obj))
    type_error(std::string("cache: expected the tuple returned by ") + names[kind] +
               "_forward, got " + std::string(py::str(py::type::of(cache_obj).attr("__name__"))));
  py::tuple cache = py::reinterpret_borrow<py::tuple>(cache_obj);
  if (cache.size() != len)
    value_error(std::string("cache: expected a tuple of ") + std::to_string(len) +
                " entries (from " + names[kind] + "_forward), got " + std::to_string(cache.size()));
  f32array x = as_f32(cache[0], "cache[0] (x)");
  Dims d = check_x(x, "cache[0] (x)");
  f32array k = as_f32(cache[1], "cache[1] (kernel)");
  f32array rk = as_f32(cache[2], "cache[2] (recurrent_kernel)");
  check_weights(d, G, k, rk, "cache[1] (kernel)", "cache[2] (recurrent_kernel)");
  const i64 N = d.N, T = d.T, I = d.I, H = d.H;
  f32array b, h0, c0;
  const bool hb = optional_arg(cache[3], b, bias_shape(G, H, kind == 1), "cache[3] (bias)");
  const bool hh0 = optional_arg(cache[4], h0, {N, H}, "cache[4] (h0)");
  bool hc0 = false;
  int next = 5;
  if (kind == 0) {
    hc0 = optional_arg(cache[5], c0, {N, H}, "cache[5] (c0)");
    next = 6;
  }
  auto need = [&](int i, const std::vector<i64>& shape, const char* what) {
    const std::string nm = "cache[" + std::to_string(i) + "] (" + what + ")";
    if (cache[i].is_none()) type_error(nm + ": expected an array, got None");
    f32array a = as_f32(cache[i], nm.c_str());
    require_shape(a, shape, nm.c_str());
    return a;
  };
  f32array h_seq = need(next, {N, T, H}, "h_seq");
  f32array dhs, dhT, dcT;
  const bool hdhs = optional_arg(dhs_obj, dhs, {N, T, H}, "dh_seq");
  const bool hdhT = optional_arg(dhT_obj, dhT, {N, H}, "dh_T");
  const bool hdcT = kind == 0 && optional_arg(dcT_obj, dcT, {N, H}, "dc_T");

  f32array dx, dk = zeros_f32({I, G * H}), drk = zeros_f32({H, G * H}),
           dh0 = new_f32({N, H});
  if (need_dx) dx = new_f32({N, T, I});
  float* pdx = need_dx ? dx.mutable_data() : nullptr;
  py::object odx = need_dx ? py::object(dx) : py::object(py::none());
  f32array db;
  if (hb) db = zeros_f32(bias_shape(G, H, kind == 1));
  float* pdb = hb ? db.mutable_data() : nullptr;
  py::object odb = obj_or_none(hb, db);
  if (kind == 0) {
    f32array c_seq = need(7, {N, T, H}, "c_seq");
    f32array gates = need(8, {N, T, 4 * H}, "gates");
    f32array dc0 = new_f32({N, H});
    if (N > 0) {
      KernelCall nogil;
      lstm_backward(N, T, I, H, ptr(hdhs, dhs), ptr(hdhT, dhT), ptr(hdcT, dcT), x.data(),
                    k.data(), rk.data(), ptr(hh0, h0), ptr(hc0, c0), h_seq.data(),
                    c_seq.data(), gates.data(), pdx, dk.mutable_data(),
                    drk.mutable_data(), pdb, dh0.mutable_data(), dc0.mutable_data());
    }
    return py::make_tuple(odx, dk, drk, odb, dh0, dc0);
  }
  if (kind == 1) {
    f32array gates = need(6, {N, T, 3 * H}, "gates");
    f32array hh = need(7, {N, T, H}, "hh");
    if (N > 0) {
      KernelCall nogil;
      gru_backward(N, T, I, H, ptr(hdhs, dhs), ptr(hdhT, dhT), x.data(), k.data(), rk.data(),
                   ptr(hh0, h0), h_seq.data(), gates.data(), hh.data(), pdx,
                   dk.mutable_data(), drk.mutable_data(), pdb, dh0.mutable_data());
    }
    return py::make_tuple(odx, dk, drk, odb, dh0);
  }
  if (N > 0) {
    KernelCall nogil;
    rnn_backward(N, T, I, H, ptr(hdhs, dhs), ptr(hdhT, dhT), x.data(), k.data(), rk.data(),
                 ptr(hh0, h0), h_seq.data(), pdx, dk.mutable_data(),
                 drk.mutable_data(), pdb, dh0.mutable_data());
  }
  return py::make_tuple(odx, dk, drk, odb, dh0);
}

void register_rnn(py::module_& m) {
  m.def(
      "lstm_forward",
      [](py::handle x, py::handle k, py::handle rk, py::handle b, py::handle h0, py::handle c0) {
        return forward_impl(0, x, k, rk, b, h0, c0);
      },
      py::arg("x"), py::arg("kernel"), py::arg("recurrent_kernel"), py::arg("bias"),
      py::arg("h0") = py::none(), py::arg("c0") = py::none(),
      "LSTM over a sequence (Keras layouts, gates i, f, c, o). x (N, T, I), kernel (I, 4H), "
      "recurrent_kernel (H, 4H), bias (4H,) or None, h0/c0 (N, H) or None (zeros). "
      "Returns (h_seq (N, T, H), h_T (N, H), c_T (N, H), cache).");
  m.def(
      "lstm_backward",
      [](py::handle dhs, py::handle cache, py::handle dhT, py::handle dcT, bool need_dx) {
        return backward_impl(0, dhs, cache, dhT, dcT, need_dx);
      },
      py::arg("dh_seq"), py::arg("cache"), py::arg("dh_T") = py::none(),
      py::arg("dc_T") = py::none(), py::kw_only(), py::arg("need_dx") = true,
      "Backpropagation through time of lstm_forward. dh_seq (N, T, H) or None, dh_T/dc_T "
      "(N, H) or None (added at the last step); need_dx=False skips dx (returned as None). "
      "Returns (dx, dkernel, drecurrent_kernel, "
      "dbias or None, dh0, dc0).");
  m.def(
      "gru_forward",
      [](py::handle x, py::handle k, py::handle rk, py::handle b, py::handle h0) {
        return forward_impl(1, x, k, rk, b, h0, py::none());
      },
      py::arg("x"), py::arg("kernel"), py::arg("recurrent_kernel"), py::arg("bias"),
      py::arg("h0") = py::none(),
      "GRU (Keras reset_after=True, gates z, r, h; h_t = z*h_{t-1} + (1-z)*n). x (N, T, I), "
      "kernel (I, 3H), recurrent_kernel (H, 3H), bias (2, 3H) or None, h0 (N, H) or None. "
      "Returns (h_seq, h_T, cache).");
  m.def(
      "gru_backward",
      [](py::handle dhs, py::handle cache, py::handle dhT, bool need_dx) {
        return backward_impl(1, dhs, cache, dhT, py::none(), need_dx);
      },
      py::arg("dh_seq"), py::arg("cache"), py::arg("dh_T") = py::none(), py::kw_only(),
      py::arg("need_dx") = true,
      "Backpropagation through time of gru_forward (need_dx=False: dx is None, not computed). "
      "Returns (dx, dkernel, "
      "drecurrent_kernel, dbias (2, 3H) or None, dh0).");
  m.def(
      "rnn_forward",
      [](py::handle x, py::handle k, py::handle rk, py::handle b, py::handle h0) {
        return forward_impl(2, x, k, rk, b, h0, py::none());
      },
      py::arg("x"), py::arg("kernel"), py::arg("recurrent_kernel"), py::arg("bias"),
      py::arg("h0") = py::none(),
      "SimpleRNN (tanh): h_t = tanh(x_t.kernel + h_{t-1}.recurrent_kernel + bias). x (N, T, I), "
      "kernel (I, H), recurrent_kernel (H, H), bias (H,) or None, h0 (N, H) or None. "
      "Returns (h_seq, h_T, cache).");
  m.def(
      "rnn_backward",
      [](py::handle dhs, py::handle cache, py::handle dhT, bool need_dx) {
        return backward_impl(2, dhs, cache, dhT, py::none(), need_dx);
      },
      py::arg("dh_seq"), py::arg("cache"), py::arg("dh_T") = py::none(), py::kw_only(),
      py::arg("need_dx") = true,
      "Backpropagation through time of rnn_forward (need_dx=False: dx is None, not computed). "
      "Returns (dx, dkernel, "
      "drecurrent_kernel, dbias or None, dh0).");
}

FASTNN_REGISTER(register_rnn);

}  // namespace
}  // namespace bind
}  // namespace fastnn
