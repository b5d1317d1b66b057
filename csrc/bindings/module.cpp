// The fastnn._core extension module: build information, threads, and the
// kernel families registered by the other binding files.
#include <pybind11/stl.h>

#include "common.hpp"
#include "fastnn/gemm.hpp"

namespace py = pybind11;
using namespace fastnn;
using namespace fastnn::bind;

namespace {

py::dict build_info() {
  py::dict d;
  d["compiler"] = compiler_name();
  d["isa"] = isa_name(active_isa());
  d["openmp"] = openmp_enabled();
  d["threads"] = num_threads();
  const MicroKernels& uk = micro_kernels();
  d["gemm_tile"] = std::to_string(uk.MR) + "x" + std::to_string(uk.NR);
  const CpuInfo& cpu = cpu_info();
  py::dict c;
  c["vendor"] = cpu.vendor;
  c["brand"] = cpu.brand;
  c["family"] = cpu.family;
  c["model"] = cpu.model;
  c["core"] = cpu.core;
  c["l1d_bytes"] = cpu.l1d;
  c["l2_bytes"] = cpu.l2;
  c["l3_bytes"] = cpu.l3;
  c["cache_source"] = cpu.cache_source;
  d["cpu"] = c;
  const GemmBlocking& g = gemm_blocking();
  py::dict b;
  b["kc"] = g.kc;
  b["mc"] = g.mc;
  b["nc"] = g.nc;
  b["source"] = g.source;
  b["warning"] = g.warning;
  d["gemm_blocking"] = b;
  d["cuda"] = false;
  return d;
}

// C = A @ B for 2-D float32 arrays (used by the benchmarks and tests of the GEMM).
f32array matmul(py::handle a_obj, py::handle b_obj, bool transpose_a, bool transpose_b) {
  f32array a = as_f32(a_obj, "a"), b = as_f32(b_obj, "b");
  require_rank(a, 2, "a", "(M, K)");
  require_rank(b, 2, "b", "(K, N)");
  const i64 M = transpose_a ? a.shape(1) : a.shape(0), K = transpose_a ? a.shape(0) : a.shape(1);
  const i64 KB = transpose_b ? b.shape(1) : b.shape(0), N = transpose_b ? b.shape(0) : b.shape(1);
  if (K != KB)
    value_error("b: expected " + std::to_string(K) + " rows to match a, got shape " + shape_str(b));
  f32array c = new_f32({M, N});
  const i64 lda = a.shape(1), ldb = b.shape(1);
  {
    KernelCall nogil;
    sgemm(M, N, K, a.data(), transpose_a ? 1 : lda, transpose_a ? lda : 1, b.data(),
          transpose_b ? 1 : ldb, transpose_b ? ldb : 1, c.mutable_data(), N);
  }
  return c;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "fastnn C++ core (private; use fastnn.ops)";
  m.def("build_info", &build_info);
  m.def("get_num_threads", &num_threads);
  m.def("set_num_threads", [](int n) {
    if (n < 1) value_error("set_num_threads: n: expected an integer >= 1, got " + std::to_string(n));
    set_num_threads(n);
  }, py::arg("n"));
  m.def("forked_child", &forked_child,
        "True in a forked child: kernels run one thread there (OpenMP pools do not survive fork).");
  m.def("matmul", &matmul, py::arg("a"), py::arg("b"), py::kw_only(),
        py::arg("transpose_a") = false, py::arg("transpose_b") = false,
        "C = op(a) @ op(b) with fastnn's GEMM (float32).");
  m.def("_gemm_disabled_paths", &gemm_disabled_paths);
  m.def("_set_gemm_disabled_paths", [](int mask) {
    if (mask < 0) value_error("mask: expected an integer >= 0, got " + std::to_string(mask));
    set_gemm_disabled_paths(mask);
  }, py::arg("mask"), "Switch sgemm paths off (tests and A/B timings; 1 = small M in place).");
  m.def("measure_fma_peak", [](int threads, double seconds) {
    if (threads < 1) value_error("threads: expected >= 1, got " + std::to_string(threads));
    py::gil_scoped_release nogil;
    return measure_fma_peak_gflops(threads, seconds);
  }, py::arg("threads") = 1, py::arg("seconds") = 0.2,
     "Measured FP32 FMA peak in GFLOP/s on `threads` threads (for the benchmarks).");
  m.def("_fp_state", []() {
    const unsigned csr = fp_control_word();
    py::dict d;
    d["mxcsr"] = csr;
    d["ftz"] = bool(csr & 0x8000u);
    d["daz"] = bool(csr & 0x0040u);
    return d;
  }, "MXCSR of the calling thread and its FTZ/DAZ bits (0/False off x86); for the tests.");
  m.def("_fp_state_of_team", [](bool inside_kernel) {
    const int n = num_threads();
    std::vector<unsigned> words(static_cast<std::size_t>(n));
    {
      py::gil_scoped_release nogil;
      fp_control_words_of_team(words.data(), n, inside_kernel);
    }
    return words;
  }, py::arg("inside_kernel") = false,
     "MXCSR of each thread of a num_threads() team, as a kernel sees it (inside_kernel=True) "
     "or as plain code sees it afterwards (False); for the tests.");
  run_registrars(m);
}
