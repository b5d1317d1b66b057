// CUDA bindings: batch_norm, batch_norm_backward, with the rules and the cache
// layout of the CPU bindings (csrc/bindings/bind_norm.cpp):
//   cache = (training, x, gamma copy or None, has_beta, mean, inv_std), GPU arrays.
#include <cmath>

#include "fastnn/cuda/kernels.hpp"
#include "fastnn/cuda/runtime.hpp"
#include "ops_common.hpp"

namespace fastnn {
namespace bind_cuda {
namespace {

py::tuple batch_norm(py::handle x_obj, py::handle gamma_obj, py::handle beta_obj, py::handle rm_obj,
                     py::handle rv_obj, bool training, double momentum, double epsilon) {
  check_batch_norm_args(momentum, epsilon);
  DeviceArray x = f32_arg(x_obj, "x");
  const ChannelRows v = channel_rows(x.shape, "x");
  const i64 C = v.C;
  DeviceArray gamma, beta;
  const bool has_gamma = !gamma_obj.is_none(), has_beta = !beta_obj.is_none();
  if (has_gamma) {
    DeviceArray g = f32_arg(gamma_obj, "gamma");
    require_shape(g, {C}, "gamma");
    gamma = new_f32({C});  // the cache keeps its own copy
    cuda::copy_device_to_device(gamma.data, g.data, g.nbytes());
  }
  if (has_beta) {
    beta = f32_arg(beta_obj, "beta");
    require_shape(beta, {C}, "beta");
  }
  DeviceArray rm = training ? f32_inplace_arg(rm_obj, "running_mean") : f32_arg(rm_obj, "running_mean");
  DeviceArray rv = training ? f32_inplace_arg(rv_obj, "running_var") : f32_arg(rv_obj, "running_var");
  require_shape(rm, {C}, "running_mean");
  require_shape(rv, {C}, "running_var");
  if (training && overlaps(memory_of(rm, "running_mean"), memory_of(rv, "running_var")))
    value_error("running_var: must not share memory with running_mean (both are updated in place)");
  DeviceArray y = new_f32(x.shape);
  DeviceArray mean = new_f32({C}), inv_std = new_f32({C});
  {
    py::gil_scoped_release nogil;
    if (training)
      cuda::batch_norm_train_forward(v.rows, C, x.f32(), has_gamma ? gamma.f32() : nullptr,
                                     has_beta ? beta.f32() : nullptr, momentum, epsilon, rm.f32(), rv.f32(),
                                     y.f32(), mean.f32(), inv_std.f32());
    else
      cuda::batch_norm_infer_forward(v.rows, C, x.f32(), has_gamma ? gamma.f32() : nullptr,
                                     has_beta ? beta.f32() : nullptr, rm.f32(), rv.f32(), epsilon, y.f32(),
                                     mean.f32(), inv_std.f32());
  }
  py::object g = has_gamma ? py::cast(gamma) : py::none();
  py::tuple cache = py::make_tuple(py::bool_(training), x, g, py::bool_(has_beta), mean, inv_std);
  return py::make_tuple(y, cache);
}

py::tuple batch_norm_backward(py::handle dy_obj, py::handle cache_obj) {
  const BatchNormCacheFlags flags = batch_norm_cache_flags(cache_obj);
  const py::tuple& cache = flags.cache;
  const bool training = flags.training, has_beta = flags.has_beta;
  DeviceArray x = f32_arg(cache[1], "cache[1] (x)");
  const ChannelRows v = channel_rows(x.shape, "cache[1] (x)");
  const i64 C = v.C;
  const bool has_gamma = !cache[2].is_none();
  DeviceArray gamma;
  if (has_gamma) {
    gamma = f32_arg(cache[2], "cache[2] (gamma)");
    require_shape(gamma, {C}, "cache[2] (gamma)");
  }
  DeviceArray mean = f32_arg(cache[4], "cache[4] (mean)");
  require_shape(mean, {C}, "cache[4] (mean)");
  DeviceArray inv_std = f32_arg(cache[5], "cache[5] (inv_std)");
  require_shape(inv_std, {C}, "cache[5] (inv_std)");
  DeviceArray dy = f32_arg(dy_obj, "dy");
  require_shape(dy, x.shape, "dy");
  DeviceArray dx = new_f32(x.shape), dgamma, dbeta;
  if (has_gamma) dgamma = new_f32({C});
  if (has_beta) dbeta = new_f32({C});
  {
    py::gil_scoped_release nogil;
    cuda::batch_norm_backward(training, v.rows, C, dy.f32(), x.f32(), has_gamma ? gamma.f32() : nullptr,
                              mean.f32(), inv_std.f32(), dx.f32(), has_gamma ? dgamma.f32() : nullptr,
                              has_beta ? dbeta.f32() : nullptr);
  }
  return py::make_tuple(dx, has_gamma ? py::cast(dgamma) : py::none(), has_beta ? py::cast(dbeta) : py::none());
}

void register_norm(py::module_& m) {
  m.def("batch_norm", &batch_norm, py::arg("x"), py::arg("gamma"), py::arg("beta"), py::arg("running_mean"),
        py::arg("running_var"), py::kw_only(), py::arg("training"), py::arg("momentum") = 0.99,
        py::arg("epsilon") = 1e-3);
  m.def("batch_norm_backward", &batch_norm_backward, py::arg("dy"), py::arg("cache"));
}
FASTNN_REGISTER(register_norm);

}  // namespace
}  // namespace bind_cuda
}  // namespace fastnn
