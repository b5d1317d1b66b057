// CUDA bindings: max_pool2d(+backward), avg_pool2d(+backward); the geometry rules
// and messages are the CPU bindings' own (pool2d_geometry, csrc/bindings/op_rules.cpp).
#include "fastnn/cuda/kernels.hpp"
#include "ops_common.hpp"

namespace fastnn {
namespace bind_cuda {
namespace {

DeviceArray checked_x(py::handle x_obj) {
  DeviceArray x = f32_arg(x_obj, "x");
  require_rank(x, 4, "x", "(N, H, W, C)");
  require_nhwc_sizes(x.shape, "x", "(N, H, W, C)");
  return x;
}

std::vector<i64> parse_x_shape(py::handle obj) {
  if (!py::isinstance<py::tuple>(obj) && !py::isinstance<py::list>(obj))
    type_error("x_shape: expected a tuple of 4 ints (N, H, W, C), got " + std::string(py::str(py::repr(obj))));
  py::sequence seq = py::reinterpret_borrow<py::sequence>(obj);
  if (seq.size() != 4)
    value_error("x_shape: expected 4 ints (N, H, W, C), got " + std::string(py::str(py::repr(obj))));
  std::vector<i64> shape(4);
  for (std::size_t i = 0; i < 4; ++i) {
    py::object v = seq[i];
    if (py::isinstance<py::bool_>(v) || py::isinstance<py::float_>(v) || !py::hasattr(v, "__index__"))
      type_error("x_shape: expected 4 ints (N, H, W, C), got " + std::string(py::str(py::repr(obj))));
    shape[i] = v.attr("__index__")().cast<i64>();
  }
  require_nhwc_sizes(shape, "x_shape", "(N, H, W, C)");
  return shape;
}

py::tuple max_pool2d(py::handle x_obj, py::handle pool, py::handle stride, py::handle padding) {
  DeviceArray x = checked_x(x_obj);
  const Pool2dShape s = pool2d_geometry(x.shape, pool, stride, padding, "x");
  DeviceArray y = new_f32({s.N, s.P, s.Q, s.C});
  DeviceArray idx = device_empty({s.N, s.P, s.Q, s.C}, DType::int64);
  {
    py::gil_scoped_release nogil;
    cuda::max_pool2d(s, x.f32(), y.f32(), static_cast<std::int64_t*>(idx.data));
  }
  return py::make_tuple(y, idx);
}

DeviceArray max_pool2d_backward(py::handle dy_obj, py::handle idx_obj, py::handle x_shape_obj) {
  DeviceArray dy = f32_arg(dy_obj, "dy");
  require_rank(dy, 4, "dy", "(N, P, Q, C)");
  const std::vector<i64> xs = parse_x_shape(x_shape_obj);
  require_nhwc_sizes(dy.shape, "dy", "(N, P, Q, C)");
  if (dy.shape[0] != xs[0] || dy.shape[3] != xs[3])
    value_error("dy: expected the batch and channels of x_shape " + shape_str(xs) + ", i.e. shape (" +
                std::to_string(xs[0]) + ", P, Q, " + std::to_string(xs[3]) + "), got " + shape_str(dy.shape));
  DeviceArray idx = device_arg(idx_obj, "idx");
  if (idx.dtype != DType::int64)
    type_error(std::string("idx: expected an int64 GPU array (as returned by max_pool2d), got dtype ") +
               dtype_name(idx.dtype));
  require_shape(idx, dy.shape, "idx");
  DeviceArray dx = new_f32(xs);
  const i64 N = xs[0], in_per_image = xs[1] * xs[2] * xs[3];
  const i64 out_per_image = dy.shape[1] * dy.shape[2] * dy.shape[3];
  const auto* ip = static_cast<const std::int64_t*>(idx.data);
  bool in_plane = true;
  i64 bad;
  {
    py::gil_scoped_release nogil;
    bad = cuda::max_pool2d_check_index(ip, N, out_per_image, in_per_image, xs[3], &in_plane);
  }
  if (bad >= 0)
    value_error("idx: expected flat indices into x in [0, " + std::to_string(N * in_per_image) +
                ") for x_shape " + shape_str(xs) + ", got an index outside at flat position " + std::to_string(bad));
  py::gil_scoped_release nogil;
  cuda::max_pool2d_backward(dy.f32(), ip, N, out_per_image, in_per_image, xs[3], in_plane, dx.f32());
  return dx;
}

DeviceArray avg_pool2d(py::handle x_obj, py::handle pool, py::handle stride, py::handle padding, bool cip) {
  DeviceArray x = checked_x(x_obj);
  const Pool2dShape s = pool2d_geometry(x.shape, pool, stride, padding, "x");
  DeviceArray y = new_f32({s.N, s.P, s.Q, s.C});
  py::gil_scoped_release nogil;
  cuda::avg_pool2d(s, cip, x.f32(), y.f32());
  return y;
}

DeviceArray avg_pool2d_backward(py::handle dy_obj, py::handle x_shape_obj, py::handle pool, py::handle stride,
                                py::handle padding, bool cip) {
  DeviceArray dy = f32_arg(dy_obj, "dy");
  require_rank(dy, 4, "dy", "(N, P, Q, C)");
  const std::vector<i64> xs = parse_x_shape(x_shape_obj);
  const Pool2dShape s = pool2d_geometry(xs, pool, stride, padding, "x_shape");
  require_shape(dy, {s.N, s.P, s.Q, s.C}, "dy");
  DeviceArray dx = new_f32(xs);
  py::gil_scoped_release nogil;
  cuda::avg_pool2d_backward(s, cip, dy.f32(), dx.f32());
  return dx;
}

void register_pool(py::module_& m) {
  m.def("max_pool2d", &max_pool2d, py::arg("x"), py::arg("pool") = 2, py::kw_only(), py::arg("stride") = py::none(),
        py::arg("padding") = 0);
  m.def("max_pool2d_backward", &max_pool2d_backward, py::arg("dy"), py::arg("idx"), py::arg("x_shape"));
  m.def("avg_pool2d", &avg_pool2d, py::arg("x"), py::arg("pool") = 2, py::kw_only(), py::arg("stride") = py::none(),
        py::arg("padding") = 0, py::arg("count_include_pad") = false);
  m.def("avg_pool2d_backward", &avg_pool2d_backward, py::arg("dy"), py::arg("x_shape"), py::arg("pool") = 2,
        py::kw_only(), py::arg("stride") = py::none(), py::arg("padding") = 0, py::arg("count_include_pad") = false);
}
FASTNN_REGISTER(register_pool);

}  // namespace
}  // namespace bind_cuda
}  // namespace fastnn
