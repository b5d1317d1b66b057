// Bindings: dense, dense_backward, _core.dense_relu (private fused variant).
#include <string>
#include <vector>

#include "common.hpp"
#include "op_rules.hpp"
#include "fastnn/dense.hpp"

namespace fastnn {
namespace bind {
namespace {

py::object dense_impl(py::handle x_obj, py::handle w_obj, py::handle b_obj, bool relu) {
  f32array x = as_f32(x_obj, "x");
  f32array w = as_f32(w_obj, "w");
  const RowView xv = row_view(shape_of(x), "x", "(..., I)");
  check_dense_kernel(shape_of(w), xv.cols, "(I, O)");
  const i64 I = xv.cols, O = w.shape(1);
  f32array b;
  const bool has_b = !b_obj.is_none();
  if (has_b) {
    b = as_f32(b_obj, "b");
    require_shape(b, {O}, "b");
  }
  std::vector<i64> yshape = xv.lead;
  yshape.push_back(O);
  f32array y = new_f32(yshape);
  {
    KernelCall nogil;
    dense_forward(xv.rows, I, O, x.data(), w.data(), has_b ? b.data() : nullptr,
                  y.mutable_data(), relu);
  }
  return std::move(y);
}

py::tuple dense_backward_impl(py::handle dy_obj, py::handle x_obj, py::handle w_obj,
                              bool need_dx, bool need_db) {
  f32array dy = as_f32(dy_obj, "dy");
  f32array x = as_f32(x_obj, "x");
  f32array w = as_f32(w_obj, "w");
  const RowView xv = row_view(shape_of(x), "x", "(..., I)");
  check_dense_kernel(shape_of(w), xv.cols, "(I, O)");
  const i64 I = xv.cols, O = w.shape(1);
  std::vector<i64> yshape = xv.lead;
  yshape.push_back(O);
  require_shape(dy, yshape, "dy");
  f32array dx, db;
  if (need_dx) dx = new_f32(shape_of(x));
  f32array dw = new_f32({I, O});
  if (need_db) db = new_f32({O});
  {
    KernelCall nogil;
    dense_backward(xv.rows, I, O, dy.data(), x.data(), w.data(),
                   need_dx ? dx.mutable_data() : nullptr, dw.mutable_data(),
                   need_db ? db.mutable_data() : nullptr);
  }
  py::object odx = need_dx ? py::object(dx) : py::object(py::none());
  py::object odb = need_db ? py::object(db) : py::object(py::none());
  return py::make_tuple(odx, dw, odb);
}

void register_dense(py::module_& m) {
  m.def(
      "dense",
      [](py::handle x, py::handle w, py::handle b) { return dense_impl(x, w, b, false); },
      py::arg("x"), py::arg("w"), py::arg("b") = py::none(),
      "y = x @ w (+ b). x (..., I) (rank >= 2), w (I, O) (Keras kernel layout), "
      "b (O,) or None -> y (..., O) float32.");
  m.def(
      "dense_relu",
      [](py::handle x, py::handle w, py::handle b) { return dense_impl(x, w, b, true); },
      py::arg("x"), py::arg("w"), py::arg("b") = py::none(),
      "Private fused variant: relu(x @ w (+ b)). Same arguments as dense.");
  m.def("dense_backward", &dense_backward_impl, py::arg("dy"), py::arg("x"), py::arg("w"),
        py::kw_only(), py::arg("need_dx") = true, py::arg("need_db") = true,
        "Gradients of y = x @ w + b: returns (dx, dw, db); dx = dy @ w.T (None when "
        "need_dx=False), dw = x.T @ dy (leading dims flattened), db = dy summed over "
        "all rows (None when need_db=False).");
}

FASTNN_REGISTER(register_dense);

}  // namespace
}  // namespace bind
}  // namespace fastnn
