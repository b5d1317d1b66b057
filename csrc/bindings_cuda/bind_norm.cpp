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

struct ChannelRows {
  i64 rows = 0, C = 0;
};

ChannelRows channel_rows(const DeviceArray& a, const char* name) {
  if (a.shape.size() < 2)
    value_error(std::string(name) + ": expected an array of rank >= 2 (..., C) (channels last), got shape " +
                shape_str(a.shape) + " (" + std::to_string(a.shape.size()) + "-D)");
  ChannelRows r;
  r.rows = 1;
  for (std::size_t d = 0; d + 1 < a.shape.size(); ++d) {
    if (d > 0 && a.shape[d] == 0)
      value_error(std::string(name) + ": zero-size dimension " + std::to_string(d) + " in shape " +
                  shape_str(a.shape) + " (only the batch dimension may be 0)");
    r.rows *= a.shape[d];
  }
  r.C = a.shape.back();
  if (r.C == 0)
    value_error(std::string(name) + ": the channel (last) dimension must be positive, got shape " + shape_str(a.shape));
  return r;
}

bool shares_memory(const DeviceArray& a, const DeviceArray& b) {
  const auto pa = reinterpret_cast<std::uintptr_t>(a.data), pb = reinterpret_cast<std::uintptr_t>(b.data);
  return a.nbytes() > 0 && b.nbytes() > 0 && pa < pb + b.nbytes() && pb < pa + a.nbytes();
}

py::tuple batch_norm(py::handle x_obj, py::handle gamma_obj, py::handle beta_obj, py::handle rm_obj,
                     py::handle rv_obj, bool training, double momentum, double epsilon) {
  if (!(momentum >= 0.0 && momentum <= 1.0))
    value_error("momentum: expected a number in [0, 1], got " + std::to_string(momentum));
  if (!(epsilon >= 0.0 && std::isfinite(epsilon)))
    value_error("epsilon: expected a finite number >= 0, got " + std::to_string(epsilon));
  DeviceArray x = f32_arg(x_obj, "x");
  const ChannelRows v = channel_rows(x, "x");
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
  if (training && shares_memory(rm, rv))
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

[[noreturn]] void bad_bn_cache(const std::string& why) {
  value_error("cache: expected the cache returned by batch_norm, " + why);
}

py::tuple batch_norm_backward(py::handle dy_obj, py::handle cache_obj) {
  if (!py::isinstance<py::tuple>(cache_obj))
    type_error("cache: expected the tuple returned by batch_norm, got " +
               std::string(py::str(py::type::of(cache_obj).attr("__name__"))));
  py::tuple cache = py::reinterpret_borrow<py::tuple>(cache_obj);
  if (cache.size() != 6) bad_bn_cache("got a tuple of length " + std::to_string(cache.size()));
  if (!py::isinstance<py::bool_>(cache[0]) || !py::isinstance<py::bool_>(cache[3]))
    bad_bn_cache("got a tuple with malformed flags");
  const bool training = cache[0].cast<bool>(), has_beta = cache[3].cast<bool>();
  DeviceArray x = f32_arg(cache[1], "cache[1] (x)");
  const ChannelRows v = channel_rows(x, "cache[1] (x)");
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
