// Binding of the augmentation warp: _core.affine_warp (private; used by
// fastnn.data.ImageDataGenerator). Contract in fastnn/augment.hpp.
#include <pybind11/numpy.h>

#include <cmath>
#include <string>

#include "common.hpp"
#include "fastnn/augment.hpp"

namespace fastnn {
namespace bind {

namespace {

using f64array = py::array_t<double, py::array::c_style>;

f64array as_f64(py::handle obj, const char* name) {
  if (obj.is_none() || py::isinstance<py::str>(obj) || py::isinstance<py::bytes>(obj))
    type_error(std::string(name) + ": expected a real-valued array, got " +
               std::string(py::str(py::type::of(obj).attr("__name__"))));
  py::array arr;
  try {
    arr = py::array::ensure(obj);
  } catch (py::error_already_set&) {
    arr = py::array();
  }
  if (!arr)
    type_error(std::string(name) + ": expected a real-valued array, got " +
               std::string(py::str(py::type::of(obj).attr("__name__"))));
  const char kind = arr.dtype().kind();
  if (kind != 'f' && kind != 'i' && kind != 'u')
    type_error(std::string(name) + ": expected a real-valued array, got dtype " +
               std::string(py::str(arr.dtype())));
  auto conv = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(arr);
  if (!conv) type_error(std::string(name) + ": cannot convert dtype " + std::string(py::str(arr.dtype())) + " to float64");
  return py::reinterpret_borrow<f64array>(conv);
}

FillMode parse_fill_mode(const std::string& s) {
  if (s == "nearest") return FillMode::nearest;
  if (s == "constant") return FillMode::constant;
  if (s == "reflect") return FillMode::reflect;
  if (s == "wrap") return FillMode::wrap;
  value_error("fill_mode: expected one of 'nearest', 'constant', 'reflect', 'wrap', got '" + s + "'");
}

// out[b] = bilinear warp of x[index[b]] by the inverse affine matrix matrices[b].
// x (N, H, W, C) float32; matrices (B, 2, 3); index (B,) ints in [0, N) or None
// (then B == N); returns (B, H, W, C) float32.
f32array affine_warp_py(py::handle x_obj, py::handle mat_obj, py::handle index_obj,
                        const std::string& fill_mode, double cval) {
  const FillMode mode = parse_fill_mode(fill_mode);
  f32array x = as_f32(x_obj, "x");
  require_rank(x, 4, "x", "(N, H, W, C)");
  const i64 N = x.shape(0), H = x.shape(1), W = x.shape(2), C = x.shape(3);
  if (H < 1 || W < 1 || C < 1)
    value_error("x: expected positive sizes (N, H, W, C) (only the batch may be 0), got " + shape_str(x));
  f64array mat = as_f64(mat_obj, "matrices");
  require_rank(mat, 3, "matrices", "(B, 2, 3)");
  const i64 B = mat.shape(0);
  if (mat.shape(1) != 2 || mat.shape(2) != 3)
    value_error("matrices: expected shape (B, 2, 3), got " + shape_str(mat));
  const double* m = mat.data();
  for (i64 i = 0; i < 6 * B; ++i) {
    if (!std::isfinite(m[i]))
      value_error("matrices: expected finite values, got " + std::to_string(m[i]) + " in matrix " +
                  std::to_string(i / 6));
  }
  py::array_t<std::int64_t, py::array::c_style> index;
  const i64* idx = nullptr;
  if (!index_obj.is_none()) {
    index = as_labels(index_obj, "index");
    require_rank(index, 1, "index", "(B,)");
    if (index.shape(0) != B)
      value_error("index: expected " + std::to_string(B) + " entries (one per matrix), got shape " +
                  shape_str(index));
    idx = index.data();
    for (i64 b = 0; b < B; ++b) {
      if (idx[b] < 0 || idx[b] >= N)
        value_error("index: expected sample indices in [0, " + std::to_string(N) + "), got " +
                    std::to_string(idx[b]) + " at position " + std::to_string(b));
    }
  } else if (B != N) {
    value_error("matrices: expected one matrix per sample of x, shape (" + std::to_string(N) +
                ", 2, 3), got " + shape_str(mat) + " (pass index= to pick samples)");
  }
  f32array out = new_f32({B, H, W, C});
  {
    KernelCall nogil;
    affine_warp(x.data(), N, H, W, C, idx, B, m, mode, static_cast<float>(cval), out.mutable_data());
  }
  return out;
}

void register_augment(py::module_& m) {
  m.def("affine_warp", &affine_warp_py, py::arg("x"), py::arg("matrices"), py::arg("index") = py::none(),
        py::kw_only(), py::arg("fill_mode") = "nearest", py::arg("cval") = 0.0,
        "Bilinear affine warp of NHWC images (private; used by fastnn.data).\n"
        "out[b][r, c] samples x[index[b]] at (M[0,0] r + M[0,1] c + M[0,2], M[1,0] r + M[1,1] c + M[1,2])\n"
        "with M = matrices[b]; fill_mode 'nearest' | 'constant' | 'reflect' | 'wrap'.");
}

FASTNN_REGISTER(register_augment);

}  // namespace

}  // namespace bind
}  // namespace fastnn
