// CUDA bindings: activations, softmax, dropout. Argument checks, GIL release, nothing else.
#include "fastnn/cuda/kernels.hpp"
#include "ops_common.hpp"

namespace fastnn {
namespace bind_cuda {

namespace {

using UnaryKernel = void (*)(const float*, float*, i64);
using BackwardKernel = void (*)(const float*, const float*, float*, i64);

DeviceArray unary(py::handle x_obj, UnaryKernel kernel) {
  DeviceArray x = f32_arg(x_obj, "x");
  DeviceArray y = new_f32(x.shape);
  py::gil_scoped_release nogil;
  kernel(x.f32(), y.f32(), x.size());
  return y;
}

DeviceArray backward(py::handle dy_obj, py::handle x_obj, BackwardKernel kernel) {
  DeviceArray dy = f32_arg(dy_obj, "dy");
  DeviceArray x = f32_arg(x_obj, "x");
  require_same_shape(dy.shape, x.shape, "x");
  DeviceArray dx = new_f32(x.shape);
  py::gil_scoped_release nogil;
  kernel(dy.f32(), x.f32(), dx.f32(), x.size());
  return dx;
}

void split_axis(const DeviceArray& a, int axis, i64& outer, i64& len, i64& inner) {
  outer = 1;
  inner = 1;
  for (int i = 0; i < axis; ++i) outer *= a.shape[i];
  len = a.shape[axis];
  for (std::size_t i = axis + 1; i < a.shape.size(); ++i) inner *= a.shape[i];
}

DeviceArray softmax(py::handle x_obj, py::handle axis_obj) {
  DeviceArray x = f32_arg(x_obj, "x");
  const int axis = parse_axis(axis_obj, static_cast<int>(x.shape.size()), "axis");
  i64 outer, len, inner;
  split_axis(x, axis, outer, len, inner);
  DeviceArray y = new_f32(x.shape);
  py::gil_scoped_release nogil;
  cuda::softmax_forward(x.f32(), y.f32(), outer, len, inner);
  return y;
}

DeviceArray softmax_bwd(py::handle dy_obj, py::handle y_obj, py::handle axis_obj) {
  DeviceArray dy = f32_arg(dy_obj, "dy");
  DeviceArray y = f32_arg(y_obj, "y");
  require_same_shape(dy.shape, y.shape, "y");
  const int axis = parse_axis(axis_obj, static_cast<int>(y.shape.size()), "axis");
  i64 outer, len, inner;
  split_axis(y, axis, outer, len, inner);
  DeviceArray dx = new_f32(y.shape);
  py::gil_scoped_release nogil;
  cuda::softmax_backward(dy.f32(), y.f32(), dx.f32(), outer, len, inner);
  return dx;
}

py::tuple dropout(py::handle x_obj, py::handle rate_obj, py::handle seed_obj, py::handle offset_obj) {
  DeviceArray x = f32_arg(x_obj, "x");
  const double rate = parse_rate(rate_obj);
  const std::uint64_t seed = parse_u64(seed_obj, "seed");
  const std::uint64_t offset = parse_u64(offset_obj, "sample_offset");
  std::uint64_t per_sample = 1;
  for (std::size_t i = 1; i < x.shape.size(); ++i) per_sample *= static_cast<std::uint64_t>(x.shape[i]);
  DeviceArray y = new_f32(x.shape);
  DeviceArray mask = device_empty(x.shape, DType::uint8);
  {
    py::gil_scoped_release nogil;
    cuda::dropout_forward(x.f32(), y.f32(), static_cast<std::uint8_t*>(mask.data), x.size(), rate, seed,
                          offset * per_sample);
  }
  return py::make_tuple(y, mask);
}

DeviceArray dropout_bwd(py::handle dy_obj, py::handle mask_obj, py::handle rate_obj) {
  DeviceArray dy = f32_arg(dy_obj, "dy");
  DeviceArray mask = device_arg(mask_obj, "mask");
  if (mask.dtype != DType::uint8)
    type_error(std::string("mask: expected a uint8 (or bool) GPU array as dropout returns, got dtype ") +
               dtype_name(mask.dtype));
  if (mask.shape != dy.shape)
    value_error("mask: expected the shape of dy " + shape_str(dy.shape) + ", got " + shape_str(mask.shape));
  const double rate = parse_rate(rate_obj);
  DeviceArray dx = new_f32(dy.shape);
  py::gil_scoped_release nogil;
  cuda::dropout_backward(dy.f32(), static_cast<const std::uint8_t*>(mask.data), dx.f32(), dy.size(), rate);
  return dx;
}

void register_activation(py::module_& m) {
  m.def("relu", [](py::handle x) { return unary(x, cuda::relu_forward); }, py::arg("x"));
  m.def("sigmoid", [](py::handle x) { return unary(x, cuda::sigmoid_forward); }, py::arg("x"));
  m.def("tanh", [](py::handle x) { return unary(x, cuda::tanh_forward); }, py::arg("x"));
  m.def("softmax", &softmax, py::arg("x"), py::arg("axis") = -1);
  m.def("relu_backward", [](py::handle dy, py::handle x) { return backward(dy, x, cuda::relu_backward); },
        py::arg("dy"), py::arg("x"));
  m.def("sigmoid_backward", [](py::handle dy, py::handle x) { return backward(dy, x, cuda::sigmoid_backward); },
        py::arg("dy"), py::arg("x"));
  m.def("tanh_backward", [](py::handle dy, py::handle x) { return backward(dy, x, cuda::tanh_backward); },
        py::arg("dy"), py::arg("x"));
  m.def("softmax_backward", &softmax_bwd, py::arg("dy"), py::arg("y"), py::arg("axis") = -1);
  m.def("dropout", &dropout, py::arg("x"), py::arg("rate"), py::arg("seed"), py::kw_only(),
        py::arg("sample_offset") = 0);
  m.def("dropout_backward", &dropout_bwd, py::arg("dy"), py::arg("mask"), py::arg("rate"));
}
FASTNN_REGISTER(register_activation);

}  // namespace
}  // namespace bind_cuda
}  // namespace fastnn
