// Bindings: dense, dense_backward, _core.dense_relu (private fused variant).
#include <string>
#include <vector>

#include "common.hpp"
#include "fastnn/dense.hpp"

namespace fastnn {
namespace bind {
namespace {

// x (..., I) viewed as (rows, I). Leading dim 0 is an empty batch; any other
// zero dim is an error.
struct RowView {
  i64 rows = 0, cols = 0;
  std::vector<i64> lead;  // leading dims
};

RowView row_view(const py::array& a, const char* name, const char* layout) {
  if (a.ndim() < 2)
    value_error(std::string(name) + ": expected an array of rank >= 2 " + layout +
                ", got shape " + shape_str(a) + " (" + std::to_string(a.ndim()) + "-D)");
  RowView v;
  v.rows = 1;
  for (py::ssize_t d = 0; d + 1 < a.ndim(); ++d) {
    if (d > 0 && a.shape(d) == 0)
      value_error(std::string(name) + ": zero-size dimension " + std::to_string(d) +
                  " in shape " + shape_str(a) + " (only the batch dimension may be 0)");
    v.lead.push_back(a.shape(d));
    v.rows *= a.shape(d);
  }
  v.cols = a.shape(a.ndim() - 1);
  if (v.cols == 0)
    value_error(std::string(name) + ": the last dimension must be positive, got shape " +
                shape_str(a));
  return v;
}

void check_kernel(const py::array& w, i64 in, const char* layout) {
  require_rank(w, 2, "w", layout);
  if (w.shape(1) == 0) value_error("w: expected a positive number of units, got shape " + shape_str(w));
  if (w.shape(0) != in)
    value_error("w: expected " + std::to_string(in) +
                " rows (the last dimension of x), got shape " + shape_str(w));
}

py::object dense_impl(py::handle x_obj, py::handle w_obj, py::handle b_obj, bool relu) {
  f32array x = as_f32(x_obj, "x");
  f32array w = as_f32(w_obj, "w");
  const RowView xv = row_view(x, "x", "(..., I)");
  check_kernel(w, xv.cols, "(I, O)");
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
  const RowView xv = row_view(x, "x", "(..., I)");
  check_kernel(w, xv.cols, "(I, O)");
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
