// fastnn/cuda/runtime.hpp -- the host side of the CUDA path: devices, memory,
// copies, streams and errors. Plain C++ (no CUDA headers), so the pybind11
// bindings compile with the host compiler. No Python in here.
//
// Decisions:
// - Every kernel runs on the legacy default stream (stream 0), one device (the
//   current one, device 0 unless the caller changed it). Exported buffers say so
//   (__cuda_array_interface__ "stream": 1); imported buffers from another stream
//   are waited for before use.
// - A failing CUDA call throws CudaError (-> RuntimeError in Python) with the
//   CUDA error name and text and the call that failed; an allocation failure
//   (cudaErrorMemoryAllocation) throws CudaOutOfMemory (-> MemoryError).
// - device_count() never throws: no driver, no device or any other error -> 0.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace fastnn {
namespace cuda {

class CudaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
class CudaOutOfMemory : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

int device_count() noexcept;           // 0 when unusable, never throws
int runtime_version() noexcept;        // e.g. 13000 (the runtime linked in)
std::string device_name(int device);   // throws CudaError
int current_device();                  // throws CudaError

// Device memory. bytes == 0 returns nullptr. device_free(nullptr) is a no-op and
// device_free never throws (errors at free time are dropped).
void* device_alloc(std::size_t bytes);
void device_free(void* p) noexcept;

void copy_host_to_device(void* dst, const void* src, std::size_t bytes);
void copy_device_to_host(void* dst, const void* src, std::size_t bytes);
void copy_device_to_device(void* dst, const void* src, std::size_t bytes);
void fill_zero(void* dst, std::size_t bytes);
void synchronize();

// What a pointer is: 0 unregistered host memory, 1 host (pinned), 2 device,
// 3 managed. Throws CudaError on a failing query.
int pointer_kind(const void* p);

// Foreign streams (numbers as __cuda_array_interface__ / DLPack give them:
// 1 = legacy default, 2 = per-thread default, else a cudaStream_t).
// Consumer side: our stream must not run ahead of work queued on `stream`.
void wait_for_foreign_stream(std::uintptr_t stream);
// Producer side: work later queued on `stream` must see what we queued so far.
void make_foreign_stream_wait(std::uintptr_t stream);

// Throws CudaError naming `what` when the last launch failed.
void check_launch(const char* what);

// Strided gather into a contiguous buffer (any element size 1, 4 or 8 bytes):
// dst[i] = src[offset(i)], offset from shape/strides in ELEMENTS, rank <= 8.
void gather_strided(void* dst, const void* src, int elem_bytes, int ndim,
                    const std::int64_t* shape, const std::int64_t* strides);

}  // namespace cuda
}  // namespace fastnn
