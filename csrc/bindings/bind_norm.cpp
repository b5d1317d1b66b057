// Bindings: batch_norm, batch_norm_backward (channels last, Keras semantics).
//
// cache (opaque to callers; checked again by batch_norm_backward) is the tuple
//   (training: bool, x: float32 (..., C), gamma: float32 (C,) copy or None,
//    has_beta: bool, mean: float32 (C,), inv_std: float32 (C,))
// where mean/inv_std are the batch statistics (training=True) or a snapshot of
// the running statistics (training=False), inv_std = 1/sqrt(var + epsilon).
// x is the (float32) input itself, not a copy: modifying it in place between the
// forward and the backward changes the gradient.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "common.hpp"
#include "op_rules.hpp"
#include "fastnn/batchnorm.hpp"

namespace fastnn {
namespace bind {
namespace {


f32array copy_f32(const f32array& a) {
  f32array c = new_f32(shape_of(a));
  const float* s = a.data();
  float* d = c.mutable_data();
  for (py::ssize_t i = 0; i < a.size(); ++i) d[i] = s[i];
  return c;
}

py::tuple batch_norm_impl(py::handle x_obj, py::handle gamma_obj, py::handle beta_obj,
                          py::handle rm_obj, py::handle rv_obj, bool training,
                          double momentum, double epsilon) {
  check_batch_norm_args(momentum, epsilon);
  f32array x = as_f32(x_obj, "x");
  const ChannelRows v = channel_rows(shape_of(x), "x");
  const i64 C = v.C;
  f32array gamma, beta;
  const bool has_gamma = !gamma_obj.is_none(), has_beta = !beta_obj.is_none();
  if (has_gamma) {
    gamma = as_f32(gamma_obj, "gamma");
    require_shape(gamma, {C}, "gamma");
    gamma = copy_f32(gamma);  // the cache keeps its own copy
  }
  if (has_beta) {
    beta = as_f32(beta_obj, "beta");
    require_shape(beta, {C}, "beta");
  }
  f32array rm, rv;
  if (training) {
    rm = as_f32_inplace(rm_obj, "running_mean");
    rv = as_f32_inplace(rv_obj, "running_var");
  } else {
    rm = as_f32(rm_obj, "running_mean");
    rv = as_f32(rv_obj, "running_var");
  }
  require_shape(rm, {C}, "running_mean");
  require_shape(rv, {C}, "running_var");
  if (training && overlaps(memory_of(rm, "running_mean"), memory_of(rv, "running_var")))
    value_error("running_var: must not share memory with running_mean (both are updated in place)");

  f32array y = new_f32(shape_of(x));
  f32array mean = new_f32({C}), inv_std = new_f32({C});
  {
    KernelCall nogil;
    if (training)
      batch_norm_train_forward(v.rows, C, x.data(), has_gamma ? gamma.data() : nullptr,
                               has_beta ? beta.data() : nullptr, momentum, epsilon,
                               rm.mutable_data(), rv.mutable_data(), y.mutable_data(),
                               mean.mutable_data(), inv_std.mutable_data());
    else
      batch_norm_infer_forward(v.rows, C, x.data(), has_gamma ? gamma.data() : nullptr,
                               has_beta ? beta.data() : nullptr, rm.data(), rv.data(),
                               epsilon, y.mutable_data(), mean.mutable_data(),
                               inv_std.mutable_data());
  }
  py::object g = has_gamma ? py::object(gamma) : py::object(py::none());
  py::tuple cache = py::make_tuple(py::bool_(training), x, g, py::bool_(has_beta), mean, inv_std);
  return py::make_tuple(y, cache);
}

py::tuple batch_norm_backward_impl(py::handle dy_obj, py::handle cache_obj) {
  const BatchNormCacheFlags flags = batch_norm_cache_flags(cache_obj);
  const py::tuple& cache = flags.cache;
  const bool training = flags.training;
  const bool has_beta = flags.has_beta;
  f32array x = as_f32(cache[1], "cache[1] (x)");
  const ChannelRows v = channel_rows(shape_of(x), "cache[1] (x)");
  const i64 C = v.C;
  const bool has_gamma = !cache[2].is_none();
  f32array gamma;
  if (has_gamma) {
    gamma = as_f32(cache[2], "cache[2] (gamma)");
    require_shape(gamma, {C}, "cache[2] (gamma)");
  }
  f32array mean = as_f32(cache[4], "cache[4] (mean)");
  require_shape(mean, {C}, "cache[4] (mean)");
  f32array inv_std = as_f32(cache[5], "cache[5] (inv_std)");
  require_shape(inv_std, {C}, "cache[5] (inv_std)");
  f32array dy = as_f32(dy_obj, "dy");
  require_shape(dy, shape_of(x), "dy");

  f32array dx = new_f32(shape_of(x));
  f32array dgamma, dbeta;
  if (has_gamma) dgamma = new_f32({C});
  if (has_beta) dbeta = new_f32({C});
  {
    KernelCall nogil;
    batch_norm_backward(training, v.rows, C, dy.data(), x.data(),
                        has_gamma ? gamma.data() : nullptr, mean.data(), inv_std.data(),
                        dx.mutable_data(), has_gamma ? dgamma.mutable_data() : nullptr,
                        has_beta ? dbeta.mutable_data() : nullptr);
  }
  py::object og = has_gamma ? py::object(dgamma) : py::object(py::none());
  py::object ob = has_beta ? py::object(dbeta) : py::object(py::none());
  return py::make_tuple(dx, og, ob);
}

void register_norm(py::module_& m) {
  m.def("batch_norm", &batch_norm_impl, py::arg("x"), py::arg("gamma"), py::arg("beta"),
        py::arg("running_mean"), py::arg("running_var"), py::kw_only(), py::arg("training"),
        py::arg("momentum") = 0.99, py::arg("epsilon") = 1e-3,
        "Batch normalization over all axes but the last (Keras BatchNormalization). "
        "Returns (y, cache). training=True normalizes with the batch mean and biased "
        "variance and updates running_mean/running_var in place (writable C-contiguous "
        "float32 (C,) arrays): running = running*momentum + batch*(1-momentum). "
        "training=False uses the running statistics and modifies nothing. gamma=None "
        "means scale 1, beta=None offset 0.");
  m.def("batch_norm_backward", &batch_norm_backward_impl, py::arg("dy"), py::arg("cache"),
        "Gradients of batch_norm: returns (dx, dgamma, dbeta); dgamma/dbeta are None when "
        "gamma/beta were None. Training-mode caches give the full gradient through the "
        "batch statistics; inference-mode caches give dx = dy*gamma/sqrt(running_var+eps).");
}

FASTNN_REGISTER(register_norm);

}  // namespace
}  // namespace bind
}  // namespace fastnn
