// CUDA bindings: conv2d, conv2d_backward (implicit GEMM); the geometry rules and
// messages are the CPU bindings' own (conv2d_geometry, csrc/bindings/op_rules.cpp).
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

DeviceArray conv2d(py::handle x_obj, py::handle w_obj, py::handle b_obj, py::handle stride, py::handle padding,
                   const std::string& algorithm, bool relu) {
  DeviceArray x = f32_arg(x_obj, "x"), w = f32_arg(w_obj, "w");
  check_algorithm(algorithm);
  const Conv2dShape s = conv2d_geometry(x.shape, w.shape, stride, padding);
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
  const Conv2dShape s = conv2d_geometry(x.shape, w.shape, stride, padding);
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
