#include "common.hpp"

#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <sstream>
#include <utility>
#include <vector>

namespace fastnn {
namespace bind {

namespace {
std::vector<Registrar>& registry() {
  static std::vector<Registrar> r;
  return r;
}
}  // namespace

int add_registrar(Registrar r) {
  registry().push_back(r);
  return static_cast<int>(registry().size());
}

void run_registrars(py::module_& m) {
  for (Registrar r : registry()) r(m);
}

[[noreturn]] void value_error(const std::string& msg) { throw py::value_error(msg); }
[[noreturn]] void type_error(const std::string& msg) { throw py::type_error(msg); }

std::string shape_str(const std::vector<i64>& s) {
  std::ostringstream o;
  o << "(";
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i) o << ", ";
    o << s[i];
  }
  if (s.size() == 1) o << ",";
  o << ")";
  return o.str();
}

std::string shape_str(const py::array& a) { return shape_str(shape_of(a)); }

bool is_none(py::handle obj) { return obj.is_none(); }

namespace {
py::array to_ndarray(py::handle obj, const char* name) {
  if (obj.is_none()) type_error(std::string(name) + ": expected a float32 array, got None");
  if (py::isinstance<py::str>(obj) || py::isinstance<py::bytes>(obj))
    type_error(std::string(name) + ": expected a numeric array, got " +
               std::string(py::str(py::type::of(obj).attr("__name__"))));
  py::array arr;
  try {
    arr = py::array::ensure(obj);
  } catch (py::error_already_set&) {
    arr = py::array();
  }
  if (!arr) {
    type_error(std::string(name) + ": expected a numeric array, got " +
               std::string(py::str(py::type::of(obj).attr("__name__"))));
  }
  return arr;
}
}  // namespace

f32array as_f32(py::handle obj, const char* name) {
  py::array arr = to_ndarray(obj, name);
  const char kind = arr.dtype().kind();
  if (kind != 'f' && kind != 'i' && kind != 'u') {
    type_error(std::string(name) + ": expected a real-valued (float32) array, got dtype " +
               std::string(py::str(arr.dtype())));
  }
  const bool ok = py::isinstance<f32array>(arr) &&
                  (arr.flags() & py::array::c_style) &&
                  (reinterpret_cast<std::uintptr_t>(arr.data()) % alignof(float) == 0);
  if (ok) return py::reinterpret_borrow<f32array>(arr);
  // One copy at the boundary: C-contiguous float32.
  auto converted = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(arr);
  if (!converted) type_error(std::string(name) + ": cannot convert dtype " + std::string(py::str(arr.dtype())) + " to float32");
  return py::reinterpret_borrow<f32array>(converted);
}

f32array as_f32_inplace(py::handle obj, const char* name) {
  if (!py::isinstance<py::array>(obj))
    type_error(std::string(name) + ": expected a writable float32 numpy array (updated in place), got " +
               std::string(py::str(py::type::of(obj).attr("__name__"))));
  py::array arr = py::reinterpret_borrow<py::array>(obj);
  if (arr.dtype().kind() != 'f' || arr.itemsize() != 4)
    type_error(std::string(name) + ": expected dtype float32 (updated in place), got " +
               std::string(py::str(arr.dtype())));
  if (!(arr.flags() & py::array::c_style))
    value_error(std::string(name) + ": expected a C-contiguous array (updated in place), got a non-contiguous one");
  if (!arr.writeable()) value_error(std::string(name) + ": expected a writable array (updated in place), got a read-only one");
  return py::reinterpret_borrow<f32array>(arr);
}

py::array_t<std::int64_t, py::array::c_style> as_labels(py::handle obj, const char* name) {
  py::array arr = to_ndarray(obj, name);
  const char kind = arr.dtype().kind();
  if (kind != 'i' && kind != 'u')
    type_error(std::string(name) + ": expected integer class labels, got dtype " +
               std::string(py::str(arr.dtype())));
  auto converted = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(arr);
  if (!converted) type_error(std::string(name) + ": cannot convert dtype " + std::string(py::str(arr.dtype())) + " to int64");
  return py::reinterpret_borrow<py::array_t<std::int64_t, py::array::c_style>>(converted);
}

void require_rank(const std::vector<i64>& shape, std::size_t rank, const char* name, const char* layout) {
  if (shape.size() != rank) {
    std::ostringstream o;
    o << name << ": expected a " << rank << "-D array " << layout << ", got shape "
      << shape_str(shape) << " (" << shape.size() << "-D)";
    value_error(o.str());
  }
}

void require_rank(const py::array& a, int rank, const char* name, const char* layout) {
  require_rank(shape_of(a), static_cast<std::size_t>(rank), name, layout);
}

void require_shape(const std::vector<i64>& actual, const std::vector<i64>& shape, const char* name) {
  if (actual != shape)
    value_error(std::string(name) + ": expected shape " + shape_str(shape) + ", got " +
                shape_str(actual));
}

void require_shape(const py::array& a, const std::vector<i64>& shape, const char* name) {
  require_shape(shape_of(a), shape, name);
}

namespace {
void check_elements(const std::vector<i64>& shape) {
  // Element count and byte size must fit; reject before allocating.
  const i64 limit = std::numeric_limits<i64>::max() / 8;
  i64 n = 1;
  for (i64 d : shape) {
    if (d < 0) value_error("negative dimension in output shape " + shape_str(shape));
    if (d != 0 && n > limit / d) throw std::bad_alloc();
    n *= d;
  }
  if (n > (i64(1) << 40)) throw std::bad_alloc();  // 4 TiB of float32
}
}  // namespace

namespace {
// Outputs of 1 MiB and more (activations of a batch, the caches and gradients of
// recurrent layers) come from a small pool of blocks that are kept, up to 256 MiB in
// all, when their array is freed, and handed out again for a request of the same
// size. Without it each such array is a fresh mmap that the OS page-faults in and
// zeroes on every call: glibc maps every request at or above its mmap threshold,
// which only rises to the size of the last freed mapping, so a repeated same-size
// request is mapped anew each time (measured: a tenth of the large LSTM benchmark,
// 12-15% of the workbook CNN's predict at batch 86). Smaller arrays use NumPy's
// allocator, whose heap reuses them.
constexpr std::size_t kPoolMin = std::size_t(1) << 20;
constexpr std::size_t kPoolMax = std::size_t(256) << 20;
constexpr std::size_t kHeader = 64;  // holds the block size; keeps 64-byte alignment

struct BlockPool {
  std::mutex m;
  std::vector<std::pair<std::size_t, char*>> blocks;
  std::size_t held = 0;
};
BlockPool& block_pool() {
  static BlockPool* p = new BlockPool;  // never destroyed: arrays may outlive static teardown
  return *p;
}

char* pool_take(std::size_t bytes) {
  BlockPool& p = block_pool();
  {
    std::lock_guard<std::mutex> lock(p.m);
    for (std::size_t i = 0; i < p.blocks.size(); ++i)
      if (p.blocks[i].first == bytes) {
        char* b = p.blocks[i].second;
        p.blocks.erase(p.blocks.begin() + static_cast<std::ptrdiff_t>(i));
        p.held -= bytes;
        return b;
      }
  }
  char* b = static_cast<char*>(std::aligned_alloc(64, kHeader + bytes));
  if (!b) throw std::bad_alloc();
  std::memcpy(b, &bytes, sizeof(bytes));
  return b;
}

void pool_give(void* data) {
  char* b = static_cast<char*>(data) - kHeader;
  std::size_t bytes;
  std::memcpy(&bytes, b, sizeof(bytes));
  BlockPool& p = block_pool();
  {
    std::lock_guard<std::mutex> lock(p.m);
    if (p.held + bytes <= kPoolMax) {
      p.blocks.emplace_back(bytes, b);
      p.held += bytes;
      return;
    }
  }
  std::free(b);
}
}  // namespace

f32array new_f32(const std::vector<i64>& shape) {
  check_elements(shape);
  std::vector<py::ssize_t> s(shape.begin(), shape.end());
  std::size_t bytes = sizeof(float);
  for (i64 d : shape) bytes *= static_cast<std::size_t>(d);
  if (bytes < kPoolMin) return f32array(s);
  char* block = pool_take(bytes);
  float* data = reinterpret_cast<float*>(block + kHeader);
  py::capsule owner(data, [](void* ptr) { pool_give(ptr); });
  return f32array(s, data, owner);
}

f32array zeros_f32(const std::vector<i64>& shape) {
  f32array a = new_f32(shape);
  float* p = a.mutable_data();
  const py::ssize_t n = a.size();
  for (py::ssize_t i = 0; i < n; ++i) p[i] = 0.0f;
  return a;
}

void require_positive(i64 v, const char* name) {
  if (v < 1) value_error(std::string(name) + ": expected a positive integer, got " + std::to_string(v));
}

void require_nonnegative(i64 v, const char* name) {
  if (v < 0) value_error(std::string(name) + ": expected a non-negative integer, got " + std::to_string(v));
}

namespace {
i64 checked_i64(py::handle v, const char* name) {
  // Python ints beyond int64 (e.g. 2**64) are a ValueError naming the argument.
  int overflow = 0;
  const long long r = PyLong_AsLongLongAndOverflow(v.ptr(), &overflow);
  if (overflow != 0)
    value_error(std::string(name) + ": expected sizes that fit in 64 bits, got " +
                std::string(py::str(py::repr(v))));
  if (r == -1 && PyErr_Occurred()) throw py::error_already_set();
  return static_cast<i64>(r);
}

i64 int_of(py::handle v, const char* name) {
  if (py::isinstance<py::bool_>(v) || !py::isinstance<py::int_>(v)) {
    // numpy integers are accepted through __index__
    if (!py::isinstance<py::bool_>(v) && py::hasattr(v, "__index__") &&
        !py::isinstance<py::float_>(v))
      return checked_i64(v.attr("__index__")(), name);
    type_error(std::string(name) + ": expected an int or a pair of ints, got " +
               std::string(py::str(py::repr(v))));
  }
  return checked_i64(v, name);
}

Pair parse_pair_impl(py::handle obj, const char* name, i64 min_value) {
  Pair p{0, 0};
  if (py::isinstance<py::tuple>(obj) || py::isinstance<py::list>(obj)) {
    py::sequence seq = py::reinterpret_borrow<py::sequence>(obj);
    if (seq.size() != 2)
      value_error(std::string(name) + ": expected an int or a pair (h, w), got " +
                  std::string(py::str(py::repr(obj))));
    p.h = int_of(seq[0], name);
    p.w = int_of(seq[1], name);
  } else {
    p.h = p.w = int_of(obj, name);
  }
  if (p.h < min_value || p.w < min_value)
    value_error(std::string(name) + ": expected " +
                (min_value > 0 ? "positive" : "non-negative") + " sizes, got " +
                std::string(py::str(py::repr(obj))));
  // Kernel, pool, stride and padding sizes stay below 2**31, so sums and products of
  // them (padded extents, window areas) can never overflow 64 bits.
  constexpr i64 kMaxSize = (i64(1) << 31) - 1;
  if (p.h > kMaxSize || p.w > kMaxSize)
    value_error(std::string(name) + ": expected sizes up to 2**31 - 1, got " +
                std::string(py::str(py::repr(obj))));
  return p;
}
}  // namespace

Pair parse_pair(py::handle obj, const char* name) { return parse_pair_impl(obj, name, 1); }
Pair parse_pair_nonneg(py::handle obj, const char* name) { return parse_pair_impl(obj, name, 0); }

}  // namespace bind
}  // namespace fastnn
