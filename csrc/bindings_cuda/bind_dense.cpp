// CUDA bindings: matmul, dense, dense_backward (and the private fused dense_relu).
#include "fastnn/cuda/kernels.hpp"
#include "ops_common.hpp"

namespace fastnn {
namespace bind_cuda {
namespace {

DeviceArray dense_impl(py::handle x_obj, py::handle w_obj, py::handle b_obj, bool relu) {
  DeviceArray x = f32_arg(x_obj, "x"), w = f32_arg(w_obj, "w");
  const RowView xv = row_view(x.shape, "x", "(..., I)");
  check_dense_kernel(w.shape, xv.cols, "(I, O)");
  const i64 I = xv.cols, O = w.shape[1];
  DeviceArray b;
  const bool has_b = !b_obj.is_none();
  if (has_b) {
    b = f32_arg(b_obj, "b");
    require_shape(b, {O}, "b");
  }
  std::vector<i64> yshape = xv.lead;
  yshape.push_back(O);
  DeviceArray y = new_f32(yshape);
  py::gil_scoped_release nogil;
  cuda::dense_forward(xv.rows, I, O, x.f32(), w.f32(), has_b ? b.f32() : nullptr, y.f32(), relu);
  return y;
}

py::tuple dense_backward_impl(py::handle dy_obj, py::handle x_obj, py::handle w_obj, bool need_dx,
                              bool need_db) {
  DeviceArray dy = f32_arg(dy_obj, "dy"), x = f32_arg(x_obj, "x"), w = f32_arg(w_obj, "w");
  const RowView xv = row_view(x.shape, "x", "(..., I)");
  check_dense_kernel(w.shape, xv.cols, "(I, O)");
  const i64 I = xv.cols, O = w.shape[1];
  std::vector<i64> yshape = xv.lead;
  yshape.push_back(O);
  require_shape(dy, yshape, "dy");
  DeviceArray dx, db;
  if (need_dx) dx = new_f32(x.shape);
  DeviceArray dw = new_f32({I, O});
  if (need_db) db = new_f32({O});
  {
    py::gil_scoped_release nogil;
    cuda::dense_backward(xv.rows, I, O, dy.f32(), x.f32(), w.f32(), need_dx ? dx.f32() : nullptr, dw.f32(),
                         need_db ? db.f32() : nullptr);
  }
  return py::make_tuple(need_dx ? py::cast(dx) : py::none(), dw, need_db ? py::cast(db) : py::none());
}

DeviceArray matmul(py::handle a_obj, py::handle b_obj, bool ta, bool tb) {
  DeviceArray a = f32_arg(a_obj, "a"), b = f32_arg(b_obj, "b");
  require_rank(a, 2, "a", "(M, K)");
  require_rank(b, 2, "b", "(K, N)");
  const i64 M = ta ? a.shape[1] : a.shape[0], K = ta ? a.shape[0] : a.shape[1];
  const i64 KB = tb ? b.shape[1] : b.shape[0], N = tb ? b.shape[0] : b.shape[1];
  if (K != KB) value_error("b: expected " + std::to_string(K) + " rows to match a, got shape " + shape_str(b.shape));
  DeviceArray c = new_f32({M, N});
  const i64 lda = a.shape[1], ldb = b.shape[1];
  py::gil_scoped_release nogil;
  cuda::sgemm(M, N, K, a.f32(), ta ? 1 : lda, ta ? lda : 1, b.f32(), tb ? 1 : ldb, tb ? ldb : 1, c.f32(), N,
              nullptr, false);
  return c;
}

void register_dense(py::module_& m) {
  m.def("dense", [](py::handle x, py::handle w, py::handle b) { return dense_impl(x, w, b, false); },
        py::arg("x"), py::arg("w"), py::arg("b") = py::none());
  m.def("dense_relu", [](py::handle x, py::handle w, py::handle b) { return dense_impl(x, w, b, true); },
        py::arg("x"), py::arg("w"), py::arg("b") = py::none());
  m.def("dense_backward", &dense_backward_impl, py::arg("dy"), py::arg("x"), py::arg("w"), py::kw_only(),
        py::arg("need_dx") = true, py::arg("need_db") = true);
  m.def("matmul", &matmul, py::arg("a"), py::arg("b"), py::kw_only(), py::arg("transpose_a") = false,
        py::arg("transpose_b") = false, "C = op(a) @ op(b) with fastnn's tiled CUDA SGEMM (float32).");
}
FASTNN_REGISTER(register_dense);

}  // namespace
}  // namespace bind_cuda
}  // namespace fastnn
