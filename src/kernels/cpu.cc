// wisp/kernels/cpu.cc: cpuid / xgetbv feature detection.
#include "kernels/cpu.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "common/error.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace wisp::kernels {
namespace {

#if defined(__x86_64__)
uint64_t xgetbv0() {
  uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}
#endif

}  // namespace

CpuFeatures detect_cpu() {
  CpuFeatures f;
#if defined(__x86_64__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return f;
  const unsigned max_leaf = a;
  __get_cpuid(1, &a, &b, &c, &d);
  const bool osxsave = (c >> 27) & 1;
  f.fma = (c >> 12) & 1;
  f.f16c = (c >> 29) & 1;
  const bool avx = (c >> 28) & 1;
  if (osxsave && avx) {
    const uint64_t xcr0 = xgetbv0();
    f.os_avx = (xcr0 & 0x6) == 0x6;                   // XMM and YMM state
    f.os_avx512 = f.os_avx && (xcr0 & 0xe0) == 0xe0;  // opmask, ZMM_Hi256, Hi16_ZMM
    f.os_amx = (xcr0 & 0x60000) == 0x60000;           // XTILECFG, XTILEDATA
  }
  if (max_leaf >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    f.avx2 = (b >> 5) & 1;
    f.avx512f = (b >> 16) & 1;
    f.avx512bw = (b >> 30) & 1;
    f.avx512vl = (b >> 31) & 1;
    f.avx512vnni = (c >> 11) & 1;
    f.amx_bf16 = (d >> 22) & 1;
    f.amx_tile = (d >> 24) & 1;
    f.amx_int8 = (d >> 25) & 1;
    unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
    __cpuid_count(7, 1, a1, b1, c1, d1);
    f.avx512bf16 = (a1 >> 5) & 1;
  }
  if (!f.os_avx) f.avx2 = f.fma = f.f16c = false;
  if (!f.os_avx512) f.avx512f = f.avx512bw = f.avx512vl = f.avx512vnni = f.avx512bf16 = false;
  if (!f.os_amx) f.amx_tile = f.amx_int8 = f.amx_bf16 = false;
#endif
#if defined(_SC_LEVEL2_CACHE_SIZE)
  f.l2_bytes = std::max<long>(0, sysconf(_SC_LEVEL2_CACHE_SIZE));  // glibc: from cpuid leaf 4
#endif
#ifdef WISP_EMULATED_AVX512
  // The wisp_kernels_emu512 test library only (lowp_avx512_emulated.cc):
  // its AVX-512 kernels run on any AVX2 CPU, with VNNI when the test's
  // environment asks for that variant.
  f.avx512f = f.avx512bw = f.avx512vl = f.avx2 && f.fma && f.f16c;
  f.avx512vnni = f.avx512f && std::getenv("WISP_EMULATED_VNNI") != nullptr;
  f.amx_tile = f.amx_int8 = f.amx_bf16 = false;
#endif
  return f;
}

bool isa_supported(Isa isa, const CpuFeatures& f) {
  const bool avx2 = f.avx2 && f.fma && f.f16c;
  const bool avx512 = avx2 && f.avx512f && f.avx512bw && f.avx512vl;
  switch (isa) {
    case Isa::kGeneric: return true;
    case Isa::kAvx2: return avx2;
    case Isa::kAvx512: return avx512;
    case Isa::kAmx: return avx512 && f.amx_tile && f.amx_int8 && f.amx_bf16;
  }
  return false;
}

Isa best_isa(const CpuFeatures& f) {
  for (Isa i : {Isa::kAmx, Isa::kAvx512, Isa::kAvx2}) {
    if (isa_supported(i, f)) return i;
  }
  return Isa::kGeneric;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kGeneric: return "generic";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
    case Isa::kAmx: return "amx";
  }
  return "?";
}

Isa parse_isa(const std::string& name) {
  for (Isa i : {Isa::kGeneric, Isa::kAvx2, Isa::kAvx512, Isa::kAmx}) {
    if (name == isa_name(i)) return i;
  }
  throw Error("unknown instruction set '" + name + "' (one of: generic, avx2, avx512, amx)");
}

Isa default_isa() {
  const CpuFeatures f = detect_cpu();
  const char* env = std::getenv("WISP_ISA");
  if (env == nullptr || *env == '\0') return best_isa(f);
  const Isa want = parse_isa(env);
  if (!isa_supported(want, f)) {
    throw Error(std::string("WISP_ISA=") + env + " but this CPU cannot run " + isa_name(want) +
                " code (best: " + isa_name(best_isa(f)) + ")");
  }
  return want;
}

Isa kernel_isa(Isa requested) { return requested == Isa::kAmx ? Isa::kAvx512 : requested; }

}  // namespace wisp::kernels
