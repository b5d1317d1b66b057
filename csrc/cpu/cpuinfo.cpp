// CPU identification, cache sizes and the GEMM blocking derived from them.
#include "fastnn/cpuinfo.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "fastnn/gemm.hpp"

#if defined(FASTNN_X86) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define FASTNN_HAVE_CPUID 1
#endif

namespace fastnn {
namespace {

#ifdef FASTNN_HAVE_CPUID
struct Regs {
  unsigned a = 0, b = 0, c = 0, d = 0;
};
Regs cpuid(unsigned leaf, unsigned sub = 0) {
  Regs r;
  __cpuid_count(leaf, sub, r.a, r.b, r.c, r.d);
  return r;
}

// Deterministic cache parameters (Intel leaf 4 and AMD leaf 0x8000001D share the
// layout): EAX[4:0] type (1 data, 2 instruction, 3 unified), EAX[7:5] level,
// EBX = ways-1 [31:22] | partitions-1 [21:12] | line-1 [11:0], ECX = sets-1.
bool read_cache_leaf(unsigned leaf, CpuInfo& info) {
  bool any = false;
  for (unsigned sub = 0; sub < 16; ++sub) {
    const Regs r = cpuid(leaf, sub);
    const unsigned type = r.a & 0x1F;
    if (type == 0) break;
    const unsigned level = (r.a >> 5) & 0x7;
    const i64 ways = ((r.b >> 22) & 0x3FF) + 1, parts = ((r.b >> 12) & 0x3FF) + 1;
    const i64 line = (r.b & 0xFFF) + 1, sets = i64(r.c) + 1;
    const i64 size = ways * parts * line * sets;
    if (level == 1 && type == 1) info.l1d = size, any = true;
    else if (level == 2 && type != 2) info.l2 = size, any = true;
    else if (level == 3 && type != 2) info.l3 = size, any = true;
  }
  return any && info.l1d > 0 && info.l2 > 0;
}

void read_cpuid(CpuInfo& info) {
  const Regs v = cpuid(0);
  char vendor[13] = {};
  std::memcpy(vendor, &v.b, 4);
  std::memcpy(vendor + 4, &v.d, 4);
  std::memcpy(vendor + 8, &v.c, 4);
  info.vendor = vendor;
  const unsigned max_leaf = v.a;
  if (max_leaf >= 1) {
    const unsigned a = cpuid(1).a;
    const int base_family = (a >> 8) & 0xF, base_model = (a >> 4) & 0xF;
    info.family = base_family == 0xF ? base_family + int((a >> 20) & 0xFF) : base_family;
    info.model = (base_family == 0x6 || base_family == 0xF)
                     ? (int((a >> 16) & 0xF) << 4) + base_model
                     : base_model;
  }
  const unsigned max_ext = cpuid(0x80000000u).a;
  if (max_ext >= 0x80000004u) {
    char brand[49] = {};
    for (unsigned i = 0; i < 3; ++i) {
      const Regs r = cpuid(0x80000002u + i);
      std::memcpy(brand + 16 * i, &r.a, 4);
      std::memcpy(brand + 16 * i + 4, &r.b, 4);
      std::memcpy(brand + 16 * i + 8, &r.c, 4);
      std::memcpy(brand + 16 * i + 12, &r.d, 4);
    }
    std::string s(brand);
    const auto b = s.find_first_not_of(' ');
    const auto e = s.find_last_not_of(' ');
    info.brand = b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
  }
  bool ok = false;
  if (info.vendor == "GenuineIntel" && max_leaf >= 4) ok = read_cache_leaf(4, info);
  else if ((info.vendor == "AuthenticAMD" || info.vendor == "HygonGenuine") &&
           max_ext >= 0x8000001Du && (cpuid(0x80000001u).c & (1u << 22)))  // TOPOEXT
    ok = read_cache_leaf(0x8000001Du, info);
  if (ok) info.cache_source = "cpuid";
}
#endif

// "32K", "1024K", "2M", "49152" -> bytes; 0 when unreadable.
i64 parse_size(const std::string& s) {
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (end == s.c_str() || v <= 0) return 0;
  const char unit = static_cast<char>(std::toupper(static_cast<unsigned char>(*end)));
  return unit == 'K' ? v << 10 : unit == 'M' ? v << 20 : unit == 'G' ? v << 30 : v;
}

std::string read_line(const std::string& path) {
  std::ifstream f(path);
  std::string s;
  if (f) std::getline(f, s);
  return s;
}

bool read_sysfs(CpuInfo& info) {
  CpuInfo c;
  for (int i = 0; i < 16; ++i) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    const std::string level = read_line(dir + "level");
    if (level.empty()) break;
    const std::string type = read_line(dir + "type");
    const i64 size = parse_size(read_line(dir + "size"));
    if (level == "1" && type == "Data") c.l1d = size;
    else if (level == "2" && type != "Instruction") c.l2 = size;
    else if (level == "3" && type != "Instruction") c.l3 = size;
  }
  if (c.l1d <= 0 || c.l2 <= 0) return false;
  info.l1d = c.l1d, info.l2 = c.l2, info.l3 = c.l3;
  info.cache_source = "sysfs";
  return true;
}

// The cores whose blocking is in the table.
std::string core_name(const CpuInfo& info) {
#ifdef FASTNN_X86
  const bool avx512 = __builtin_cpu_supports("avx512f");
#else
  const bool avx512 = false;
#endif
  // Zen 4 is family 0x19 with AVX-512 (Zen 3 shares the family, without AVX-512).
  if (info.vendor == "AuthenticAMD" && info.family == 0x19 && avx512) return "zen4";
  // Sapphire Rapids (model 0x8F) and Emerald Rapids (0xCF): Golden/Raptor Cove
  // server cores, 48 KiB L1d, 2 MiB L2.
  if (info.vendor == "GenuineIntel" && info.family == 6 && (info.model == 0x8F || info.model == 0xCF))
    return "sapphire_rapids";
  return "";
}

CpuInfo read_cpu_info() {
  CpuInfo info;
#ifdef FASTNN_HAVE_CPUID
  read_cpuid(info);
#endif
  if (info.cache_source.empty() && !read_sysfs(info)) {
    info.l1d = i64(32) << 10, info.l2 = i64(1) << 20, info.l3 = i64(32) << 20;
    info.cache_source = "default";
  }
  info.core = core_name(info);
  return info;
}

i64 round_down(i64 v, i64 m) { return std::max<i64>(m, v / m * m); }

}  // namespace

const CpuInfo& cpu_info() {
  static const CpuInfo info = read_cpu_info();
  return info;
}

// The loop nest of sgemm (gemm.cpp): for each NC-wide block of B and each KC-deep
// slice, B (KC x NC) is packed once and shared by all threads; each task packs an
// MC x KC block of A and, for every MR-row micro-panel of it (MR x KC, held in L1),
// sweeps the NR-wide panels of B, which stream from L2. Hence:
//   KC: the A micro-panel, MR * KC * 4 bytes, takes 3/8 of L1d (the rest holds the B
//       lines streaming through and the C tile): KC = 3/8 L1d / (4 MR), a multiple
//       of 64 in [64, 1024]. Zen 4 (32 KiB, MR 12): 256. Sapphire Rapids (48 KiB): 384.
//   MC: 8 micro-panels (8 MR rows): enough rows that packing A is amortised over
//       the panel sweep, few enough that M = 1024 gives >= 2 tasks per thread; capped
//       so that the A block is <= L2 / 4. Zen 4 and Sapphire Rapids: 96.
//   NC: the packed B block, KC * NC * 4 bytes, takes half of L2 (it is re-read for
//       every A micro-panel, so it must stay in L2 where L3 is slow or shared): a
//       multiple of NR. Sapphire Rapids (2 MiB, KC 384): 672.
// Zen 4's table value NC = 1536 (B block 1.5 MiB > its 1 MiB L2) was measured faster
// there: its L3 is a low-latency victim cache of the L2s that feeds the sweep.
GemmBlocking derive_gemm_blocking(i64 l1d, i64 l2, int MR, int NR) {
  GemmBlocking g;
  g.kc = std::clamp<i64>(round_down(l1d * 3 / 8 / (4 * i64(MR)), 64), 64, 1024);
  g.mc = 8 * i64(MR);
  while (g.mc > MR && g.mc * g.kc * 4 > l2 / 4) g.mc -= MR;
  g.nc = std::clamp<i64>(round_down(l2 / 2 / (4 * g.kc), NR), NR, i64(1) << 14);
  g.source = "derived";
  return g;
}

bool parse_gemm_blocking(const char* text, i64* kc, i64* mc, i64* nc, std::string* err) {
  i64 v[3] = {0, 0, 0};
  const char* p = text;
  for (int i = 0; i < 3; ++i) {
    while (*p == ' ' || *p == '\t') ++p;
    if (!std::isdigit(static_cast<unsigned char>(*p))) {
      *err = "expected three positive integers 'kc,mc,nc', got '" + std::string(text) + "'";
      return false;
    }
    errno = 0;
    char* end = nullptr;
    const long long x = std::strtoll(p, &end, 10);
    if (errno == ERANGE || x > (1LL << 30)) {
      *err = "value out of range in '" + std::string(text) + "'";
      return false;
    }
    v[i] = x;
    p = end;
    while (*p == ' ' || *p == '\t') ++p;
    if (i < 2) {
      if (*p != ',') {
        *err = "expected three positive integers 'kc,mc,nc', got '" + std::string(text) + "'";
        return false;
      }
      ++p;
    }
  }
  if (*p != '\0') {
    *err = "expected three positive integers 'kc,mc,nc', got '" + std::string(text) + "'";
    return false;
  }
  if (v[0] < 8 || v[0] > 8192) {
    *err = "kc must be in [8, 8192], got " + std::to_string(v[0]);
    return false;
  }
  if (v[1] < 1 || v[1] > 8192) {
    *err = "mc must be in [1, 8192], got " + std::to_string(v[1]);
    return false;
  }
  if (v[2] < 1 || v[2] > 65536) {
    *err = "nc must be in [1, 65536], got " + std::to_string(v[2]);
    return false;
  }
  if (v[0] * v[2] * 4 > (i64(256) << 20) || v[0] * v[1] * 4 > (i64(64) << 20)) {
    *err = "kc*nc*4 must be <= 256 MiB and kc*mc*4 <= 64 MiB, got " + std::string(text);
    return false;
  }
  *kc = v[0], *mc = v[1], *nc = v[2];
  return true;
}

namespace {
GemmBlocking choose_blocking() {
  const CpuInfo& info = cpu_info();
  const MicroKernels& uk = micro_kernels();
  GemmBlocking g;
  if (info.core == "zen4") {
    // Measured on Zen 4 (EPYC, 32 KiB L1d, 1 MiB L2): the constants of every
    // earlier release, for every ISA, so results there stay bit for bit.
    g.kc = 256, g.mc = 96, g.nc = 1536;
    g.source = "table:zen4";
  } else if (info.core == "sapphire_rapids") {
    // Derived for 48 KiB L1d / 2 MiB L2 and the 12 x 32 AVX-512 tile (not measured
    // here): KC = 3/8 * 48 KiB / 48 B = 384, MC = 96, NC = 1 MiB / 1536 B -> 672.
    g.kc = 384, g.mc = 96, g.nc = 672;
    g.source = "table:sapphire_rapids";
  } else {
    g = derive_gemm_blocking(info.l1d, info.l2, uk.MR, uk.NR);
  }
  if (const char* env = std::getenv("FASTNN_GEMM_BLOCKING")) {
    if (*env != '\0') {
      i64 kc, mc, nc;
      std::string err;
      if (parse_gemm_blocking(env, &kc, &mc, &nc, &err)) {
        g.kc = kc, g.mc = mc, g.nc = nc;
        g.source = "env";
      } else {
        g.warning = "FASTNN_GEMM_BLOCKING ignored: " + err + "; using " + g.source + " " +
                    std::to_string(g.kc) + "," + std::to_string(g.mc) + "," + std::to_string(g.nc);
      }
    }
  }
  return g;
}
}  // namespace

const GemmBlocking& gemm_blocking() {
  static const GemmBlocking g = choose_blocking();
  return g;
}

}  // namespace fastnn
