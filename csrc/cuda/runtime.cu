// Host side of the CUDA path: devices, memory, copies, streams, errors.
// See fastnn/cuda/runtime.hpp for the contract.
#include <cuda_runtime.h>

#include "fastnn/cuda/runtime.hpp"
#include "launch.cuh"

namespace fastnn {
namespace cuda {

[[noreturn]] void throw_cuda_error(cudaError_t e, const char* what) {
  cudaGetLastError();  // clear a sticky-free error so the next call starts clean
  const std::string msg = std::string("CUDA error in ") + what + ": " + cudaGetErrorName(e) +
                          ": " + cudaGetErrorString(e);
  if (e == cudaErrorMemoryAllocation) throw CudaOutOfMemory(msg);
  throw CudaError(msg);
}

int device_count() noexcept {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

int runtime_version() noexcept {
  int v = 0;
  if (cudaRuntimeGetVersion(&v) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return v;
}

std::string device_name(int device) {
  cudaDeviceProp prop;
  check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  return prop.name;
}

int current_device() {
  int d = 0;
  check(cudaGetDevice(&d), "cudaGetDevice");
  return d;
}

namespace {
// Device memory comes from the stream-ordered allocator on the legacy default
// stream: freeing never synchronizes the device, and with the release threshold
// raised the pool keeps freed blocks for reuse (a caching allocator). Set once
// per device, on its first allocation.
void keep_pool_memory(int device) {
  static bool done[64] = {};
  if (device < 0 || device >= 64 || done[device]) return;
  cudaMemPool_t pool;
  if (cudaDeviceGetDefaultMemPool(&pool, device) == cudaSuccess) {
    std::uint64_t threshold = ~std::uint64_t(0);
    cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold);
  }
  cudaGetLastError();
  done[device] = true;
}
}  // namespace

void* device_alloc(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  keep_pool_memory(current_device());
  void* p = nullptr;
  check(cudaMallocAsync(&p, bytes, 0), "cudaMallocAsync");
  return p;
}

void device_free(void* p) noexcept {
  if (p == nullptr) return;
  if (cudaFreeAsync(p, 0) != cudaSuccess) cudaGetLastError();
}

void copy_host_to_device(void* dst, const void* src, std::size_t bytes) {
  if (bytes == 0) return;
  check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy (host to device)");
}

void copy_device_to_host(void* dst, const void* src, std::size_t bytes) {
  if (bytes == 0) return;
  check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy (device to host)");
}

void copy_device_to_device(void* dst, const void* src, std::size_t bytes) {
  if (bytes == 0) return;
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, 0),
        "cudaMemcpyAsync (device to device)");
}

void fill_zero(void* dst, std::size_t bytes) {
  if (bytes == 0) return;
  check(cudaMemsetAsync(dst, 0, bytes, 0), "cudaMemsetAsync");
}

void synchronize() { check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }

int pointer_kind(const void* p) {
  cudaPointerAttributes attr;
  check(cudaPointerGetAttributes(&attr, p), "cudaPointerGetAttributes");
  switch (attr.type) {
    case cudaMemoryTypeHost: return 1;
    case cudaMemoryTypeDevice: return 2;
    case cudaMemoryTypeManaged: return 3;
    default: return 0;
  }
}

namespace {
cudaStream_t foreign(std::uintptr_t s) {
  if (s == 1) return cudaStreamLegacy;
  if (s == 2) return cudaStreamPerThread;
  return reinterpret_cast<cudaStream_t>(s);
}

// One event per ordering: record on `from`, make `to` wait for it.
void order(cudaStream_t from, cudaStream_t to) {
  cudaEvent_t ev;
  check(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming), "cudaEventCreateWithFlags");
  cudaError_t e = cudaEventRecord(ev, from);
  if (e == cudaSuccess) e = cudaStreamWaitEvent(to, ev, 0);
  cudaEventDestroy(ev);  // safe: destruction is deferred until the event completes
  check(e, "cudaStreamWaitEvent");
}
}  // namespace

void wait_for_foreign_stream(std::uintptr_t stream) {
  if (stream == 0 || stream == 1) return;  // already ours (legacy default)
  order(foreign(stream), cudaStreamLegacy);
}

void make_foreign_stream_wait(std::uintptr_t stream) {
  if (stream == 0 || stream == 1) return;
  order(cudaStreamLegacy, foreign(stream));
}

void check_launch(const char* what) { check(cudaGetLastError(), what); }

namespace {
struct Strided {
  std::int64_t shape[8];
  std::int64_t strides[8];
  int ndim;
};

template <class T>
__global__ void gather_kernel(T* __restrict__ dst, const T* __restrict__ src, Strided g,
                              std::int64_t n) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    std::int64_t rest = i, off = 0;
    for (int d = g.ndim - 1; d >= 0; --d) {
      const std::int64_t c = rest % g.shape[d];
      rest /= g.shape[d];
      off += c * g.strides[d];
    }
    dst[i] = src[off];
  }
}
}  // namespace

void gather_strided(void* dst, const void* src, int elem_bytes, int ndim,
                    const std::int64_t* shape, const std::int64_t* strides) {
  if (ndim < 0 || ndim > 8) throw std::invalid_argument("gather_strided: rank above 8");
  Strided g{};
  g.ndim = ndim;
  std::int64_t n = 1;
  for (int d = 0; d < ndim; ++d) {
    g.shape[d] = shape[d];
    g.strides[d] = strides[d];
    n *= shape[d];
  }
  if (n == 0) return;
  const unsigned blocks = grid_1d(n);
  if (elem_bytes == 1)
    gather_kernel<<<blocks, kThreads>>>(static_cast<std::uint8_t*>(dst),
                                        static_cast<const std::uint8_t*>(src), g, n);
  else if (elem_bytes == 4)
    gather_kernel<<<blocks, kThreads>>>(static_cast<std::uint32_t*>(dst),
                                        static_cast<const std::uint32_t*>(src), g, n);
  else if (elem_bytes == 8)
    gather_kernel<<<blocks, kThreads>>>(static_cast<std::uint64_t*>(dst),
                                        static_cast<const std::uint64_t*>(src), g, n);
  else
    throw std::invalid_argument("gather_strided: element size must be 1, 4 or 8 bytes");
  check_launch("gather_strided");
}

}  // namespace cuda
}  // namespace fastnn

// ---- sum_to_host (reduce.cuh) -------------------------------------------------
#include "reduce.cuh"

namespace fastnn {
namespace cuda {
namespace {
// One block: thread t adds partial[t], partial[t + 256], ... in order, then the
// block tree combines the 256 sums.
__global__ void sum_doubles_kernel(const double* __restrict__ partial, i64 n,
                                   double* __restrict__ out) {
  double v = 0.0;
  for (i64 i = threadIdx.x; i < n; i += kThreads) v += partial[i];
  v = block_sum(v);
  if (threadIdx.x == 0) *out = v;
}
}  // namespace

double sum_to_host(const double* partial, i64 n) {
  if (n <= 0) return 0.0;
  Scratch out(sizeof(double));
  sum_doubles_kernel<<<1, kThreads>>>(partial, n, out.as<double>());
  check_launch("sum_to_host");
  double host = 0.0;
  copy_device_to_host(&host, out.as<double>(), sizeof(double));
  return host;
}

}  // namespace cuda
}  // namespace fastnn
