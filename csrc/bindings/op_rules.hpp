// The argument and shape rules of the op families, on plain shapes and Python
// scalars: one implementation, with its error messages, for both extension
// modules (the CPU bindings in csrc/bindings/ and the CUDA bindings in
// csrc/bindings_cuda/, which compile this file too; see CMakeLists.txt).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "common.hpp"
#include "fastnn/conv.hpp"
#include "fastnn/pool.hpp"

namespace fastnn {
namespace bind {

// ---- activations, softmax, dropout -------------------------------------------
// dy must have exactly the shape of ref (x or y).
void require_same_shape(const std::vector<i64>& dy, const std::vector<i64>& ref, const char* ref_name);
// An axis argument: an int in [-ndim, ndim) -> [0, ndim).
int parse_axis(py::handle obj, int ndim, const char* name);
// A non-negative integer up to 2**64 - 1 (seed, sample_offset).
std::uint64_t parse_u64(py::handle obj, const char* name);
// The dropout rate: a real number with 0 <= rate < 1.
double parse_rate(py::handle obj);

// ---- conv2d --------------------------------------------------------------------
// Geometry of x (N, H, W, C) and w (R, S, C_in, C_out) with stride (int or pair)
// and padding ('valid', 'same', int or pair); P and Q filled.
Conv2dShape conv2d_geometry(const std::vector<i64>& x, const std::vector<i64>& w, py::handle stride,
                            py::handle padding);

// ---- pooling ---------------------------------------------------------------------
// Checks one 4-D (N, H, W, C) shape: N >= 0, the others >= 1.
void require_nhwc_sizes(const std::vector<i64>& shape, const char* name, const char* layout);
// Window geometry for an input of shape (N, H, W, C) from the Python arguments
// (stride None: the pool size); x_name names the input in messages.
Pool2dShape pool2d_geometry(const std::vector<i64>& x_shape, py::handle pool, py::handle stride,
                            py::handle padding, const char* x_name);

// ---- dense -------------------------------------------------------------------------
// An array (..., cols) viewed as rows x cols; only the first dimension may be 0.
struct RowView {
  i64 rows = 0, cols = 0;
  std::vector<i64> lead;  // leading dims
};
RowView row_view(const std::vector<i64>& shape, const char* name, const char* layout);
// The kernel w (I, O): O >= 1 and I == in.
void check_dense_kernel(const std::vector<i64>& w, i64 in, const char* layout);

// ---- batch_norm ----------------------------------------------------------------------
// A channels-last array (..., C) viewed as rows x C.
struct ChannelRows {
  i64 rows = 0, C = 0;
};
ChannelRows channel_rows(const std::vector<i64>& shape, const char* name);
void check_batch_norm_args(double momentum, double epsilon);
// The flags of the cache tuple returned by batch_norm (checked: a 6-tuple with
// bool flags at 0 and 3).
struct BatchNormCacheFlags {
  py::tuple cache;
  bool training = false, has_beta = false;
};
BatchNormCacheFlags batch_norm_cache_flags(py::handle cache_obj);

// ---- optimizers ------------------------------------------------------------------------
// Hyperparameter checks of the fused updates, in the order the messages name them.
void check_sgd_args(double lr, double momentum, double weight_decay, bool has_velocity);
void check_rmsprop_args(double lr, double rho, double epsilon, double weight_decay);
void check_adam_args(double lr, i64 step, double beta_1, double beta_2, double epsilon, double weight_decay);
void check_adagrad_args(double lr, double epsilon, double weight_decay);
void check_adadelta_args(double lr, double rho, double epsilon, double weight_decay);
void check_clipvalue(double clipvalue);

// A named memory range of an argument.
struct MemRange {
  std::uintptr_t begin = 0;
  std::uintptr_t bytes = 0;
  const char* name = "";
};
inline MemRange memory_of(const py::array& a, const char* name) {
  return {reinterpret_cast<std::uintptr_t>(a.data()), static_cast<std::uintptr_t>(a.nbytes()), name};
}
bool overlaps(const MemRange& a, const MemRange& b);
// grad and the arrays updated in place (param first, then the state) must not
// share memory with one another.
void check_no_aliasing(const MemRange& grad, const std::vector<MemRange>& inplace);

}  // namespace bind
}  // namespace fastnn
