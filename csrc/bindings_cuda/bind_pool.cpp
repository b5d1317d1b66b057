// CUDA bindings: max_pool2d(+backward), avg_pool2d(+backward); geometry rules and
// messages of the CPU bindings (csrc/bindings/bind_pool.cpp).
#include "fastnn/cuda/kernels.hpp"
#include "ops_common.hpp"

namespace fastnn {
namespace bind_cuda {
namespace {

std::string pair_str(i64 h, i64 w) { return "(" + std::to_string(h) + ", " + std::to_string(w) + ")"; }

void require_nhwc_sizes(const std::vector<i64>& shape, const char* name, const char* layout) {
  for (std::size_t i = 1; i < 4; ++i)
    if (shape[i] < 1)
      value_error(std::string(name) + ": expected positive sizes " + layout + " (only the batch may be 0), got " +
                  shape_str(shape));
  if (shape[0] < 0) value_error(std::string(name) + ": expected a non-negative batch size, got " + shape_str(shape));
}

// Output size as fastnn::pool2d_output_size: false when the window is larger than
// the padded input.
bool output_size(Pool2dShape& s) {
  const i64 eh = s.kh - 2 * s.ph, ew = s.kw - 2 * s.pw;
  if (eh > s.H || ew > s.W) return false;
  s.P = (s.H - eh) / s.sh + 1;
  s.Q = (s.W - ew) / s.sw + 1;
  return true;
}

Pool2dShape make_shape(const std::vector<i64>& xs, py::handle pool, py::handle stride, py::handle padding,
                       const char* x_name) {
  Pool2dShape s;
  s.N = xs[0];
  s.H = xs[1];
  s.W = xs[2];
  s.C = xs[3];
  const Pair k = parse_pair(pool, "pool");
  const Pair st = stride.is_none() ? k : parse_pair(stride, "stride");
  const Pair pad = parse_pair_nonneg(padding, "padding");
  s.kh = k.h; s.kw = k.w; s.sh = st.h; s.sw = st.w; s.ph = pad.h; s.pw = pad.w;
  if (pad.h > k.h / 2 || pad.w > k.w / 2)
    value_error("padding: expected at most pool//2 = " + pair_str(k.h / 2, k.w / 2) +
                " per axis (PyTorch's rule), got " + pair_str(pad.h, pad.w) + " for pool " + pair_str(k.h, k.w));
  if (!output_size(s))
    value_error("pool: window " + pair_str(k.h, k.w) + " is larger than the padded input " +
                pair_str(s.H + 2 * s.ph, s.W + 2 * s.pw) + " (" + x_name + " shape " + shape_str(xs) +
                ", padding " + pair_str(pad.h, pad.w) + ")");
  return s;
}

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
  const Pool2dShape s = make_shape(x.shape, pool, stride, padding, "x");
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
  const Pool2dShape s = make_shape(x.shape, pool, stride, padding, "x");
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
  const Pool2dShape s = make_shape(xs, pool, stride, padding, "x_shape");
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
