// fastnn.cuda.Array: a C-contiguous device buffer with a shape and a dtype, and
// the conversions in and out (host copies, __cuda_array_interface__ v3, DLPack).
// Bindings only: argument checks and conversions, no kernels.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace fastnn {
namespace bind_cuda {

namespace py = pybind11;
using i64 = std::int64_t;

enum class DType : int { float32 = 0, int32 = 1, int64 = 2, uint8 = 3 };
int dtype_size(DType d);
const char* dtype_name(DType d);  // "float32", ...
DType parse_dtype(py::handle obj, const char* name);  // a str or numpy dtype; TypeError else

struct DeviceArray {
  std::shared_ptr<void> mem;   // owner of the memory (ours, or a DLPack producer's)
  void* data = nullptr;        // first element (nullptr when empty)
  std::vector<i64> shape;
  DType dtype = DType::float32;
  bool readonly = false;
  py::object keepalive;        // a foreign exporter (__cuda_array_interface__)

  i64 size() const;
  std::size_t nbytes() const { return static_cast<std::size_t>(size()) * dtype_size(dtype); }
  float* f32() const { return static_cast<float*>(data); }
};

// A new uninitialised / zero-filled device array. MemoryError before allocating
// when the size overflows; MemoryError when the device is out of memory.
DeviceArray device_empty(const std::vector<i64>& shape, DType dtype);
DeviceArray device_zeros(const std::vector<i64>& shape, DType dtype);

// Arguments of the CUDA ops: a fastnn.cuda.Array, or any object with
// __cuda_array_interface__ (wrapped without a copy when C-contiguous).
// Anything else raises TypeError naming `name`.
DeviceArray device_arg(py::handle obj, const char* name);
// The same, requiring dtype float32 (TypeError otherwise).
DeviceArray f32_arg(py::handle obj, const char* name);
// A float32 array updated in place: also not read-only (ValueError).
DeviceArray f32_inplace_arg(py::handle obj, const char* name);

bool is_device_array(py::handle obj);

}  // namespace bind_cuda
}  // namespace fastnn
