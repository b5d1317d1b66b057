// CUDA bindings: fused in-place optimizer updates and clipping helpers, with the
// argument rules of the CPU bindings (check_*_args, csrc/bindings/op_rules.cpp).
#include <cmath>

#include "fastnn/cuda/kernels.hpp"
#include "ops_common.hpp"

namespace fastnn {
namespace bind_cuda {
namespace {

struct Update {
  DeviceArray p, g;
  std::vector<DeviceArray> state;
  i64 n = 0;
};

Update prepare(py::handle p_obj, py::handle g_obj, std::initializer_list<std::pair<py::handle, const char*>> states) {
  Update u;
  u.p = f32_inplace_arg(p_obj, "param");
  u.g = f32_arg(g_obj, "grad");
  require_shape(u.g, u.p.shape, "grad");
  u.state.reserve(states.size());
  for (const auto& s : states) {
    u.state.push_back(f32_inplace_arg(s.first, s.second));
    require_shape(u.state.back(), u.p.shape, s.second);
  }
  std::vector<MemRange> inplace{memory_of(u.p, "param")};
  std::size_t i = 0;
  for (const auto& s : states) inplace.push_back(memory_of(u.state[i++], s.second));
  check_no_aliasing(memory_of(u.g, "grad"), inplace);
  u.n = u.p.size();
  return u;
}

void sgd(py::handle param, py::handle grad, py::handle velocity, double lr, double momentum, bool nesterov,
         double weight_decay) {
  check_sgd_args(lr, momentum, weight_decay, !velocity.is_none());
  const bool use_v = momentum != 0.0;
  Update u = velocity.is_none() ? prepare(param, grad, {}) : prepare(param, grad, {{velocity, "velocity"}});
  float* v = use_v ? u.state[0].f32() : nullptr;
  py::gil_scoped_release nogil;
  cuda::sgd_update(u.n, u.p.f32(), u.g.f32(), v, static_cast<float>(lr), static_cast<float>(momentum), nesterov,
                   static_cast<float>(weight_decay));
}

void rmsprop(py::handle param, py::handle grad, py::handle ms, double lr, double rho, double epsilon,
             double weight_decay) {
  check_rmsprop_args(lr, rho, epsilon, weight_decay);
  Update u = prepare(param, grad, {{ms, "mean_square"}});
  py::gil_scoped_release nogil;
  cuda::rmsprop_update(u.n, u.p.f32(), u.g.f32(), u.state[0].f32(), static_cast<float>(lr), rho,
                       static_cast<float>(epsilon), static_cast<float>(weight_decay));
}

void adam(py::handle param, py::handle grad, py::handle m, py::handle v, double lr, i64 step, double beta_1,
          double beta_2, double epsilon, double weight_decay) {
  check_adam_args(lr, step, beta_1, beta_2, epsilon, weight_decay);
  Update u = prepare(param, grad, {{m, "m"}, {v, "v"}});
  py::gil_scoped_release nogil;
  cuda::adam_update(u.n, u.p.f32(), u.g.f32(), u.state[0].f32(), u.state[1].f32(), static_cast<float>(lr), step,
                    beta_1, beta_2, static_cast<float>(epsilon), static_cast<float>(weight_decay));
}

void adagrad(py::handle param, py::handle grad, py::handle acc, double lr, double epsilon, double weight_decay) {
  check_adagrad_args(lr, epsilon, weight_decay);
  Update u = prepare(param, grad, {{acc, "accumulator"}});
  py::gil_scoped_release nogil;
  cuda::adagrad_update(u.n, u.p.f32(), u.g.f32(), u.state[0].f32(), static_cast<float>(lr),
                       static_cast<float>(epsilon), static_cast<float>(weight_decay));
}

void adadelta(py::handle param, py::handle grad, py::handle ag, py::handle ad, double lr, double rho,
              double epsilon, double weight_decay) {
  check_adadelta_args(lr, rho, epsilon, weight_decay);
  Update u = prepare(param, grad, {{ag, "accum_grad"}, {ad, "accum_delta"}});
  py::gil_scoped_release nogil;
  cuda::adadelta_update(u.n, u.p.f32(), u.g.f32(), u.state[0].f32(), u.state[1].f32(), static_cast<float>(lr),
                        rho, static_cast<float>(epsilon), static_cast<float>(weight_decay));
}

double global_norm(py::handle arrays) {
  std::vector<DeviceArray> list;
  if (is_device_array(arrays) || py::hasattr(arrays, "__cuda_array_interface__")) {
    list.push_back(f32_arg(arrays, "arrays"));
  } else {
    if (py::isinstance<py::str>(arrays) || !py::hasattr(arrays, "__iter__"))
      type_error("arrays: expected a list of float32 GPU arrays, got " +
                 std::string(py::str(py::type::of(arrays).attr("__name__"))));
    std::size_t i = 0;
    for (py::handle a : arrays) {
      const std::string name = "arrays[" + std::to_string(i++) + "]";
      list.push_back(f32_arg(a, name.c_str()));
    }
  }
  double total = 0.0;
  {
    py::gil_scoped_release nogil;
    for (const DeviceArray& a : list) total += cuda::sum_squares(a.size(), a.f32());
  }
  return std::sqrt(total);
}

void clip_by_value_(py::handle grad, double clipvalue) {
  check_clipvalue(clipvalue);
  DeviceArray g = f32_inplace_arg(grad, "grad");
  py::gil_scoped_release nogil;
  cuda::clip_by_value(g.size(), g.f32(), static_cast<float>(clipvalue));
}

void scale_(py::handle array, double factor) {
  DeviceArray a = f32_inplace_arg(array, "array");
  py::gil_scoped_release nogil;
  cuda::scale_inplace(a.size(), a.f32(), static_cast<float>(factor));
}

void register_optim(py::module_& m) {
  m.def("sgd_update", &sgd, py::arg("param"), py::arg("grad"), py::arg("velocity") = py::none(), py::kw_only(),
        py::arg("lr"), py::arg("momentum") = 0.0, py::arg("nesterov") = false, py::arg("weight_decay") = 0.0);
  m.def("rmsprop_update", &rmsprop, py::arg("param"), py::arg("grad"), py::arg("mean_square"), py::kw_only(),
        py::arg("lr"), py::arg("rho") = 0.9, py::arg("epsilon") = 1e-7, py::arg("weight_decay") = 0.0);
  m.def("adam_update", &adam, py::arg("param"), py::arg("grad"), py::arg("m"), py::arg("v"), py::kw_only(),
        py::arg("lr"), py::arg("step"), py::arg("beta_1") = 0.9, py::arg("beta_2") = 0.999,
        py::arg("epsilon") = 1e-7, py::arg("weight_decay") = 0.0);
  m.def("adagrad_update", &adagrad, py::arg("param"), py::arg("grad"), py::arg("accumulator"), py::kw_only(),
        py::arg("lr"), py::arg("epsilon") = 1e-7, py::arg("weight_decay") = 0.0);
  m.def("adadelta_update", &adadelta, py::arg("param"), py::arg("grad"), py::arg("accum_grad"),
        py::arg("accum_delta"), py::kw_only(), py::arg("lr"), py::arg("rho") = 0.95, py::arg("epsilon") = 1e-7,
        py::arg("weight_decay") = 0.0);
  m.def("global_norm", &global_norm, py::arg("arrays"));
  m.def("clip_by_value_", &clip_by_value_, py::arg("grad"), py::arg("clipvalue"));
  m.def("scale_", &scale_, py::arg("array"), py::arg("factor"));
}
FASTNN_REGISTER(register_optim);

}  // namespace
}  // namespace bind_cuda
}  // namespace fastnn
