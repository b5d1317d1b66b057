// Bindings: conv2d, conv2d_backward.
#include <pybind11/stl.h>

#include "common.hpp"
#include "op_rules.hpp"
#include "fastnn/conv.hpp"
#include "fastnn/conv_winograd.hpp"

namespace fastnn {
namespace bind {
namespace {

ConvAlgorithm parse_algorithm(const std::string& a) {
  if (a == "auto") return ConvAlgorithm::automatic;
  if (a == "direct") return ConvAlgorithm::direct;
  if (a == "gemm") return ConvAlgorithm::gemm;
  if (a == "winograd") return ConvAlgorithm::winograd;
  if (a == "winograd_f2x2") return ConvAlgorithm::winograd_f2x2;
  if (a == "winograd_f4x4") return ConvAlgorithm::winograd_f4x4;
  value_error("algorithm: expected 'auto', 'direct', 'gemm', 'winograd', 'winograd_f2x2' or 'winograd_f4x4', got '" +
              a + "'");
}

void check_algorithm(const Conv2dShape& s, ConvAlgorithm algo) {
  if (is_winograd(algo) && !winograd_supported(s.R, s.S, s.sh, s.sw))
    value_error("algorithm: 'winograd' needs a 3x3 or 5x5 kernel with stride 1, got kernel (" +
                std::to_string(s.R) + ", " + std::to_string(s.S) + ") stride (" + std::to_string(s.sh) +
                ", " + std::to_string(s.sw) + ")");
}

py::object conv2d(py::handle x_obj, py::handle w_obj, py::handle b_obj, py::handle stride,
                  py::handle padding, const std::string& algorithm, bool relu) {
  f32array x = as_f32(x_obj, "x"), w = as_f32(w_obj, "w");
  const ConvAlgorithm algo = parse_algorithm(algorithm);
  const Conv2dShape s = conv2d_geometry(shape_of(x), shape_of(w), stride, padding);
  f32array b;
  const bool has_b = !b_obj.is_none();
  if (has_b) {
    b = as_f32(b_obj, "b");
    require_shape(b, {s.K}, "b");
  }
  check_algorithm(s, algo);
  f32array y = new_f32({s.N, s.P, s.Q, s.K});
  {
    KernelCall nogil;
    conv2d_forward(s, x.data(), w.data(), has_b ? b.data() : nullptr, y.mutable_data(), relu, algo);
  }
  return std::move(y);
}

py::tuple conv2d_backward(py::handle dy_obj, py::handle x_obj, py::handle w_obj,
                          py::handle stride, py::handle padding, bool need_dx, bool need_db,
                          const std::string& algorithm) {
  f32array dy = as_f32(dy_obj, "dy"), x = as_f32(x_obj, "x"), w = as_f32(w_obj, "w");
  const ConvAlgorithm algo = parse_algorithm(algorithm);
  const Conv2dShape s = conv2d_geometry(shape_of(x), shape_of(w), stride, padding);
  require_shape(dy, {s.N, s.P, s.Q, s.K}, "dy");
  check_algorithm(s, algo);
  f32array dw = new_f32({s.R, s.S, s.C, s.K});
  f32array dx, db;
  if (need_dx) dx = new_f32({s.N, s.H, s.W, s.C});
  if (need_db) db = new_f32({s.K});
  {
    KernelCall nogil;
    conv2d_backward_weight(s, dy.data(), x.data(), dw.mutable_data(), algo);
    if (need_dx) conv2d_backward_data(s, dy.data(), w.data(), dx.mutable_data(), algo);
    if (need_db) conv2d_backward_bias(s, dy.data(), db.mutable_data());
  }
  return py::make_tuple(need_dx ? py::object(dx) : py::none(), dw,
                        need_db ? py::object(db) : py::none());
}

void register_conv(py::module_& m) {
  m.def("conv2d", &conv2d, py::arg("x"), py::arg("w"), py::arg("b") = py::none(),
        py::kw_only(), py::arg("stride") = 1, py::arg("padding") = 0,
        py::arg("algorithm") = "auto", py::arg("relu") = false,
        "y = conv2d(x (N,H,W,C), w (R,S,C,K), b (K,) or None) -> (N,P,Q,K); relu=True fuses ReLU.");
  m.def("conv2d_backward", &conv2d_backward, py::arg("dy"), py::arg("x"), py::arg("w"),
        py::kw_only(), py::arg("stride") = 1, py::arg("padding") = 0, py::arg("need_dx") = true,
        py::arg("need_db") = true, py::arg("algorithm") = "auto",
        "dx, dw, db = conv2d_backward(dy, x, w); dx/db are None when not needed.");
}
FASTNN_REGISTER(register_conv);

}  // namespace
}  // namespace bind
}  // namespace fastnn
