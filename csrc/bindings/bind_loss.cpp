// Bindings: losses. Argument checks, GIL release, nothing else.
#include <cstdint>
#include <string>

#include "common.hpp"
#include "fastnn/loss.hpp"

namespace fastnn {
namespace bind {
namespace {

using LossKernel = double (*)(const float*, const float*, float*, i64);

py::array to_array(py::handle obj, const char* name) {
  if (obj.is_none() || py::isinstance<py::str>(obj) || py::isinstance<py::bytes>(obj))
    type_error(std::string(name) + ": expected a numeric array, got " +
               std::string(py::str(py::type::of(obj).attr("__name__"))));
  py::array a = py::array::ensure(obj);
  if (!a)
    type_error(std::string(name) + ": expected a numeric array, got " +
               std::string(py::str(py::type::of(obj).attr("__name__"))));
  return a;
}

// logits (N, K); labels: integer class indices (N,) (or Keras-style (N, 1)), or
// real-valued probability / one-hot rows (N, K).
py::tuple softmax_cross_entropy(py::handle logits_obj, py::handle labels_obj) {
  f32array logits = as_f32(logits_obj, "logits");
  require_rank(logits, 2, "logits", "(N, K)");
  const i64 N = logits.shape(0), K = logits.shape(1);
  if (K < 1) value_error("logits: expected at least one class (K >= 1), got shape " + shape_str(logits));
  py::array lab = to_array(labels_obj, "labels");
  const char kind = lab.dtype().kind();
  f32array dlogits = new_f32({N, K});
  double loss = 0.0;
  if (kind == 'i' || kind == 'u') {
    const bool col = lab.ndim() == 2 && lab.shape(1) == 1 && lab.shape(0) == N;
    if (!(lab.ndim() == 1 && lab.shape(0) == N) && !col)
      value_error("labels: integer labels are class indices of shape (" + std::to_string(N) +
                  ",) to match logits " + shape_str(logits) + ", got shape " + shape_str(lab) +
                  " (pass one-hot / probability rows as a float array)");
    auto idx = as_labels(lab, "labels");
    const std::int64_t* y = idx.data();
    for (i64 n = 0; n < N; ++n)
      if (y[n] < 0 || y[n] >= K)
        value_error("labels: expected class indices in [0, " + std::to_string(K) + "), got " +
                    std::to_string(y[n]) + " at position " + std::to_string(n));
    {
      KernelCall nogil;
      loss = softmax_cross_entropy_index(logits.data(), y, dlogits.mutable_data(), N, K);
    }
  } else if (kind == 'f' && N == 0 && lab.size() == 0) {
    // an empty batch with an empty label list (e.g. labels=[]): nothing to do
  } else if (kind == 'f' && lab.ndim() == 1) {
    type_error("labels: class indices of shape (N,) must have an integer dtype, got " +
               std::string(py::str(lab.dtype())) + " (pass probability rows as a float (N, K) array)");
  } else if (kind == 'f') {
    f32array t = as_f32(lab, "labels");
    if (shape_of(t) != std::vector<i64>{N, K})
      value_error("labels: float labels are probability / one-hot rows of shape " +
                  shape_str(std::vector<i64>{N, K}) + " to match logits, got shape " + shape_str(t) +
                  " (pass class indices as an integer array)");
    {
      KernelCall nogil;
      loss = softmax_cross_entropy_prob(logits.data(), t.data(), dlogits.mutable_data(), N, K);
    }
  } else {
    type_error("labels: expected integer class indices or float probability rows, got dtype " +
               std::string(py::str(lab.dtype())));
  }
  return py::make_tuple(py::float_(loss), dlogits);
}

py::tuple elementwise_loss(py::handle pred_obj, py::handle target_obj, LossKernel kernel) {
  f32array pred = as_f32(pred_obj, "pred");
  f32array target = as_f32(target_obj, "target");
  if (shape_of(target) != shape_of(pred))
    value_error("target: expected the shape of pred " + shape_str(pred) + ", got " +
                shape_str(target));
  f32array dpred = new_f32(shape_of(pred));
  double loss = 0.0;
  {
    KernelCall nogil;
    loss = kernel(pred.data(), target.data(), dpred.mutable_data(), static_cast<i64>(pred.size()));
  }
  return py::make_tuple(py::float_(loss), dpred);
}

void register_loss(py::module_& m) {
  m.def("softmax_cross_entropy", &softmax_cross_entropy, py::arg("logits"), py::arg("labels"),
        "loss, dlogits = softmax_cross_entropy(logits (N, K), labels): labels are integer class "
        "indices (N,) or float probability rows (N, K); loss is the mean over N, "
        "dlogits = (softmax - onehot) / N. N == 0 gives loss 0.0.");
  m.def("mse", [](py::handle p, py::handle t) { return elementwise_loss(p, t, &fastnn::mse); },
        py::arg("pred"), py::arg("target"),
        "loss, dpred = mse(pred, target): mean((pred - target)^2), dpred = 2 (pred - target) / size.");
  m.def("mae", [](py::handle p, py::handle t) { return elementwise_loss(p, t, &fastnn::mae); },
        py::arg("pred"), py::arg("target"),
        "loss, dpred = mae(pred, target): mean(|pred - target|), dpred = sign(pred - target) / size.");
}
FASTNN_REGISTER(register_loss);

}  // namespace
}  // namespace bind
}  // namespace fastnn
