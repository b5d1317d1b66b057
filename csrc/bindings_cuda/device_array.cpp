// fastnn.cuda.Array and its conversions. See device_array.hpp.
//
// Decisions:
// - Arrays are always C-contiguous. A strided foreign buffer (CAI strides or DLPack
//   strides that are not C order) is copied once into a new contiguous array.
// - dtypes: float32 (data), int32 / int64 (labels, indices), uint8 (masks; a bool
//   buffer is read as uint8 0/1). Other dtypes raise TypeError.
// - Foreign buffers must be device (or managed) memory of the current device; a
//   host pointer behind __cuda_array_interface__ raises ValueError.
// - Streams: we work on the legacy default stream. We export "stream": 1 in
//   __cuda_array_interface__; __dlpack__(stream=s) makes s wait for our queued
//   work; imported buffers with a stream make ours wait for it.
#include "device_array.hpp"

#include <pybind11/stl.h>

#include <limits>
#include <new>

#include "common.hpp"
#include "fastnn/cuda/runtime.hpp"

namespace fastnn {
namespace bind_cuda {

using fastnn::bind::shape_str;
using fastnn::bind::type_error;
using fastnn::bind::value_error;

// ---- the DLPack ABI (version 0.x, capsule name "dltensor") ----------------------
namespace dl {
struct Device {
  std::int32_t device_type;  // 1 CPU, 2 CUDA, 3 CUDA host, 13 CUDA managed
  std::int32_t device_id;
};
struct DataType {
  std::uint8_t code;   // 0 int, 1 uint, 2 float, 6 bool
  std::uint8_t bits;
  std::uint16_t lanes;
};
struct Tensor {
  void* data;
  Device device;
  std::int32_t ndim;
  DataType dtype;
  std::int64_t* shape;
  std::int64_t* strides;  // in elements; nullptr = C-contiguous
  std::uint64_t byte_offset;
};
struct ManagedTensor {
  Tensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(ManagedTensor* self);
};
constexpr std::int32_t kCPU = 1, kCUDA = 2, kCUDAManaged = 13;
}  // namespace dl

int dtype_size(DType d) {
  switch (d) {
    case DType::float32: return 4;
    case DType::int32: return 4;
    case DType::int64: return 8;
    case DType::uint8: return 1;
  }
  return 1;
}

const char* dtype_name(DType d) {
  switch (d) {
    case DType::float32: return "float32";
    case DType::int32: return "int32";
    case DType::int64: return "int64";
    case DType::uint8: return "uint8";
  }
  return "?";
}

namespace {
const char* typestr(DType d) {
  switch (d) {
    case DType::float32: return "<f4";
    case DType::int32: return "<i4";
    case DType::int64: return "<i8";
    case DType::uint8: return "|u1";
  }
  return "?";
}

dl::DataType dl_dtype(DType d) {
  switch (d) {
    case DType::float32: return {2, 32, 1};
    case DType::int32: return {0, 32, 1};
    case DType::int64: return {0, 64, 1};
    case DType::uint8: return {1, 8, 1};
  }
  return {2, 32, 1};
}

[[noreturn]] void unsupported_dtype(const std::string& what, const char* name) {
  type_error(std::string(name) + ": expected device data of dtype float32, int32, int64, uint8 or "
             "bool, got " + what);
}

// Translates the typestr of __cuda_array_interface__ (little-endian machines).
DType dtype_from_typestr(const std::string& t, const char* name) {
  if (t == "<f4") return DType::float32;
  if (t == "<i4") return DType::int32;
  if (t == "<i8") return DType::int64;
  if (t == "|u1" || t == "<u1" || t == "|b1" || t == "<b1") return DType::uint8;
  unsupported_dtype("typestr '" + t + "'", name);
}

DType dtype_from_dl(dl::DataType t, const char* name) {
  if (t.lanes == 1) {
    if (t.code == 2 && t.bits == 32) return DType::float32;
    if (t.code == 0 && t.bits == 32) return DType::int32;
    if (t.code == 0 && t.bits == 64) return DType::int64;
    if ((t.code == 1 || t.code == 6) && t.bits == 8) return DType::uint8;
  }
  unsupported_dtype("DLPack dtype (code " + std::to_string(t.code) + ", bits " +
                    std::to_string(t.bits) + ", lanes " + std::to_string(t.lanes) + ")", name);
}

i64 checked_count(const std::vector<i64>& shape, int itemsize) {
  const i64 limit = std::numeric_limits<i64>::max() / 16;
  i64 n = 1;
  for (i64 d : shape) {
    if (d < 0) value_error("negative dimension in shape " + shape_str(shape));
    if (d != 0 && n > limit / d) throw std::bad_alloc();
    n *= d;
  }
  if (n > limit / itemsize) throw std::bad_alloc();
  return n;
}

// Copies a strided device buffer into a new C-contiguous array.
DeviceArray contiguous_copy(const void* data, const std::vector<i64>& shape,
                            const std::vector<i64>& elem_strides, DType dtype) {
  if (shape.size() > 8) value_error("strided device arrays of rank above 8 are not supported");
  DeviceArray out = device_empty(shape, dtype);
  if (out.size() > 0) {
    py::gil_scoped_release nogil;
    cuda::gather_strided(out.data, data, dtype_size(dtype), static_cast<int>(shape.size()),
                         shape.data(), elem_strides.data());
  }
  return out;
}

bool c_contiguous(const std::vector<i64>& shape, const std::vector<i64>& elem_strides) {
  i64 expect = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    if (shape[i] != 1 && elem_strides[i] != expect) return false;
    expect *= shape[i];
  }
  return true;
}

void require_device_pointer(const void* p, const char* name) {
  const int kind = cuda::pointer_kind(p);
  if (kind != 2 && kind != 3)
    value_error(std::string(name) + ": expected GPU memory behind __cuda_array_interface__ / "
                "DLPack, got a host pointer");
}

std::vector<i64> int_tuple(py::handle obj, const char* name, const char* what) {
  if (!py::isinstance<py::tuple>(obj) && !py::isinstance<py::list>(obj))
    type_error(std::string(name) + ": " + what + " must be a tuple of ints");
  std::vector<i64> v;
  for (py::handle h : obj) v.push_back(h.cast<i64>());
  return v;
}

}  // namespace

i64 DeviceArray::size() const {
  i64 n = 1;
  for (i64 d : shape) n *= d;
  return n;
}

DeviceArray device_empty(const std::vector<i64>& shape, DType dtype) {
  const i64 n = checked_count(shape, dtype_size(dtype));
  DeviceArray a;
  a.shape = shape;
  a.dtype = dtype;
  if (n > 0) {
    void* p = cuda::device_alloc(static_cast<std::size_t>(n) * dtype_size(dtype));
    a.mem = std::shared_ptr<void>(p, [](void* q) { cuda::device_free(q); });
    a.data = p;
  }
  return a;
}

DeviceArray device_zeros(const std::vector<i64>& shape, DType dtype) {
  DeviceArray a = device_empty(shape, dtype);
  cuda::fill_zero(a.data, a.nbytes());
  return a;
}

bool is_device_array(py::handle obj) { return py::isinstance<DeviceArray>(obj); }

// ---- __cuda_array_interface__ in ------------------------------------------------------
DeviceArray from_cai(py::handle obj, const char* name) {
  py::object iface = obj.attr("__cuda_array_interface__");
  if (!py::isinstance<py::dict>(iface))
    type_error(std::string(name) + ": __cuda_array_interface__ is not a dict");
  py::dict d = py::reinterpret_borrow<py::dict>(iface);
  if (d.contains("mask") && !d["mask"].is_none())
    value_error(std::string(name) + ": masked device arrays are not supported");
  const std::vector<i64> shape = int_tuple(d["shape"], name, "shape");
  const DType dtype = dtype_from_typestr(py::str(d["typestr"]).cast<std::string>(), name);
  py::tuple data = d["data"].cast<py::tuple>();
  const auto ptr = data[0].cast<std::uintptr_t>();
  const bool readonly = data[1].cast<bool>();
  const i64 n = checked_count(shape, dtype_size(dtype));
  if (n > 0 && ptr == 0) value_error(std::string(name) + ": null data pointer for a non-empty array");
  if (d.contains("stream") && !d["stream"].is_none())
    cuda::wait_for_foreign_stream(d["stream"].cast<std::uintptr_t>());
  void* p = reinterpret_cast<void*>(ptr);
  if (n > 0) require_device_pointer(p, name);
  std::vector<i64> strides;
  bool contiguous = true;
  if (d.contains("strides") && !d["strides"].is_none()) {
    const std::vector<i64> bytes = int_tuple(d["strides"], name, "strides");
    if (bytes.size() != shape.size()) value_error(std::string(name) + ": strides and shape differ in length");
    for (i64 b : bytes) {
      if (b % dtype_size(dtype) != 0)
        value_error(std::string(name) + ": strides are not a multiple of the item size");
      strides.push_back(b / dtype_size(dtype));
    }
    contiguous = c_contiguous(shape, strides);
  }
  if (!contiguous && n > 0) {
    DeviceArray c = contiguous_copy(p, shape, strides, dtype);
    return c;
  }
  DeviceArray a;
  a.shape = shape;
  a.dtype = dtype;
  a.data = n > 0 ? p : nullptr;
  a.readonly = readonly;
  a.keepalive = py::reinterpret_borrow<py::object>(obj);
  return a;
}

// ---- DLPack in ----------------------------------------------------------------------
DeviceArray from_dlpack(py::handle obj) {
  const char* name = "from_dlpack";
  if (!py::hasattr(obj, "__dlpack__") || !py::hasattr(obj, "__dlpack_device__"))
    type_error(std::string("from_dlpack: expected an object with __dlpack__ and __dlpack_device__, got ") +
               std::string(py::str(py::type::of(obj).attr("__name__"))));
  py::tuple dev = obj.attr("__dlpack_device__")().cast<py::tuple>();
  const int dev_type = dev[0].cast<int>();
  if (dev_type != dl::kCUDA && dev_type != dl::kCUDAManaged)
    value_error("from_dlpack: expected a CUDA tensor, got DLPack device type " + std::to_string(dev_type) +
                (dev_type == dl::kCPU ? " (CPU: use fastnn.cuda.asarray to copy host data)" : ""));
  py::object cap = obj.attr("__dlpack__")(py::arg("stream") = 1);
  if (!PyCapsule_IsValid(cap.ptr(), "dltensor"))
    type_error("from_dlpack: __dlpack__ did not return an unused 'dltensor' capsule");
  auto* mt = static_cast<dl::ManagedTensor*>(PyCapsule_GetPointer(cap.ptr(), "dltensor"));
  if (mt == nullptr) throw py::error_already_set();
  if (PyCapsule_SetName(cap.ptr(), "used_dltensor") != 0) throw py::error_already_set();
  // From here on we own mt: the holder calls its deleter once, with the GIL.
  std::shared_ptr<void> holder(mt, [](void* q) {
    auto* t = static_cast<dl::ManagedTensor*>(q);
    if (t->deleter != nullptr) {
      py::gil_scoped_acquire gil;
      t->deleter(t);
    }
  });
  const dl::Tensor& t = mt->dl_tensor;
  const DType dtype = dtype_from_dl(t.dtype, name);
  if (t.ndim < 0 || t.ndim > 32) value_error("from_dlpack: unsupported rank " + std::to_string(t.ndim));
  std::vector<i64> shape(t.shape, t.shape + t.ndim);
  const i64 n = checked_count(shape, dtype_size(dtype));
  char* p = static_cast<char*>(t.data) + t.byte_offset;
  if (n > 0) require_device_pointer(p, name);
  if (t.strides != nullptr && n > 0) {
    std::vector<i64> strides(t.strides, t.strides + t.ndim);
    if (!c_contiguous(shape, strides)) return contiguous_copy(p, shape, strides, dtype);
  }
  DeviceArray a;
  a.shape = shape;
  a.dtype = dtype;
  a.data = n > 0 ? p : nullptr;
  a.mem = holder;
  return a;
}

// ---- DLPack out -----------------------------------------------------------------------
namespace {
struct ExportContext {
  dl::ManagedTensor tensor;
  std::vector<std::int64_t> shape;
  DeviceArray keep;  // holds the memory (and any foreign owner) alive
};

void export_deleter(dl::ManagedTensor* self) {
  py::gil_scoped_acquire gil;  // keep may hold Python objects
  delete static_cast<ExportContext*>(self->manager_ctx);
}

void capsule_destructor(PyObject* cap) {
  // Only an unconsumed capsule still owns the tensor.
  if (PyCapsule_IsValid(cap, "dltensor")) {
    auto* mt = static_cast<dl::ManagedTensor*>(PyCapsule_GetPointer(cap, "dltensor"));
    if (mt != nullptr && mt->deleter != nullptr) mt->deleter(mt);
  }
}

py::object to_dlpack(const DeviceArray& a, py::handle stream) {
  if (!stream.is_none()) {
    const i64 s = stream.cast<i64>();
    if (s != -1) cuda::make_foreign_stream_wait(static_cast<std::uintptr_t>(s));
  }
  auto* ctx = new ExportContext();
  ctx->shape.assign(a.shape.begin(), a.shape.end());
  ctx->keep = a;
  dl::Tensor& t = ctx->tensor.dl_tensor;
  t.data = a.data;
  t.device = {dl::kCUDA, cuda::current_device()};
  t.ndim = static_cast<std::int32_t>(a.shape.size());
  t.dtype = dl_dtype(a.dtype);
  t.shape = ctx->shape.data();
  t.strides = nullptr;
  t.byte_offset = 0;
  ctx->tensor.manager_ctx = ctx;
  ctx->tensor.deleter = export_deleter;
  PyObject* cap = PyCapsule_New(&ctx->tensor, "dltensor", capsule_destructor);
  if (cap == nullptr) {
    delete ctx;
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::object>(cap);
}

py::dict cai_dict(const DeviceArray& a) {
  py::dict d;
  d["shape"] = py::tuple(py::cast(a.shape));
  d["typestr"] = typestr(a.dtype);
  d["data"] = py::make_tuple(reinterpret_cast<std::uintptr_t>(a.data), a.readonly);
  d["version"] = 3;
  d["strides"] = py::none();
  d["stream"] = 1;  // the legacy default stream, where our work is queued
  return d;
}

std::vector<i64> parse_shape(py::handle obj, const char* name) {
  std::vector<i64> shape;
  if (py::isinstance<py::int_>(obj) || (py::hasattr(obj, "__index__") && !py::isinstance<py::float_>(obj) &&
                                        !py::isinstance<py::sequence>(obj))) {
    shape.push_back(obj.attr("__index__")().cast<i64>());
  } else {
    if (!py::isinstance<py::sequence>(obj) || py::isinstance<py::str>(obj))
      type_error(std::string(name) + ": expected an int or a tuple of ints, got " +
                 std::string(py::str(py::repr(obj))));
    for (py::handle h : obj) {
      if (py::isinstance<py::bool_>(h) || py::isinstance<py::float_>(h) || !py::hasattr(h, "__index__"))
        type_error(std::string(name) + ": expected a tuple of ints, got " + std::string(py::str(py::repr(obj))));
      shape.push_back(h.attr("__index__")().cast<i64>());
    }
  }
  for (i64 d : shape)
    if (d < 0) value_error(std::string(name) + ": expected non-negative sizes, got " + shape_str(shape));
  return shape;
}

// numpy (C-contiguous, one of the four dtypes: the Python layer normalizes) -> device
DeviceArray from_host(const py::array& host) {
  const std::string kind(1, host.dtype().kind());
  DType dtype;
  const int itemsize = static_cast<int>(host.itemsize());
  if (kind == "f" && itemsize == 4) dtype = DType::float32;
  else if (kind == "i" && itemsize == 4) dtype = DType::int32;
  else if (kind == "i" && itemsize == 8) dtype = DType::int64;
  else if ((kind == "u" || kind == "b") && itemsize == 1) dtype = DType::uint8;
  else type_error("from_host: expected float32, int32, int64, uint8 or bool, got " +
                  std::string(py::str(host.dtype())));
  if (!(host.flags() & py::array::c_style)) value_error("from_host: expected a C-contiguous array");
  std::vector<i64> shape(host.ndim());
  for (py::ssize_t i = 0; i < host.ndim(); ++i) shape[i] = host.shape(i);
  DeviceArray a = device_empty(shape, dtype);
  {
    py::gil_scoped_release nogil;
    cuda::copy_host_to_device(a.data, host.data(), a.nbytes());
  }
  return a;
}

py::array to_host(const DeviceArray& a) {
  py::array out(py::dtype(dtype_name(a.dtype)), std::vector<py::ssize_t>(a.shape.begin(), a.shape.end()));
  {
    py::gil_scoped_release nogil;
    cuda::copy_device_to_host(out.mutable_data(), a.data, a.nbytes());
  }
  return out;
}

DeviceArray reshape(const DeviceArray& a, py::args args) {
  py::object spec = args.size() == 1 ? py::object(args[0]) : py::object(args);
  std::vector<i64> shape;
  i64 known = 1;
  int infer = -1;
  py::object seq = spec;
  if (py::isinstance<py::int_>(spec)) seq = py::make_tuple(spec);
  for (py::handle h : seq) {
    const i64 d = h.cast<i64>();
    if (d == -1) {
      if (infer >= 0) value_error("reshape: only one dimension may be -1");
      infer = static_cast<int>(shape.size());
      shape.push_back(1);
    } else {
      if (d < 0) value_error("reshape: negative size in " + std::string(py::str(py::repr(spec))));
      shape.push_back(d);
      known *= d;
    }
  }
  const i64 n = a.size();
  if (infer >= 0) {
    if (known == 0 || n % known != 0)
      value_error("reshape: cannot reshape an array of shape " + shape_str(a.shape) + " into " +
                  std::string(py::str(py::repr(spec))));
    shape[infer] = n / known;
    known *= shape[infer];
  }
  if (known != n)
    value_error("reshape: cannot reshape an array of shape " + shape_str(a.shape) + " into " +
                shape_str(shape));
  DeviceArray b = a;
  b.shape = shape;
  return b;
}

}  // namespace

DeviceArray device_arg(py::handle obj, const char* name) {
  if (is_device_array(obj)) return obj.cast<DeviceArray>();
  if (!py::isinstance<py::array>(obj) && py::hasattr(obj, "__cuda_array_interface__"))
    return from_cai(obj, name);
  type_error(std::string(name) + ": expected a GPU array (fastnn.cuda.Array or an object with "
             "__cuda_array_interface__) because the call runs on the GPU, got " +
             std::string(py::str(py::type::of(obj).attr("__name__"))) +
             " (move it with fastnn.cuda.asarray)");
}

DeviceArray f32_arg(py::handle obj, const char* name) {
  DeviceArray a = device_arg(obj, name);
  if (a.dtype != DType::float32)
    type_error(std::string(name) + ": expected a float32 GPU array, got dtype " + dtype_name(a.dtype));
  return a;
}

DeviceArray f32_inplace_arg(py::handle obj, const char* name) {
  DeviceArray a = f32_arg(obj, name);
  if (a.readonly) value_error(std::string(name) + ": expected a writable array (updated in place), got a read-only one");
  return a;
}

DType parse_dtype(py::handle obj, const char* name) {
  std::string s;
  if (py::isinstance<py::str>(obj)) {
    s = obj.cast<std::string>();
  } else {
    s = py::str(py::dtype::from_args(py::reinterpret_borrow<py::object>(obj)));
  }
  if (s == "float32") return DType::float32;
  if (s == "int32") return DType::int32;
  if (s == "int64") return DType::int64;
  if (s == "uint8") return DType::uint8;
  type_error(std::string(name) + ": expected 'float32', 'int32', 'int64' or 'uint8', got " + s);
}

void register_array(py::module_& m) {
  py::class_<DeviceArray>(m, "Array",
                          "A C-contiguous GPU buffer with a shape and a dtype (float32, int32, "
                          "int64 or uint8). Exports __cuda_array_interface__ (v3) and DLPack.")
      .def(py::init([](py::handle shape, py::handle dtype) {
             return device_zeros(parse_shape(shape, "shape"), parse_dtype(dtype, "dtype"));
           }),
           py::arg("shape"), py::arg("dtype") = "float32", "A zero-filled array on the GPU.")
      .def_property_readonly("shape", [](const DeviceArray& a) { return py::tuple(py::cast(a.shape)); })
      .def_property_readonly("dtype", [](const DeviceArray& a) { return py::dtype(dtype_name(a.dtype)); })
      .def_property_readonly("ndim", [](const DeviceArray& a) { return a.shape.size(); })
      .def_property_readonly("size", &DeviceArray::size)
      .def_property_readonly("nbytes", &DeviceArray::nbytes)
      .def_property_readonly("readonly", [](const DeviceArray& a) { return a.readonly; })
      .def_property_readonly("ptr", [](const DeviceArray& a) { return reinterpret_cast<std::uintptr_t>(a.data); })
      .def_property_readonly("__cuda_array_interface__", &cai_dict)
      .def("__dlpack__", [](const DeviceArray& a, py::handle stream, py::handle, py::handle dl_device, py::handle copy) {
             if (!dl_device.is_none()) {
               py::tuple d = dl_device.cast<py::tuple>();
               if (d[0].cast<int>() != dl::kCUDA || d[1].cast<int>() != cuda::current_device())
                 throw py::buffer_error("__dlpack__: this array lives on CUDA device " +
                                        std::to_string(cuda::current_device()) + "; no cross-device export");
             }
             if (!copy.is_none() && copy.cast<bool>())
               throw py::buffer_error("__dlpack__: copy=True is not supported (use .copy() first)");
             return to_dlpack(a, stream);
           },
           py::kw_only(), py::arg("stream") = py::none(), py::arg("max_version") = py::none(),
           py::arg("dl_device") = py::none(), py::arg("copy") = py::none())
      .def("__dlpack_device__", [](const DeviceArray&) { return py::make_tuple(dl::kCUDA, cuda::current_device()); })
      .def("numpy", &to_host, "A host copy as a numpy array (waits for queued work).")
      .def("copy", [](const DeviceArray& a) {
             DeviceArray b = device_empty(a.shape, a.dtype);
             cuda::copy_device_to_device(b.data, a.data, a.nbytes());
             return b;
           }, "A new array with the same contents.")
      .def("reshape", &reshape, "A view with another shape (same memory); one size may be -1.")
      .def("__len__", [](const DeviceArray& a) {
             if (a.shape.empty()) throw py::type_error("len() of a 0-d array");
             return a.shape[0];
           })
      .def("__repr__", [](const DeviceArray& a) {
             return "fastnn.cuda.Array(shape=" + shape_str(a.shape) + ", dtype=" + dtype_name(a.dtype) + ")";
           });
  m.def("from_host", &from_host, py::arg("array"),
        "Copy a C-contiguous numpy array (float32, int32, int64, uint8, bool) to the GPU.");
  m.def("from_cuda_array_interface", [](py::handle obj) { return from_cai(obj, "obj"); }, py::arg("obj"),
        "Wrap an object exposing __cuda_array_interface__ (no copy when C-contiguous).");
  m.def("from_dlpack", &from_dlpack, py::arg("obj"),
        "Take a CUDA DLPack tensor (no copy when C-contiguous).");
  m.def("zeros", [](py::handle shape, py::handle dtype) {
          return device_zeros(parse_shape(shape, "shape"), parse_dtype(dtype, "dtype"));
        }, py::arg("shape"), py::arg("dtype") = "float32");
  m.def("empty", [](py::handle shape, py::handle dtype) {
          return device_empty(parse_shape(shape, "shape"), parse_dtype(dtype, "dtype"));
        }, py::arg("shape"), py::arg("dtype") = "float32");
}
FASTNN_REGISTER(register_array);

}  // namespace bind_cuda
}  // namespace fastnn
