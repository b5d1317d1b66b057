// The fastnn._cuda extension module: devices, build information, the Array type
// and the CUDA twins of the kernel families (registered by the other files).
// Errors: a failing CUDA call raises RuntimeError with the CUDA error text;
// running out of device memory raises MemoryError.
#include <pybind11/stl.h>

#include <sstream>
#include <string>
#include <vector>

#include "common.hpp"
#include "fastnn/cuda/runtime.hpp"

namespace py = pybind11;
using namespace fastnn;

#ifndef FASTNN_CUDA_ARCHS
#define FASTNN_CUDA_ARCHS ""
#endif

namespace {

// "80,90" -> ["sm_80", "sm_90"] (CMake's "80-real" style suffixes dropped)
std::vector<std::string> archs() {
  std::vector<std::string> out;
  std::stringstream in(FASTNN_CUDA_ARCHS);
  std::string item;
  while (std::getline(in, item, ',')) {
    const std::size_t dash = item.find('-');
    if (dash != std::string::npos) item = item.substr(0, dash);
    if (!item.empty()) out.push_back("sm_" + item);
  }
  return out;
}

std::string runtime_str() {
  const int v = cuda::runtime_version();
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "fastnn CUDA kernels (private; use fastnn.cuda and fastnn.ops)";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const cuda::CudaOutOfMemory& e) {
      PyErr_SetString(PyExc_MemoryError, e.what());
    }
  });
  m.def("device_count", &cuda::device_count,
        "Number of usable CUDA devices; 0 without a driver or device (never raises).");
  m.def("runtime_version", &runtime_str, "The CUDA runtime linked in, e.g. '13.0'.");
  m.def("archs", &archs, "The GPU architectures compiled in, e.g. ['sm_80', 'sm_90'].");
  m.def("device_name", &cuda::device_name, py::arg("device") = 0);
  m.def("synchronize", []() {
    py::gil_scoped_release nogil;
    cuda::synchronize();
  }, "Wait for all queued GPU work.");
  fastnn::bind::run_registrars(m);
}
