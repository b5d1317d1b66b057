// CUDA bindings: softmax_cross_entropy, mse, mae (the loss comes back as a float).
#include "fastnn/cuda/kernels.hpp"
#include "ops_common.hpp"

namespace fastnn {
namespace bind_cuda {
namespace {

py::tuple softmax_cross_entropy(py::handle logits_obj, py::handle labels_obj) {
  DeviceArray logits = f32_arg(logits_obj, "logits");
  require_rank(logits, 2, "logits", "(N, K)");
  const i64 N = logits.shape[0], K = logits.shape[1];
  if (K < 1) value_error("logits: expected at least one class (K >= 1), got shape " + shape_str(logits.shape));
  DeviceArray lab = device_arg(labels_obj, "labels");
  DeviceArray dlogits = new_f32({N, K});
  double loss = 0.0;
  if (lab.dtype != DType::float32) {
    const bool col = lab.shape.size() == 2 && lab.shape[1] == 1 && lab.shape[0] == N;
    if (!(lab.shape.size() == 1 && lab.shape[0] == N) && !col)
      value_error("labels: integer labels are class indices of shape (" + std::to_string(N) +
                  ",) to match logits " + shape_str(logits.shape) + ", got shape " + shape_str(lab.shape) +
                  " (pass one-hot / probability rows as a float array)");
    i64 bad = -1;
    {
      py::gil_scoped_release nogil;
      loss = cuda::softmax_cross_entropy_index(logits.f32(), lab.data, dtype_size(lab.dtype), dlogits.f32(), N,
                                               K, &bad);
    }
    if (bad >= 0)
      value_error("labels: expected class indices in [0, " + std::to_string(K) + "), got an index outside "
                  "at position " + std::to_string(bad));
  } else {
    if (lab.shape.size() == 1 && !(N == 0 && lab.size() == 0))
      type_error("labels: class indices of shape (N,) must have an integer dtype, got float32 "
                 "(pass probability rows as a float (N, K) array)");
    if (!(N == 0 && lab.size() == 0)) {
      require_shape(lab, {N, K}, "labels");
      py::gil_scoped_release nogil;
      loss = cuda::softmax_cross_entropy_prob(logits.f32(), lab.f32(), dlogits.f32(), N, K);
    }
  }
  return py::make_tuple(py::float_(loss), dlogits);
}

using LossKernel = double (*)(const float*, const float*, float*, i64);

py::tuple pointwise(py::handle pred_obj, py::handle target_obj, LossKernel kernel) {
  DeviceArray pred = f32_arg(pred_obj, "pred"), target = f32_arg(target_obj, "target");
  if (target.shape != pred.shape)
    value_error("target: expected the shape of pred " + shape_str(pred.shape) + ", got " + shape_str(target.shape));
  DeviceArray dpred = new_f32(pred.shape);
  double loss;
  {
    py::gil_scoped_release nogil;
    loss = kernel(pred.f32(), target.f32(), dpred.f32(), pred.size());
  }
  return py::make_tuple(py::float_(loss), dpred);
}

void register_loss(py::module_& m) {
  m.def("softmax_cross_entropy", &softmax_cross_entropy, py::arg("logits"), py::arg("labels"));
  m.def("mse", [](py::handle p, py::handle t) { return pointwise(p, t, &cuda::mse); }, py::arg("pred"),
        py::arg("target"));
  m.def("mae", [](py::handle p, py::handle t) { return pointwise(p, t, &cuda::mae); }, py::arg("pred"),
        py::arg("target"));
}
FASTNN_REGISTER(register_loss);

}  // namespace
}  // namespace bind_cuda
}  // namespace fastnn
