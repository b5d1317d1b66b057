// Shared argument checking for the pybind11 bindings. Bindings convert and
// check arguments, release the GIL and call the core; nothing else.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "fastnn/common.hpp"

namespace fastnn {
namespace bind {

namespace py = pybind11;
using f32array = py::array_t<float, py::array::c_style>;

// Called at static-initialisation time by each binding file (FASTNN_REGISTER).
using Registrar = void (*)(py::module_&);
int add_registrar(Registrar r);
#define FASTNN_REGISTER(fn) \
  static const int fastnn_registered_##fn = ::fastnn::bind::add_registrar(&fn)
// Runs every registered function on the module (called once by each module's init).
void run_registrars(py::module_& m);

std::string shape_str(const py::array& a);
std::string shape_str(const std::vector<i64>& s);

// Any real-valued array-like -> C-contiguous, aligned float32 array; copies only
// when the input is not already that. bool/object/complex/str raise TypeError.
f32array as_f32(py::handle obj, const char* name);
// Same, but None stays None (returns an empty optional-like null array).
bool is_none(py::handle obj);

// An array the kernel updates in place: must already be a writable,
// C-contiguous float32 ndarray (TypeError / ValueError otherwise).
f32array as_f32_inplace(py::handle obj, const char* name);

// Class labels: any integer dtype -> C-contiguous int64 copy.
py::array_t<std::int64_t, py::array::c_style> as_labels(py::handle obj, const char* name);

// Checks that a has the given rank; 'layout' names the axes, e.g. "(N, H, W, C)".
void require_rank(const py::array& a, int rank, const char* name, const char* layout);
// Checks that a has exactly this shape.
void require_shape(const py::array& a, const std::vector<i64>& shape, const char* name);
// The same two checks on a plain shape (the CUDA bindings' arrays).
void require_rank(const std::vector<i64>& shape, std::size_t rank, const char* name, const char* layout);
void require_shape(const std::vector<i64>& actual, const std::vector<i64>& shape, const char* name);

// A new float32 array; raises MemoryError when the element count overflows or
// is beyond any machine's memory, before allocating.
f32array new_f32(const std::vector<i64>& shape);
// A new zero-filled float32 array.
f32array zeros_f32(const std::vector<i64>& shape);

// Positive-integer checks for sizes such as stride, pool, units.
void require_positive(i64 v, const char* name);
void require_nonnegative(i64 v, const char* name);

// An int or an (h, w) pair of ints, e.g. stride=2 or stride=(2, 1).
struct Pair {
  i64 h, w;
};
Pair parse_pair(py::handle obj, const char* name);        // each >= 1
Pair parse_pair_nonneg(py::handle obj, const char* name); // each >= 0

// What every binding holds around a core call: the GIL released, and the kernels'
// floating-point environment (FTZ/DAZ on every thread of the team, restored after).
struct KernelCall {
  py::gil_scoped_release nogil;
  FpEnvScope fp;
};

[[noreturn]] void value_error(const std::string& msg);
[[noreturn]] void type_error(const std::string& msg);

inline std::vector<i64> shape_of(const py::array& a) {
  std::vector<i64> s(a.ndim());
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s[i] = a.shape(i);
  return s;
}

}  // namespace bind
}  // namespace fastnn
