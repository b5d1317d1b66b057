// fastnn/cpuinfo.hpp -- what CPU this is (vendor, family/model, brand string, cache
// sizes) and the GEMM blocking chosen from it. No Python in here.
//
// Cache sizes come from CPUID (leaf 4 on Intel, leaf 0x8000001D on AMD), else from
// sysfs (/sys/devices/system/cpu/cpu0/cache), else from constants (32 KiB L1d,
// 1 MiB L2, 32 MiB L3). The blocking is, in order of precedence:
//   1. FASTNN_GEMM_BLOCKING=kc,mc,nc (validated; a bad value is ignored with a warning
//      that the Python package turns into a RuntimeWarning at import),
//   2. a table of values for the cores that were measured or studied (Zen 4, Sapphire
//      Rapids / Emerald Rapids),
//   3. values derived from the L1d and L2 sizes and the micro-tile (derive_gemm_blocking).
// Only KC changes the bits of a product (the canonical order of gemm.hpp); MC and NC
// only move work between loops and threads.
#pragma once
#include <string>

#include "fastnn/common.hpp"

namespace fastnn {

struct CpuInfo {
  std::string vendor;        // "GenuineIntel", "AuthenticAMD", ... ("" off x86)
  std::string brand;         // CPUID brand string, trimmed ("" when absent)
  int family = 0, model = 0; // display family / model (extended fields folded in)
  std::string core;          // "zen4", "sapphire_rapids", ... or "" when not in the table
  i64 l1d = 0, l2 = 0, l3 = 0;  // bytes: L1 data, L2 and L3 of the cache instance cpu 0 uses
  std::string cache_source;  // "cpuid", "sysfs" or "default"
};

// Read once (first call) and kept.
const CpuInfo& cpu_info();

struct GemmBlocking {
  i64 kc = 256, mc = 96, nc = 1536;
  std::string source;   // "env", "table:<core>" or "derived"
  std::string warning;  // non-empty when FASTNN_GEMM_BLOCKING was given but rejected
};

// The blocking sgemm uses, chosen once (first call) for this CPU and active ISA.
const GemmBlocking& gemm_blocking();

// KC, MC, NC from the cache sizes (bytes) and the micro-tile MR x NR (floats); the
// derivation is written out in cpuinfo.cpp and docs/readme/gemm.md.
GemmBlocking derive_gemm_blocking(i64 l1d, i64 l2, int MR, int NR);

// Parses "kc,mc,nc" (three decimal integers, optional spaces). Returns false and sets
// *err to a message naming the problem when the text or a value is not acceptable.
bool parse_gemm_blocking(const char* text, i64* kc, i64* mc, i64* nc, std::string* err);

}  // namespace fastnn
