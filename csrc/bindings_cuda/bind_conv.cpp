// CUDA bindings: conv2d, conv2d_backward (implicit GEMM); geometry rules and
// messages of the CPU bindings (csrc/bindings/bind_conv.cpp).
#include <algorithm>

#include "fastnn/cuda/kernels.hpp"
#include "ops_common.hpp"

namespace fastnn {
namespace bind_cuda {
namespace {

// The CUDA path has one algorithm, the implicit GEMM; "auto" and "gemm" name it.
void check_algorithm(const std::string& a) {
  if (a != "auto" && a != "gemm")
    value_error("algorithm: on the GPU expected 'auto' or 'gemm' (implicit GEMM), got '" + a + "'");
}

void same_padding(i64 in, i64 k, i64 stride, i64& lo, i64& hi) {
  const i64 out = (in + stride - 1) / stride;
  const i64 total = std::max<i64>((out - 1) * stride + k - in, 0);
  lo = total / 2;
  hi = total - lo;
}

Conv2dShape make_shape(const DeviceArray& x, const DeviceArray& w, py::handle stride, py::handle padding) {
  require_rank(x, 4, "x", "(N, H, W, C)");
  require_rank(w, 4, "w", "(R, S, C_in, C_out)");
  Conv2dShape s{};
  s.N = x.shape[0]; s.H = x.shape[1]; s.W = x.shape[2]; s.C = x.shape[3];
  s.R = w.shape[0]; s.S = w.shape[1]; s.K = w.shape[3];
  if (s.H < 1 || s.W < 1 || s.C < 1)
    value_error("x: expected positive H, W, C in (N, H, W, C), got shape " + shape_str(x.shape));
  if (s.R < 1 || s.S < 1 || s.K < 1 || w.shape[2] < 1)
    value_error("w: expected positive sizes in (R, S, C_in, C_out), got shape " + shape_str(w.shape));
  if (w.shape[2] != s.C)
    value_error("w: expected C_in = " + std::to_string(s.C) + " (x has " + std::to_string(s.C) +
                " channels), got shape " + shape_str(w.shape));
  const Pair st = parse_pair(stride, "stride");
  s.sh = st.h; s.sw = st.w;
  if (py::isinstance<py::str>(padding)) {
    const std::string mode = padding.cast<std::string>();
    if (mode == "valid") {
      s.pt = s.pb = s.pl = s.pr = 0;
    } else if (mode == "same") {
      same_padding(s.H, s.R, s.sh, s.pt, s.pb);
      same_padding(s.W, s.S, s.sw, s.pl, s.pr);
    } else {
      value_error("padding: expected 'valid', 'same', an int or an (h, w) pair, got '" + mode + "'");
    }
  } else {
    const Pair pd = parse_pair_nonneg(padding, "padding");
    s.pt = s.pb = pd.h;
    s.pl = s.pr = pd.w;
  }
  // as fastnn::conv2d_finish_shape
  const i64 hp = s.H + s.pt + s.pb, wp = s.W + s.pl + s.pr;
  if (s.R > hp || s.S > wp)
    value_error("w: kernel (" + std::to_string(s.R) + ", " + std::to_string(s.S) +
                ") is larger than the padded input (" + std::to_string(hp) + ", " + std::to_string(wp) + ")");
  s.P = (hp - s.R) / s.sh + 1;
  s.Q = (wp - s.S) / s.sw + 1;
  return s;
}

DeviceArray conv2d(py::handle x_obj, py::handle w_obj, py::handle b_obj, py::handle stride, py::handle padding,
                   const std::string& algorithm, bool relu) {
  DeviceArray x = f32_arg(x_obj, "x"), w = f32_arg(w_obj, "w");
  check_algorithm(algorithm);
  const Conv2dShape s = make_shape(x, w, stride, padding);
  DeviceArray b;
  const bool has_b = !b_obj.is_none();
  if (has_b) {
    b = f32_arg(b_obj, "b");
    require_shape(b, {s.K}, "b");
  }
  DeviceArray y = new_f32({s.N, s.P, s.Q, s.K});
  py::gil_scoped_release nogil;
  cuda::conv2d_forward(s, x.f32(), w.f32(), has_b ? b.f32() : nullptr, y.f32(), relu);
  return y;
}

py::tuple conv2d_backward(py::handle dy_obj, py::handle x_obj, py::handle w_obj, py::handle stride,
                          py::handle padding, bool need_dx, bool need_db, const std::string& algorithm) {
  DeviceArray dy = f32_arg(dy_obj, "dy"), x = f32_arg(x_obj, "x"), w = f32_arg(w_obj, "w");
  check_algorithm(algorithm);
  const Conv2dShape s = make_shape(x, w, stride, padding);
  require_shape(dy, {s.N, s.P, s.Q, s.K}, "dy");
  DeviceArray dw = new_f32({s.R, s.S, s.C, s.K});
  DeviceArray dx, db;
  if (need_dx) dx = new_f32({s.N, s.H, s.W, s.C});
  if (need_db) db = new_f32({s.K});
  {
    py::gil_scoped_release nogil;
    cuda::conv2d_backward_weight(s, dy.f32(), x.f32(), dw.f32());
    if (need_dx) cuda::conv2d_backward_data(s, dy.f32(), w.f32(), dx.f32());
    if (need_db) cuda::conv2d_backward_bias(s, dy.f32(), db.f32());
  }
  return py::make_tuple(need_dx ? py::cast(dx) : py::none(), dw, need_db ? py::cast(db) : py::none());
}

void register_conv(py::module_& m) {
  m.def("conv2d", &conv2d, py::arg("x"), py::arg("w"), py::arg("b") = py::none(), py::kw_only(),
        py::arg("stride") = 1, py::arg("padding") = 0, py::arg("algorithm") = "auto", py::arg("relu") = false);
  m.def("conv2d_backward", &conv2d_backward, py::arg("dy"), py::arg("x"), py::arg("w"), py::kw_only(),
        py::arg("stride") = 1, py::arg("padding") = 0, py::arg("need_dx") = true, py::arg("need_db") = true,
        py::arg("algorithm") = "auto");
}
FASTNN_REGISTER(register_conv);

}  // namespace
}  // namespace bind_cuda
}  // namespace fastnn
