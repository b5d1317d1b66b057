// Bindings: fused in-place optimizer updates and clipping helpers.
//
// param and the state arrays are updated in place: each must be a writable,
// C-contiguous float32 ndarray (as_f32_inplace). grad may be any real array
// (copied to float32 once if needed). grad and every state array must have
// exactly param's shape (any rank; the update is element-wise over the flat
// data). In-place arrays (and grad) must not share memory with one another.
// Each update returns None.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "common.hpp"
#include "op_rules.hpp"
#include "fastnn/optim.hpp"

namespace fastnn {
namespace bind {
namespace {


// param, grad and the state arrays of one update, checked.
struct Update {
  f32array p, g;
  std::vector<f32array> state;
  i64 n = 0;
};

Update prepare(py::handle p_obj, py::handle g_obj,
               std::initializer_list<std::pair<py::handle, const char*>> states) {
  Update u;
  u.p = as_f32_inplace(p_obj, "param");
  u.g = as_f32(g_obj, "grad");
  const std::vector<i64> shape = shape_of(u.p);
  require_shape(u.g, shape, "grad");
  u.state.reserve(states.size());
  for (const auto& s : states) {
    u.state.push_back(as_f32_inplace(s.first, s.second));
    require_shape(u.state.back(), shape, s.second);
  }
  std::vector<MemRange> inplace{memory_of(u.p, "param")};
  std::size_t i = 0;
  for (const auto& s : states) inplace.push_back(memory_of(u.state[i++], s.second));
  check_no_aliasing(memory_of(u.g, "grad"), inplace);
  u.n = static_cast<i64>(u.p.size());
  return u;
}

void sgd(py::handle param, py::handle grad, py::handle velocity, double lr, double momentum,
         bool nesterov, double weight_decay) {
  check_sgd_args(lr, momentum, weight_decay, !velocity.is_none());
  const bool use_v = momentum != 0.0;
  Update u = velocity.is_none() ? prepare(param, grad, {})
                                : prepare(param, grad, {{velocity, "velocity"}});
  float* v = use_v ? u.state[0].mutable_data() : nullptr;
  KernelCall nogil;
  sgd_update(u.n, u.p.mutable_data(), u.g.data(), v, static_cast<float>(lr),
             static_cast<float>(momentum), nesterov, static_cast<float>(weight_decay));
}

void rmsprop(py::handle param, py::handle grad, py::handle ms, double lr, double rho,
             double epsilon, double weight_decay) {
  check_rmsprop_args(lr, rho, epsilon, weight_decay);
  Update u = prepare(param, grad, {{ms, "mean_square"}});
  KernelCall nogil;
  rmsprop_update(u.n, u.p.mutable_data(), u.g.data(), u.state[0].mutable_data(),
                 static_cast<float>(lr), rho, static_cast<float>(epsilon),
                 static_cast<float>(weight_decay));
}

void adam(py::handle param, py::handle grad, py::handle m, py::handle v, double lr, i64 step,
          double beta_1, double beta_2, double epsilon, double weight_decay) {
  check_adam_args(lr, step, beta_1, beta_2, epsilon, weight_decay);
  Update u = prepare(param, grad, {{m, "m"}, {v, "v"}});
  KernelCall nogil;
  adam_update(u.n, u.p.mutable_data(), u.g.data(), u.state[0].mutable_data(),
              u.state[1].mutable_data(), static_cast<float>(lr), step, beta_1, beta_2,
              static_cast<float>(epsilon), static_cast<float>(weight_decay));
}

void adagrad(py::handle param, py::handle grad, py::handle acc, double lr, double epsilon,
             double weight_decay) {
  check_adagrad_args(lr, epsilon, weight_decay);
  Update u = prepare(param, grad, {{acc, "accumulator"}});
  KernelCall nogil;
  adagrad_update(u.n, u.p.mutable_data(), u.g.data(), u.state[0].mutable_data(),
                 static_cast<float>(lr), static_cast<float>(epsilon),
                 static_cast<float>(weight_decay));
}

void adadelta(py::handle param, py::handle grad, py::handle ag, py::handle ad, double lr,
              double rho, double epsilon, double weight_decay) {
  check_adadelta_args(lr, rho, epsilon, weight_decay);
  Update u = prepare(param, grad, {{ag, "accum_grad"}, {ad, "accum_delta"}});
  KernelCall nogil;
  adadelta_update(u.n, u.p.mutable_data(), u.g.data(), u.state[0].mutable_data(),
                  u.state[1].mutable_data(), static_cast<float>(lr), rho,
                  static_cast<float>(epsilon), static_cast<float>(weight_decay));
}

double global_norm(py::handle arrays) {
  std::vector<f32array> list;
  if (py::isinstance<py::array>(arrays)) {
    list.push_back(as_f32(arrays, "arrays"));
  } else {
    if (py::isinstance<py::str>(arrays) || py::isinstance<py::bytes>(arrays) ||
        !py::hasattr(arrays, "__iter__"))
      type_error("arrays: expected a list of float arrays, got " +
                 std::string(py::str(py::type::of(arrays).attr("__name__"))));
    std::size_t i = 0;
    for (py::handle a : arrays) {
      const std::string name = "arrays[" + std::to_string(i++) + "]";
      list.push_back(as_f32(a, name.c_str()));
    }
  }
  double total = 0.0;
  {
    KernelCall nogil;
    for (const f32array& a : list) total += sum_squares(static_cast<i64>(a.size()), a.data());
  }
  return std::sqrt(total);
}

void clip_by_value_(py::handle grad, double clipvalue) {
  check_clipvalue(clipvalue);
  f32array g = as_f32_inplace(grad, "grad");
  KernelCall nogil;
  clip_by_value(static_cast<i64>(g.size()), g.mutable_data(), static_cast<float>(clipvalue));
}

void scale_(py::handle array, double factor) {
  f32array a = as_f32_inplace(array, "array");
  KernelCall nogil;
  scale_inplace(static_cast<i64>(a.size()), a.mutable_data(), static_cast<float>(factor));
}

void register_optim(py::module_& m) {
  m.def("sgd_update", &sgd, py::arg("param"), py::arg("grad"),
        py::arg("velocity") = py::none(), py::kw_only(), py::arg("lr"),
        py::arg("momentum") = 0.0, py::arg("nesterov") = false, py::arg("weight_decay") = 0.0,
        "In-place Keras 3 SGD step. momentum == 0: param -= lr*grad; else velocity = "
        "momentum*velocity - lr*grad and param += velocity (nesterov: param += "
        "momentum*velocity - lr*grad). velocity is required when momentum > 0.");
  m.def("rmsprop_update", &rmsprop, py::arg("param"), py::arg("grad"), py::arg("mean_square"),
        py::kw_only(), py::arg("lr"), py::arg("rho") = 0.9, py::arg("epsilon") = 1e-7,
        py::arg("weight_decay") = 0.0,
        "In-place Keras 3 RMSprop step: ms = rho*ms + (1-rho)*g^2; "
        "param -= lr*g/sqrt(ms + epsilon).");
  m.def("adam_update", &adam, py::arg("param"), py::arg("grad"), py::arg("m"), py::arg("v"),
        py::kw_only(), py::arg("lr"), py::arg("step"), py::arg("beta_1") = 0.9,
        py::arg("beta_2") = 0.999, py::arg("epsilon") = 1e-7, py::arg("weight_decay") = 0.0,
        "In-place Keras 3 Adam step (step is the 1-based iteration).");
  m.def("adagrad_update", &adagrad, py::arg("param"), py::arg("grad"), py::arg("accumulator"),
        py::kw_only(), py::arg("lr"), py::arg("epsilon") = 1e-7, py::arg("weight_decay") = 0.0,
        "In-place Keras 3 Adagrad step: acc += g^2; param -= lr*g/sqrt(acc + epsilon).");
  m.def("adadelta_update", &adadelta, py::arg("param"), py::arg("grad"), py::arg("accum_grad"),
        py::arg("accum_delta"), py::kw_only(), py::arg("lr"), py::arg("rho") = 0.95,
        py::arg("epsilon") = 1e-7, py::arg("weight_decay") = 0.0,
        "In-place Keras 3 Adadelta step.");
  m.def("global_norm", &global_norm, py::arg("arrays"),
        "sqrt of the sum of squares over a list of float arrays (deterministic, double "
        "accumulation).");
  m.def("clip_by_value_", &clip_by_value_, py::arg("grad"), py::arg("clipvalue"),
        "In place: grad = clip(grad, -clipvalue, clipvalue).");
  m.def("scale_", &scale_, py::arg("array"), py::arg("factor"),
        "In place: array *= factor. Keras clipnorm: "
        "scale_(g, clipnorm / max(global_norm([g]), clipnorm)).");
}

FASTNN_REGISTER(register_optim);

}  // namespace
}  // namespace bind
}  // namespace fastnn
