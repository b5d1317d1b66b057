// Bindings: activations, softmax, dropout. Argument checks, GIL release, nothing else.
#include <cmath>
#include <cstdint>
#include <string>

#include "common.hpp"
#include "op_rules.hpp"
#include "fastnn/activation.hpp"
#include "fastnn/dropout.hpp"

namespace fastnn {
namespace bind {
namespace {

using u8array = py::array_t<std::uint8_t, py::array::c_style>;

i64 size_of(const py::array& a) { return static_cast<i64>(a.size()); }

using UnaryKernel = void (*)(const float*, float*, i64);
using BackwardKernel = void (*)(const float*, const float*, float*, i64);

f32array unary(py::handle x_obj, UnaryKernel kernel) {
  f32array x = as_f32(x_obj, "x");
  f32array y = new_f32(shape_of(x));
  {
    KernelCall nogil;
    kernel(x.data(), y.mutable_data(), size_of(x));
  }
  return y;
}

f32array backward(py::handle dy_obj, py::handle x_obj, BackwardKernel kernel) {
  f32array dy = as_f32(dy_obj, "dy");
  f32array x = as_f32(x_obj, "x");
  require_same_shape(shape_of(dy), shape_of(x), "x");
  f32array dx = new_f32(shape_of(x));
  {
    KernelCall nogil;
    kernel(dy.data(), x.data(), dx.mutable_data(), size_of(x));
  }
  return dx;
}

// (outer, len, inner) view of a C-contiguous shape around axis.
void split_axis(const py::array& a, int axis, i64& outer, i64& len, i64& inner) {
  outer = 1;
  inner = 1;
  for (int i = 0; i < axis; ++i) outer *= a.shape(i);
  len = a.shape(axis);
  for (py::ssize_t i = axis + 1; i < a.ndim(); ++i) inner *= a.shape(i);
}

f32array softmax(py::handle x_obj, py::handle axis_obj) {
  f32array x = as_f32(x_obj, "x");
  const int axis = parse_axis(axis_obj, static_cast<int>(x.ndim()), "axis");
  i64 outer, len, inner;
  split_axis(x, axis, outer, len, inner);
  f32array y = new_f32(shape_of(x));
  {
    KernelCall nogil;
    softmax_forward(x.data(), y.mutable_data(), outer, len, inner);
  }
  return y;
}

f32array softmax_bwd(py::handle dy_obj, py::handle y_obj, py::handle axis_obj) {
  f32array dy = as_f32(dy_obj, "dy");
  f32array y = as_f32(y_obj, "y");
  require_same_shape(shape_of(dy), shape_of(y), "y");
  const int axis = parse_axis(axis_obj, static_cast<int>(y.ndim()), "axis");
  i64 outer, len, inner;
  split_axis(y, axis, outer, len, inner);
  f32array dx = new_f32(shape_of(y));
  {
    KernelCall nogil;
    softmax_backward(dy.data(), y.data(), dx.mutable_data(), outer, len, inner);
  }
  return dx;
}

py::tuple dropout(py::handle x_obj, py::handle rate_obj, py::handle seed_obj,
                  py::handle offset_obj) {
  f32array x = as_f32(x_obj, "x");
  const double rate = parse_rate(rate_obj);
  const std::uint64_t seed = parse_u64(seed_obj, "seed");
  const std::uint64_t offset = parse_u64(offset_obj, "sample_offset");
  // Per-sample size: the product of the dimensions after the first (1 for 0-D/1-D).
  std::uint64_t per_sample = 1;
  for (py::ssize_t i = 1; i < x.ndim(); ++i) per_sample *= static_cast<std::uint64_t>(x.shape(i));
  const std::vector<i64> shape = shape_of(x);
  f32array y = new_f32(shape);
  u8array mask(std::vector<py::ssize_t>(shape.begin(), shape.end()));
  {
    KernelCall nogil;
    dropout_forward(x.data(), y.mutable_data(), mask.mutable_data(), size_of(x), rate, seed,
                    offset * per_sample);
  }
  return py::make_tuple(y, mask);
}

f32array dropout_bwd(py::handle dy_obj, py::handle mask_obj, py::handle rate_obj) {
  f32array dy = as_f32(dy_obj, "dy");
  if (mask_obj.is_none() || py::isinstance<py::str>(mask_obj) || py::isinstance<py::bytes>(mask_obj))
    type_error("mask: expected an integer or bool array, got " +
               std::string(py::str(py::type::of(mask_obj).attr("__name__"))));
  py::array m = py::array::ensure(mask_obj);
  if (!m)
    type_error("mask: expected an integer or bool array, got " +
               std::string(py::str(py::type::of(mask_obj).attr("__name__"))));
  const char kind = m.dtype().kind();
  if (kind != 'b' && kind != 'i' && kind != 'u')
    type_error("mask: expected an integer or bool array, got dtype " + std::string(py::str(m.dtype())));
  if (shape_of(m) != shape_of(dy))
    value_error("mask: expected the shape of dy " + shape_str(dy) + ", got " + shape_str(m));
  const double rate = parse_rate(rate_obj);
  // One byte per element, nonzero = kept: bool and uint8 are read as they are,
  // other integer dtypes become bool (nonzero) once here.
  if (kind != 'b' && !(kind == 'u' && m.itemsize() == 1)) m = m.attr("astype")("bool");
  u8array keep = u8array::ensure(m);  // same bytes, C-contiguous
  if (!keep) type_error("mask: could not read the mask as bytes");
  f32array dx = new_f32(shape_of(dy));
  {
    KernelCall nogil;
    dropout_backward(dy.data(), keep.data(), dx.mutable_data(), size_of(dy), rate);
  }
  return dx;
}

void register_activation(py::module_& m) {
  m.def("relu", [](py::handle x) { return unary(x, relu_forward); }, py::arg("x"),
        "relu(x) = max(x, 0) element-wise; NaN stays NaN.");
  m.def("sigmoid", [](py::handle x) { return unary(x, sigmoid_forward); }, py::arg("x"),
        "sigmoid(x) = 1 / (1 + exp(-x)) element-wise (stable for any x).");
  m.def("tanh", [](py::handle x) { return unary(x, tanh_forward); }, py::arg("x"),
        "tanh(x) element-wise.");
  m.def("softmax", &softmax, py::arg("x"), py::arg("axis") = -1,
        "softmax(x, axis=-1): exp(x - max) / sum, along any axis.");
  m.def("relu_backward", [](py::handle dy, py::handle x) { return backward(dy, x, relu_backward); },
        py::arg("dy"), py::arg("x"), "dx = dy * (x > 0); x is the forward input.");
  m.def("sigmoid_backward",
        [](py::handle dy, py::handle x) { return backward(dy, x, sigmoid_backward); },
        py::arg("dy"), py::arg("x"), "dx = dy * s * (1 - s), s = sigmoid(x); x is the forward input.");
  m.def("tanh_backward", [](py::handle dy, py::handle x) { return backward(dy, x, tanh_backward); },
        py::arg("dy"), py::arg("x"), "dx = dy * (1 - tanh(x)^2); x is the forward input.");
  m.def("softmax_backward", &softmax_bwd, py::arg("dy"), py::arg("y"), py::arg("axis") = -1,
        "dx = y * (dy - sum(dy * y, axis)); y is the softmax output.");
  m.def("dropout", &dropout, py::arg("x"), py::arg("rate"), py::arg("seed"), py::kw_only(),
        py::arg("sample_offset") = 0,
        "y, mask = dropout(x, rate, seed, *, sample_offset=0): inverted dropout with a "
        "counter-based stream keyed by (seed, (sample_offset + n) * per_sample_size + j). "
        "mask is uint8 (1 kept, 0 dropped).");
  m.def("dropout_backward", &dropout_bwd, py::arg("dy"), py::arg("mask"), py::arg("rate"),
        "dx = dy * (mask != 0) / (1 - rate).");
}
FASTNN_REGISTER(register_activation);

}  // namespace
}  // namespace bind
}  // namespace fastnn
