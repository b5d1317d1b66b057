// Bindings of the pooling family: max_pool2d, max_pool2d_backward, avg_pool2d,
// avg_pool2d_backward, and the layer's private max_pool2d_inference,
// max_pool2d_window, max_pool2d_window_backward (NHWC float32; contract in
// fastnn/pool.hpp).
#include <pybind11/numpy.h>

#include <string>

#include "common.hpp"
#include "op_rules.hpp"
#include "fastnn/pool.hpp"

namespace fastnn {
namespace bind {

namespace {

using i64array = py::array_t<std::int64_t, py::array::c_style>;
using u8array = py::array_t<std::uint8_t, py::array::c_style>;

f32array checked_x(py::handle x_obj) {
  f32array x = as_f32(x_obj, "x");
  require_rank(x, 4, "x", "(N, H, W, C)");
  require_nhwc_sizes(shape_of(x), "x", "(N, H, W, C)");
  return x;
}

// x_shape: a tuple/list (or 1-D integer array) of 4 ints (N, H, W, C).
std::vector<i64> parse_x_shape(py::handle obj) {
  py::object seq = py::reinterpret_borrow<py::object>(obj);
  if (py::isinstance<py::array>(obj)) seq = seq.attr("tolist")();
  if (!py::isinstance<py::tuple>(seq) && !py::isinstance<py::list>(seq))
    type_error("x_shape: expected a tuple of 4 ints (N, H, W, C), got " +
               std::string(py::str(py::repr(obj))));
  if (py::len(seq) != 4)
    value_error("x_shape: expected 4 ints (N, H, W, C), got " + std::string(py::str(py::repr(obj))));
  std::vector<i64> shape(4);
  for (std::size_t i = 0; i < 4; ++i) {
    py::object v = seq[py::int_(i)];
    if (py::isinstance<py::bool_>(v) || py::isinstance<py::float_>(v) || !py::hasattr(v, "__index__"))
      type_error("x_shape: expected 4 ints (N, H, W, C), got " + std::string(py::str(py::repr(obj))));
    try {
      shape[i] = v.attr("__index__")().cast<i64>();
    } catch (py::cast_error&) {
      value_error("x_shape: size out of range in " + std::string(py::str(py::repr(obj))));
    }
  }
  require_nhwc_sizes(shape, "x_shape", "(N, H, W, C)");
  return shape;
}

py::tuple max_pool2d_py(py::handle x_obj, py::handle pool, py::handle stride, py::handle padding) {
  f32array x = checked_x(x_obj);
  const Pool2dShape s = pool2d_geometry(shape_of(x), pool, stride, padding, "x");
  f32array y = new_f32({s.N, s.P, s.Q, s.C});
  i64array idx(std::vector<py::ssize_t>{s.N, s.P, s.Q, s.C});
  {
    KernelCall nogil;
    max_pool2d(s, x.data(), y.mutable_data(), idx.mutable_data());
  }
  return py::make_tuple(y, idx);
}

f32array max_pool2d_backward_py(py::handle dy_obj, py::handle idx_obj, py::handle x_shape_obj) {
  f32array dy = as_f32(dy_obj, "dy");
  require_rank(dy, 4, "dy", "(N, P, Q, C)");
  const std::vector<i64> xs = parse_x_shape(x_shape_obj);
  const std::vector<i64> ds = shape_of(dy);
  require_nhwc_sizes(ds, "dy", "(N, P, Q, C)");
  if (ds[0] != xs[0] || ds[3] != xs[3])
    value_error("dy: expected the batch and channels of x_shape " + shape_str(xs) +
                ", i.e. shape (" + std::to_string(xs[0]) + ", P, Q, " + std::to_string(xs[3]) +
                "), got " + shape_str(ds));

  if (is_none(idx_obj)) type_error("idx: expected an integer array, got None");
  py::array idx_any;
  try {
    idx_any = py::array::ensure(idx_obj);
  } catch (py::error_already_set&) {
    idx_any = py::array();
  }
  if (!idx_any || py::isinstance<py::str>(idx_obj))
    type_error("idx: expected an integer array, got " +
               std::string(py::str(py::type::of(idx_obj).attr("__name__"))));
  const char kind = idx_any.dtype().kind();
  if (kind != 'i' && kind != 'u')
    type_error("idx: expected an integer array (as returned by max_pool2d), got dtype " +
               std::string(py::str(idx_any.dtype())));
  require_shape(idx_any, ds, "idx");
  // (uint64 values beyond the int64 range wrap negative here and are rejected below.)
  auto idx = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(idx_any);
  if (!idx) type_error("idx: could not convert dtype " + std::string(py::str(idx_any.dtype())) + " to int64");

  f32array dx = new_f32(xs);
  const i64 N = xs[0];
  const i64 in_per_image = xs[1] * xs[2] * xs[3];
  const i64 out_per_image = ds[1] * ds[2] * ds[3];
  const i64 limit = N * in_per_image;
  i64 bad;
  {
    KernelCall nogil;
    bad = max_pool2d_backward(dy.data(), idx.data(), N, out_per_image, in_per_image, dx.mutable_data());
  }
  if (bad >= 0)
    value_error("idx: expected flat indices into x in [0, " + std::to_string(limit) +
                ") for x_shape " + shape_str(xs) + ", got " + std::to_string(idx.data()[bad]) +
                " at flat position " + std::to_string(bad));
  return dx;
}

// Private forms used by the MaxPooling2D layer (fastnn.ops._max_pool2d_*).
f32array max_pool2d_inference_py(py::handle x_obj, py::handle pool, py::handle stride,
                                  py::handle padding) {
  f32array x = checked_x(x_obj);
  const Pool2dShape s = pool2d_geometry(shape_of(x), pool, stride, padding, "x");
  f32array y = new_f32({s.N, s.P, s.Q, s.C});
  {
    KernelCall nogil;
    max_pool2d_inference(s, x.data(), y.mutable_data());
  }
  return y;
}

constexpr i64 kMaxWindowElements = 256;  // window offsets are uint8

void require_small_window(const Pool2dShape& s) {
  if (s.kh * s.kw > kMaxWindowElements)
    value_error("pool: expected a window of at most " + std::to_string(kMaxWindowElements) +
                " elements (uint8 window offsets), got " + std::to_string(s.kh) + "x" +
                std::to_string(s.kw) + " = " + std::to_string(s.kh * s.kw));
}

py::tuple max_pool2d_window_py(py::handle x_obj, py::handle pool, py::handle stride,
                               py::handle padding) {
  f32array x = checked_x(x_obj);
  const Pool2dShape s = pool2d_geometry(shape_of(x), pool, stride, padding, "x");
  require_small_window(s);
  f32array y = new_f32({s.N, s.P, s.Q, s.C});
  u8array win(std::vector<py::ssize_t>{s.N, s.P, s.Q, s.C});
  {
    KernelCall nogil;
    max_pool2d_window(s, x.data(), y.mutable_data(), win.mutable_data());
  }
  return py::make_tuple(y, win);
}

f32array max_pool2d_window_backward_py(py::handle dy_obj, py::handle win_obj, py::handle x_shape_obj,
                                       py::handle pool, py::handle stride, py::handle padding) {
  f32array dy = as_f32(dy_obj, "dy");
  require_rank(dy, 4, "dy", "(N, P, Q, C)");
  const std::vector<i64> xs = parse_x_shape(x_shape_obj);
  const Pool2dShape s = pool2d_geometry(xs, pool, stride, padding, "x_shape");
  require_small_window(s);
  require_shape(dy, {s.N, s.P, s.Q, s.C}, "dy");
  if (is_none(win_obj)) type_error("win: expected a uint8 array, got None");
  if (!py::isinstance<py::array>(win_obj))
    type_error("win: expected a uint8 array (as returned by _max_pool2d_window), got " +
               std::string(py::str(py::type::of(win_obj).attr("__name__"))));
  py::array win_any = py::reinterpret_borrow<py::array>(win_obj);
  if (!win_any.dtype().is(py::dtype::of<std::uint8_t>()))
    type_error("win: expected a uint8 array (as returned by _max_pool2d_window), got dtype " +
               std::string(py::str(win_any.dtype())));
  require_shape(win_any, {s.N, s.P, s.Q, s.C}, "win");
  auto win = u8array::ensure(win_any);  // C-contiguous (copies a strided view once)
  if (!win) type_error("win: could not read the array as C-contiguous uint8");
  f32array dx = new_f32(xs);
  i64 bad;
  {
    KernelCall nogil;
    bad = max_pool2d_window_backward(s, dy.data(), win.data(), dx.mutable_data());
  }
  if (bad >= 0)
    value_error("win: expected offsets in [0, " + std::to_string(s.kh * s.kw) +
                ") that point at real (non-padding) elements of x_shape " + shape_str(xs) +
                ", got " + std::to_string(static_cast<int>(win.data()[bad])) + " at flat position " +
                std::to_string(bad));
  return dx;
}

f32array avg_pool2d_py(py::handle x_obj, py::handle pool, py::handle stride, py::handle padding,
                       bool count_include_pad) {
  f32array x = checked_x(x_obj);
  const Pool2dShape s = pool2d_geometry(shape_of(x), pool, stride, padding, "x");
  f32array y = new_f32({s.N, s.P, s.Q, s.C});
  {
    KernelCall nogil;
    avg_pool2d(s, count_include_pad, x.data(), y.mutable_data());
  }
  return y;
}

f32array avg_pool2d_backward_py(py::handle dy_obj, py::handle x_shape_obj, py::handle pool,
                                py::handle stride, py::handle padding, bool count_include_pad) {
  f32array dy = as_f32(dy_obj, "dy");
  require_rank(dy, 4, "dy", "(N, P, Q, C)");
  const std::vector<i64> xs = parse_x_shape(x_shape_obj);
  const Pool2dShape s = pool2d_geometry(xs, pool, stride, padding, "x_shape");
  require_shape(dy, {s.N, s.P, s.Q, s.C}, "dy");
  f32array dx = new_f32(xs);
  {
    KernelCall nogil;
    avg_pool2d_backward(s, count_include_pad, dy.data(), dx.mutable_data());
  }
  return dx;
}

void register_pool(py::module_& m) {
  m.def("max_pool2d", &max_pool2d_py, py::arg("x"), py::arg("pool") = 2, py::kw_only(),
        py::arg("stride") = py::none(), py::arg("padding") = 0,
        "Max pooling of x (N, H, W, C) -> (y, idx), both (N, P, Q, C); idx holds flat\n"
        "indices into x (int64). Padding acts as -inf and must be <= pool//2;\n"
        "stride=None means stride = pool. Ties go to the first maximum in row-major\n"
        "window order; NaN propagates.");
  m.def("max_pool2d_backward", &max_pool2d_backward_py, py::arg("dy"), py::arg("idx"),
        py::arg("x_shape"),
        "Gradient of max_pool2d: dx of shape x_shape with dy scatter-added at idx.");
  m.def("max_pool2d_inference", &max_pool2d_inference_py, py::arg("x"), py::arg("pool") = 2,
        py::kw_only(), py::arg("stride") = py::none(), py::arg("padding") = 0,
        "Private (the MaxPooling2D layer): the y of max_pool2d without the indices.");
  m.def("max_pool2d_window", &max_pool2d_window_py, py::arg("x"), py::arg("pool") = 2,
        py::kw_only(), py::arg("stride") = py::none(), py::arg("padding") = 0,
        "Private (the MaxPooling2D layer): (y, win), y as max_pool2d; win (uint8) the\n"
        "winner's offset dh*kw + dw inside its padded window. Windows of <= 256 elements.");
  m.def("max_pool2d_window_backward", &max_pool2d_window_backward_py, py::arg("dy"),
        py::arg("win"), py::arg("x_shape"), py::arg("pool") = 2, py::kw_only(),
        py::arg("stride") = py::none(), py::arg("padding") = 0,
        "Private (the MaxPooling2D layer): gradient from max_pool2d_window's offsets;\n"
        "bitwise the dx of max_pool2d_backward with the matching flat indices.");
  m.def("avg_pool2d", &avg_pool2d_py, py::arg("x"), py::arg("pool") = 2, py::kw_only(),
        py::arg("stride") = py::none(), py::arg("padding") = 0,
        py::arg("count_include_pad") = false,
        "Average pooling of x (N, H, W, C) -> (N, P, Q, C) with PyTorch's padding\n"
        "semantics (count_include_pad: divide by the full window, else by the number\n"
        "of real elements).");
  m.def("avg_pool2d_backward", &avg_pool2d_backward_py, py::arg("dy"), py::arg("x_shape"),
        py::arg("pool") = 2, py::kw_only(), py::arg("stride") = py::none(),
        py::arg("padding") = 0, py::arg("count_include_pad") = false,
        "Gradient of avg_pool2d: dx of shape x_shape from dy (N, P, Q, C).");
}

}  // namespace

FASTNN_REGISTER(register_pool);

}  // namespace bind
}  // namespace fastnn
