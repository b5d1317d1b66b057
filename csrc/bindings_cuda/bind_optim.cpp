// CUDA bindings: fused in-place optimizer updates and clipping helpers, with the
// argument rules of the CPU bindings (csrc/bindings/bind_optim.cpp).
#include <cmath>
#include <sstream>

#include "fastnn/cuda/kernels.hpp"
#include "ops_common.hpp"

namespace fastnn {
namespace bind_cuda {
namespace {

std::string num(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

void check_range(double v, const char* name, double lo, double hi, bool hi_open, const char* expected) {
  const bool ok = std::isfinite(v) && v >= lo && (hi_open ? v < hi : v <= hi);
  if (!ok) value_error(std::string(name) + ": expected " + expected + ", got " + num(v));
}
const double kInf = HUGE_VAL;
void check_lr(double lr) { check_range(lr, "lr", 0.0, kInf, false, "a finite number >= 0"); }
void check_eps(double e) { check_range(e, "epsilon", 0.0, kInf, false, "a finite number >= 0"); }
void check_wd(double w) { check_range(w, "weight_decay", 0.0, kInf, false, "a finite number >= 0"); }
void check_rho(double r) { check_range(r, "rho", 0.0, 1.0, true, "a number in [0, 1)"); }

bool overlaps(const DeviceArray& a, const DeviceArray& b) {
  const auto pa = reinterpret_cast<std::uintptr_t>(a.data), pb = reinterpret_cast<std::uintptr_t>(b.data);
  const auto ea = pa + a.nbytes(), eb = pb + b.nbytes();
  return a.nbytes() > 0 && b.nbytes() > 0 && pa < eb && pb < ea;
}

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
  std::vector<std::pair<const DeviceArray*, const char*>> all{{&u.p, "param"}};
  u.state.reserve(states.size());
  for (const auto& s : states) {
    u.state.push_back(f32_inplace_arg(s.first, s.second));
    require_shape(u.state.back(), u.p.shape, s.second);
  }
  std::size_t i = 0;
  for (const auto& s : states) all.push_back({&u.state[i++], s.second});
  for (std::size_t a = 0; a < all.size(); ++a) {
    if (overlaps(*all[a].first, u.g))
      value_error(std::string("grad: must not share memory with ") + all[a].second + " (updated in place)");
    for (std::size_t b = 0; b < a; ++b)
      if (overlaps(*all[a].first, *all[b].first))
        value_error(std::string(all[a].second) + ": must not share memory with " + all[b].second +
                    " (both are updated in place)");
  }
  u.n = u.p.size();
  return u;
}

void sgd(py::handle param, py::handle grad, py::handle velocity, double lr, double momentum, bool nesterov,
         double weight_decay) {
  check_lr(lr);
  check_range(momentum, "momentum", 0.0, 1.0, false, "a number in [0, 1]");
  check_wd(weight_decay);
  const bool use_v = momentum != 0.0;
  if (use_v && velocity.is_none())
    value_error("velocity: required (a float32 array shaped like param) when momentum > 0");
  Update u = velocity.is_none() ? prepare(param, grad, {}) : prepare(param, grad, {{velocity, "velocity"}});
  float* v = use_v ? u.state[0].f32() : nullptr;
  py::gil_scoped_release nogil;
  cuda::sgd_update(u.n, u.p.f32(), u.g.f32(), v, static_cast<float>(lr), static_cast<float>(momentum), nesterov,
                   static_cast<float>(weight_decay));
}

void rmsprop(py::handle param, py::handle grad, py::handle ms, double lr, double rho, double epsilon,
             double weight_decay) {
  check_lr(lr);
  check_rho(rho);
  check_eps(epsilon);
  check_wd(weight_decay);
  Update u = prepare(param, grad, {{ms, "mean_square"}});
  py::gil_scoped_release nogil;
  cuda::rmsprop_update(u.n, u.p.f32(), u.g.f32(), u.state[0].f32(), static_cast<float>(lr), rho,
                       static_cast<float>(epsilon), static_cast<float>(weight_decay));
}

void adam(py::handle param, py::handle grad, py::handle m, py::handle v, double lr, i64 step, double beta_1,
          double beta_2, double epsilon, double weight_decay) {
  check_lr(lr);
  if (step < 1) value_error("step: expected the 1-based iteration (an integer >= 1), got " + std::to_string(step));
  check_range(beta_1, "beta_1", 0.0, 1.0, true, "a number in [0, 1)");
  check_range(beta_2, "beta_2", 0.0, 1.0, true, "a number in [0, 1)");
  check_eps(epsilon);
  check_wd(weight_decay);
  Update u = prepare(param, grad, {{m, "m"}, {v, "v"}});
  py::gil_scoped_release nogil;
  cuda::adam_update(u.n, u.p.f32(), u.g.f32(), u.state[0].f32(), u.state[1].f32(), static_cast<float>(lr), step,
                    beta_1, beta_2, static_cast<float>(epsilon), static_cast<float>(weight_decay));
}

void adagrad(py::handle param, py::handle grad, py::handle acc, double lr, double epsilon, double weight_decay) {
  check_lr(lr);
  check_eps(epsilon);
  check_wd(weight_decay);
  Update u = prepare(param, grad, {{acc, "accumulator"}});
  py::gil_scoped_release nogil;
  cuda::adagrad_update(u.n, u.p.f32(), u.g.f32(), u.state[0].f32(), static_cast<float>(lr),
                       static_cast<float>(epsilon), static_cast<float>(weight_decay));
}

void adadelta(py::handle param, py::handle grad, py::handle ag, py::handle ad, double lr, double rho,
              double epsilon, double weight_decay) {
  check_lr(lr);
  check_rho(rho);
  check_eps(epsilon);
  check_wd(weight_decay);
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
  check_range(clipvalue, "clipvalue", 0.0, kInf, false, "a finite number >= 0");
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
