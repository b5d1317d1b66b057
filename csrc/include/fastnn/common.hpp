// fastnn/common.hpp -- shared facilities of the C++ core: threads, CPU features,
// aligned scratch buffers. No Python in here.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#if defined(FASTNN_X86)
#include <xmmintrin.h>
#endif
#if defined(FASTNN_OPENMP)
#include <omp.h>
#endif

namespace fastnn {

using i64 = std::int64_t;

// ---- threads ---------------------------------------------------------------
// Every parallel region uses num_threads(fastnn::num_threads()). Work is always
// partitioned so that no floating-point reduction order depends on the count.
int num_threads();
void set_num_threads(int n);      // n >= 1, else std::invalid_argument
bool openmp_enabled();
// True in a process forked (without exec) from one that loaded fastnn: it runs one
// thread, and set_num_threads keeps one (GNU libgomp's pool does not survive fork).
bool forked_child();

// ---- floating-point environment ---------------------------------------------
// Kernels run with flush-to-zero and denormals-are-zero (x86 MXCSR FTZ|DAZ), so
// subnormal inputs never hit the slow microcode path. Each thread has its own MXCSR:
// - FpEnvScope (held by every binding around its core call) sets both bits on the
//   calling thread and restores its saved MXCSR when it ends;
// - every OpenMP region of the kernels names fp_team_guard firstprivate
//   (FASTNN_FP_TEAM), so each thread of the team copy-constructs a guard that sets the
//   bits for the region and restores that thread's MXCSR when the region ends.
// So no thread's floating-point state outlives a kernel, and every thread of a
// kernel computes with the same state. Nested scopes on a thread are counted; only
// the outermost one saves and restores. No-op off x86.
// Defined here, inline, so that every module that holds these scopes (the CPU and
// the CUDA bindings) has them without linking the CPU kernels.
inline constexpr unsigned kFtzDaz = 0x8040u;  // MXCSR bit 15 (FTZ) | bit 6 (DAZ)
inline thread_local int fp_depth = 0;          // scopes open on this thread
inline thread_local unsigned fp_saved = 0;     // MXCSR before the outermost one
// pool_worker: a worker of an OpenMP team. Such a thread may have been created by a
// master that was inside a kernel, and then inherited its FTZ|DAZ; it leaves with
// both bits off, the state threads start with.
inline void fp_thread_enter(bool pool_worker = false) {
#if defined(FASTNN_X86)
  if (fp_depth++ == 0) {
    fp_saved = _mm_getcsr();
    if (pool_worker) fp_saved &= ~kFtzDaz;
    _mm_setcsr(fp_saved | kFtzDaz);
  }
#else
  (void)pool_worker;
#endif
}
inline void fp_thread_leave() {
#if defined(FASTNN_X86)
  if (fp_depth > 0 && --fp_depth == 0) _mm_setcsr(fp_saved);  // also drops flags the kernel raised
#endif
}
class FpEnvScope {
 public:
  FpEnvScope() { fp_thread_enter(); }
  ~FpEnvScope() { fp_thread_leave(); }
  FpEnvScope(const FpEnvScope&) = delete;
  FpEnvScope& operator=(const FpEnvScope&) = delete;
};
struct FpTeamGuard {
  FpTeamGuard() = default;  // the shared object itself does nothing
  FpTeamGuard(const FpTeamGuard&) : active(true) {
#if defined(FASTNN_OPENMP)
    fp_thread_enter(omp_get_thread_num() != 0);
#else
    fp_thread_enter();
#endif
  }
  ~FpTeamGuard() {
    if (active) fp_thread_leave();
  }
  FpTeamGuard& operator=(const FpTeamGuard&) = delete;
  bool active = false;
};
inline FpTeamGuard fp_team_guard;
#define FASTNN_FP_TEAM firstprivate(fp_team_guard)

// body(i) for i in [0, n) with a static schedule on nthreads threads; on the calling
// thread alone, with no OpenMP region at all, when nthreads <= 1 or n <= 1 (libgomp
// sets up a team even for a region whose if clause is false: about 0.5 us, which is
// what a tiny kernel costs in all). The partition never changes any result.
template <class F>
inline void for_each_task(i64 n, int nthreads, F&& body) {
  if (nthreads <= 1 || n <= 1) {
    for (i64 i = 0; i < n; ++i) body(i);
    return;
  }
#pragma omp parallel for schedule(static) num_threads(nthreads) FASTNN_FP_TEAM
  for (i64 i = 0; i < n; ++i) body(i);
}
// MXCSR of the calling thread (0 off x86), and of each thread of a team of n
// threads, optionally inside a kernel's region (FpEnvScope + FASTNN_FP_TEAM; tests).
unsigned fp_control_word();
void fp_control_words_of_team(unsigned* out, int n, bool inside_scope);

// ---- CPU features ----------------------------------------------------------
enum class Isa { generic = 0, avx2 = 1, avx512 = 2 };
Isa active_isa();                 // chosen once: FASTNN_ISA env may lower it
const char* isa_name(Isa isa);
const char* compiler_name();

// ---- aligned scratch --------------------------------------------------------
// A 64-byte aligned buffer owned by one caller (one call or one thread).
template <class T>
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(std::size_t n) { resize(n); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr; o.n_ = 0; }
  ~Buffer() { std::free(p_); }
  void resize(std::size_t n) {
    if (n <= n_) return;
    std::free(p_);
    p_ = nullptr; n_ = 0;
    std::size_t bytes = ((n * sizeof(T) + 63) / 64) * 64;
    p_ = static_cast<T*>(std::aligned_alloc(64, bytes ? bytes : 64));
    if (!p_) throw std::bad_alloc();
    n_ = n;
  }
  void zero() { for (std::size_t i = 0; i < n_; ++i) p_[i] = T(0); }
  T* data() { return p_; }
  const T* data() const { return p_; }
  std::size_t size() const { return n_; }
  T& operator[](std::size_t i) { return p_[i]; }
 private:
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

inline i64 ceil_div(i64 a, i64 b) { return (a + b - 1) / b; }

}  // namespace fastnn
