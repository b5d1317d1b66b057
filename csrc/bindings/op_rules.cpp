#include "op_rules.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace fastnn {
namespace bind {

// ---- activations, softmax, dropout -------------------------------------------

void require_same_shape(const std::vector<i64>& dy, const std::vector<i64>& ref, const char* ref_name) {
  if (dy != ref)
    value_error(std::string("dy: expected the shape of ") + ref_name + " " + shape_str(ref) + ", got " +
                shape_str(dy));
}

int parse_axis(py::handle obj, int ndim, const char* name) {
  if (py::isinstance<py::bool_>(obj) || !py::hasattr(obj, "__index__") || py::isinstance<py::float_>(obj))
    type_error(std::string(name) + ": expected an int, got " + std::string(py::str(py::repr(obj))));
  const py::int_ v = obj.attr("__index__")();
  const py::int_ lo(-ndim), hi(ndim);
  if (v < lo || v >= hi)
    value_error(std::string(name) + ": expected an axis in [" + std::to_string(-ndim) + ", " +
                std::to_string(ndim) + ") for a " + std::to_string(ndim) + "-D array, got " +
                std::string(py::str(v)));
  const int a = v.cast<int>();
  return a < 0 ? a + ndim : a;
}

std::uint64_t parse_u64(py::handle obj, const char* name) {
  if (py::isinstance<py::bool_>(obj) || !py::hasattr(obj, "__index__") || py::isinstance<py::float_>(obj))
    type_error(std::string(name) + ": expected a non-negative int, got " + std::string(py::str(py::repr(obj))));
  const py::int_ v = obj.attr("__index__")();
  const py::int_ zero(0);
  const py::int_ max_u64(static_cast<unsigned long long>(~0ull));
  if (v < zero || v > max_u64)
    value_error(std::string(name) + ": expected an int in [0, 2**64 - 1], got " + std::string(py::str(v)));
  return v.cast<std::uint64_t>();
}

double parse_rate(py::handle obj) {
  if (py::isinstance<py::str>(obj) || py::isinstance<py::bytes>(obj) || obj.is_none())
    type_error("rate: expected a float in [0, 1), got " + std::string(py::str(py::repr(obj))));
  const double r = PyFloat_AsDouble(obj.ptr());
  if (r == -1.0 && PyErr_Occurred()) {
    PyErr_Clear();
    type_error("rate: expected a float in [0, 1), got " + std::string(py::str(py::repr(obj))));
  }
  if (!(r >= 0.0 && r < 1.0))
    value_error("rate: expected 0 <= rate < 1, got " + std::string(py::str(py::repr(obj))));
  return r;
}

// ---- conv2d --------------------------------------------------------------------

namespace {
// TensorFlow's 'same' rule: total = max((ceil(in/s) - 1)*s + k - in, 0), extra at the end.
void same_padding(i64 in, i64 k, i64 stride, i64& lo, i64& hi) {
  const i64 out = (in + stride - 1) / stride;
  const i64 total = std::max<i64>((out - 1) * stride + k - in, 0);
  lo = total / 2;
  hi = total - lo;
}
}  // namespace

Conv2dShape conv2d_geometry(const std::vector<i64>& x, const std::vector<i64>& w, py::handle stride,
                            py::handle padding) {
  require_rank(x, 4, "x", "(N, H, W, C)");
  require_rank(w, 4, "w", "(R, S, C_in, C_out)");
  Conv2dShape s{};
  s.N = x[0]; s.H = x[1]; s.W = x[2]; s.C = x[3];
  s.R = w[0]; s.S = w[1]; s.K = w[3];
  if (s.H < 1 || s.W < 1 || s.C < 1)
    value_error("x: expected positive H, W, C in (N, H, W, C), got shape " + shape_str(x));
  if (s.R < 1 || s.S < 1 || s.K < 1 || w[2] < 1)
    value_error("w: expected positive sizes in (R, S, C_in, C_out), got shape " + shape_str(w));
  if (w[2] != s.C)
    value_error("w: expected C_in = " + std::to_string(s.C) + " (x has " + std::to_string(s.C) +
                " channels), got shape " + shape_str(w));
  const Pair st = parse_pair(stride, "stride");
  s.sh = st.h; s.sw = st.w;
  if (py::isinstance<py::str>(padding)) {
    const std::string mode = padding.cast<std::string>();
    if (mode == "valid") {
      s.pt = s.pb = s.pl = s.pr = 0;
    } else if (mode == "same") {
      same_padding(s.H, s.R, s.sh, s.pt, s.pb);
      same_padding(s.W, s.S, s.sw, s.pl, s.pr);
    } else {
      value_error("padding: expected 'valid', 'same', an int or an (h, w) pair, got '" + mode + "'");
    }
  } else {
    const Pair pd = parse_pair_nonneg(padding, "padding");
    s.pt = s.pb = pd.h;
    s.pl = s.pr = pd.w;
  }
  try {
    conv2d_finish_shape(s);
  } catch (const std::invalid_argument& e) {
    value_error(e.what());
  }
  return s;
}

// ---- pooling ---------------------------------------------------------------------

namespace {
std::string pair_str(i64 h, i64 w) { return "(" + std::to_string(h) + ", " + std::to_string(w) + ")"; }
}  // namespace

void require_nhwc_sizes(const std::vector<i64>& shape, const char* name, const char* layout) {
  for (std::size_t i = 1; i < 4; ++i) {
    if (shape[i] < 1)
      value_error(std::string(name) + ": expected positive sizes " + layout + " (only the batch may be 0), got " +
                  shape_str(shape));
  }
  if (shape[0] < 0)
    value_error(std::string(name) + ": expected a non-negative batch size, got " + shape_str(shape));
}

Pool2dShape pool2d_geometry(const std::vector<i64>& x_shape, py::handle pool, py::handle stride,
                            py::handle padding, const char* x_name) {
  Pool2dShape s;
  s.N = x_shape[0];
  s.H = x_shape[1];
  s.W = x_shape[2];
  s.C = x_shape[3];
  const Pair k = parse_pair(pool, "pool");
  const Pair st = stride.is_none() ? k : parse_pair(stride, "stride");
  const Pair pad = parse_pair_nonneg(padding, "padding");
  s.kh = k.h;
  s.kw = k.w;
  s.sh = st.h;
  s.sw = st.w;
  s.ph = pad.h;
  s.pw = pad.w;
  if (pad.h > k.h / 2 || pad.w > k.w / 2)
    value_error("padding: expected at most pool//2 = " + pair_str(k.h / 2, k.w / 2) +
                " per axis (PyTorch's rule), got " + pair_str(pad.h, pad.w) + " for pool " + pair_str(k.h, k.w));
  if (!pool2d_output_size(s))
    value_error("pool: window " + pair_str(k.h, k.w) + " is larger than the padded input " +
                pair_str(s.H + 2 * s.ph, s.W + 2 * s.pw) + " (" + x_name + " shape " + shape_str(x_shape) +
                ", padding " + pair_str(pad.h, pad.w) + ")");
  return s;
}

// ---- dense -------------------------------------------------------------------------

namespace {
// shape (..., cols) as rows x cols; last_what names the last axis in messages.
RowView rows_of(const std::vector<i64>& shape, const char* name, const char* layout, const char* last_what) {
  if (shape.size() < 2)
    value_error(std::string(name) + ": expected an array of rank >= 2 " + layout + ", got shape " +
                shape_str(shape) + " (" + std::to_string(shape.size()) + "-D)");
  RowView v;
  v.rows = 1;
  for (std::size_t d = 0; d + 1 < shape.size(); ++d) {
    if (d > 0 && shape[d] == 0)
      value_error(std::string(name) + ": zero-size dimension " + std::to_string(d) + " in shape " +
                  shape_str(shape) + " (only the batch dimension may be 0)");
    v.lead.push_back(shape[d]);
    v.rows *= shape[d];
  }
  v.cols = shape.back();
  if (v.cols == 0)
    value_error(std::string(name) + ": the " + last_what + " must be positive, got shape " + shape_str(shape));
  return v;
}
}  // namespace

RowView row_view(const std::vector<i64>& shape, const char* name, const char* layout) {
  return rows_of(shape, name, layout, "last dimension");
}

void check_dense_kernel(const std::vector<i64>& w, i64 in, const char* layout) {
  require_rank(w, 2, "w", layout);
  if (w[1] == 0) value_error("w: expected a positive number of units, got shape " + shape_str(w));
  if (w[0] != in)
    value_error("w: expected " + std::to_string(in) + " rows (the last dimension of x), got shape " +
                shape_str(w));
}

// ---- batch_norm ----------------------------------------------------------------------

ChannelRows channel_rows(const std::vector<i64>& shape, const char* name) {
  const RowView v = rows_of(shape, name, "(..., C) (channels last)", "channel (last) dimension");
  ChannelRows r;
  r.rows = v.rows;
  r.C = v.cols;
  return r;
}

void check_batch_norm_args(double momentum, double epsilon) {
  if (!(momentum >= 0.0 && momentum <= 1.0))
    value_error("momentum: expected a number in [0, 1], got " + std::to_string(momentum));
  if (!(epsilon >= 0.0 && std::isfinite(epsilon)))
    value_error("epsilon: expected a finite number >= 0, got " + std::to_string(epsilon));
}

namespace {
[[noreturn]] void bad_bn_cache(const std::string& why) {
  value_error("cache: expected the cache returned by batch_norm, " + why);
}
}  // namespace

BatchNormCacheFlags batch_norm_cache_flags(py::handle cache_obj) {
  if (!py::isinstance<py::tuple>(cache_obj))
    type_error("cache: expected the tuple returned by batch_norm, got " +
               std::string(py::str(py::type::of(cache_obj).attr("__name__"))));
  BatchNormCacheFlags f;
  f.cache = py::reinterpret_borrow<py::tuple>(cache_obj);
  if (f.cache.size() != 6) bad_bn_cache("got a tuple of length " + std::to_string(f.cache.size()));
  if (!py::isinstance<py::bool_>(f.cache[0]) || !py::isinstance<py::bool_>(f.cache[3]))
    bad_bn_cache("got a tuple with malformed flags");
  f.training = f.cache[0].cast<bool>();
  f.has_beta = f.cache[3].cast<bool>();
  return f;
}

// ---- optimizers ------------------------------------------------------------------------

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
}  // namespace

void check_sgd_args(double lr, double momentum, double weight_decay, bool has_velocity) {
  check_lr(lr);
  check_range(momentum, "momentum", 0.0, 1.0, false, "a number in [0, 1]");
  check_wd(weight_decay);
  if (momentum != 0.0 && !has_velocity)
    value_error("velocity: required (a float32 array shaped like param) when momentum > 0");
}

void check_rmsprop_args(double lr, double rho, double epsilon, double weight_decay) {
  check_lr(lr);
  check_rho(rho);
  check_eps(epsilon);
  check_wd(weight_decay);
}

void check_adam_args(double lr, i64 step, double beta_1, double beta_2, double epsilon, double weight_decay) {
  check_lr(lr);
  if (step < 1) value_error("step: expected the 1-based iteration (an integer >= 1), got " + std::to_string(step));
  check_range(beta_1, "beta_1", 0.0, 1.0, true, "a number in [0, 1)");
  check_range(beta_2, "beta_2", 0.0, 1.0, true, "a number in [0, 1)");
  check_eps(epsilon);
  check_wd(weight_decay);
}

void check_adagrad_args(double lr, double epsilon, double weight_decay) {
  check_lr(lr);
  check_eps(epsilon);
  check_wd(weight_decay);
}

void check_adadelta_args(double lr, double rho, double epsilon, double weight_decay) {
  check_lr(lr);
  check_rho(rho);
  check_eps(epsilon);
  check_wd(weight_decay);
}

void check_clipvalue(double clipvalue) {
  check_range(clipvalue, "clipvalue", 0.0, kInf, false, "a finite number >= 0");
}

bool overlaps(const MemRange& a, const MemRange& b) {
  return a.bytes > 0 && b.bytes > 0 && a.begin < b.begin + b.bytes && b.begin < a.begin + a.bytes;
}

void check_no_aliasing(const MemRange& grad, const std::vector<MemRange>& inplace) {
  for (std::size_t a = 0; a < inplace.size(); ++a) {
    if (overlaps(inplace[a], grad))
      value_error(std::string("grad: must not share memory with ") + inplace[a].name + " (updated in place)");
    for (std::size_t b = 0; b < a; ++b)
      if (overlaps(inplace[a], inplace[b]))
        value_error(std::string(inplace[a].name) + ": must not share memory with " + inplace[b].name +
                    " (both are updated in place)");
  }
}

}  // namespace bind
}  // namespace fastnn
