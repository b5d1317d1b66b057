// Threads and CPU-feature dispatch for the whole core.
#include "fastnn/common.hpp"

#include <atomic>
#include <cstring>
#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define FASTNN_HAVE_ATFORK 1
#endif
#if defined(FASTNN_X86)
#include <xmmintrin.h>
#endif
#ifdef FASTNN_OPENMP
#include <omp.h>
#endif

namespace fastnn {

namespace {
int initial_threads() {
#ifdef FASTNN_OPENMP
  int n = omp_get_max_threads();
  return n > 0 ? n : 1;
#else
  return 1;
#endif
}
std::atomic<int>& thread_setting() {
  static std::atomic<int> n{initial_threads()};
  return n;
}

// ---- fork safety ------------------------------------------------------------
// GNU libgomp's thread pool does not survive fork(): a child that enters a parallel
// region with more than one thread waits forever for pool threads that exist only in
// the parent. The child handler below runs in every forked child: it drops the
// setting to one thread (every kernel region is num_threads(num_threads()), and a
// team of one never touches the pool) and marks the process, so that a later
// set_num_threads(n > 1) keeps one thread (the binding warns). exec() starts clean.
std::atomic<bool>& forked_flag() {
  static std::atomic<bool> f{false};
  return f;
}

#ifdef FASTNN_HAVE_ATFORK
void on_fork_child() {
  forked_flag().store(true);
  thread_setting().store(1);
#ifdef FASTNN_OPENMP
  omp_set_num_threads(1);
#endif
}

struct AtForkRegistration {
  AtForkRegistration() {
    (void)thread_setting();  // construct before any fork
    pthread_atfork(nullptr, nullptr, &on_fork_child);
  }
};
const AtForkRegistration at_fork_registration;
#endif

Isa detect_isa() {
#if defined(FASTNN_X86) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  Isa best = Isa::generic;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = Isa::avx2;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
      best == Isa::avx2)
    best = Isa::avx512;
  // FASTNN_ISA lowers the choice (for tests of every code path); it never raises
  // it above what the CPU supports.
  if (const char* env = std::getenv("FASTNN_ISA")) {
    Isa want = best;
    if (!std::strcmp(env, "generic")) want = Isa::generic;
    else if (!std::strcmp(env, "avx2")) want = Isa::avx2;
    else if (!std::strcmp(env, "avx512")) want = Isa::avx512;
    if (static_cast<int>(want) < static_cast<int>(best)) best = want;
  }
  return best;
#else
  return Isa::generic;
#endif
}
}  // namespace

int num_threads() { return thread_setting().load(std::memory_order_relaxed); }

void set_num_threads(int n) {
  if (n < 1) throw std::invalid_argument("set_num_threads: n must be >= 1, got " + std::to_string(n));
#ifdef FASTNN_OPENMP
  thread_setting().store(forked_flag().load() ? 1 : n);
#else
  thread_setting().store(1);
#endif
}

bool forked_child() { return forked_flag().load(); }

bool openmp_enabled() {
#ifdef FASTNN_OPENMP
  return true;
#else
  return false;
#endif
}

Isa active_isa() {
  static const Isa isa = detect_isa();
  return isa;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2+fma";
    default: return "generic";
  }
}

const char* compiler_name() {
#ifdef FASTNN_COMPILER
  return FASTNN_COMPILER;
#else
  return "unknown";
#endif
}

// ---- floating-point environment -----------------------------------------------
namespace {
inline unsigned read_csr() {
#if defined(FASTNN_X86)
  return _mm_getcsr();
#else
  return 0;
#endif
}

}  // namespace

unsigned fp_control_word() { return read_csr(); }

void fp_control_words_of_team(unsigned* out, int n, bool inside_scope) {
  for (int i = 0; i < n; ++i) out[i] = 0;
#ifdef FASTNN_OPENMP
  if (inside_scope) {
    FpEnvScope scope;
#pragma omp parallel num_threads(n) FASTNN_FP_TEAM
    {
      const int t = omp_get_thread_num();
      if (t < n) out[t] = read_csr();
    }
  } else {
#pragma omp parallel num_threads(n)
    {
      const int t = omp_get_thread_num();
      if (t < n) out[t] = read_csr();
    }
  }
#else
  if (inside_scope) {
    FpEnvScope scope;
    out[0] = read_csr();
  } else {
    out[0] = read_csr();
  }
#endif
}

}  // namespace fastnn
