// wisp/kernels/cpu.h
//
// Runtime CPU dispatch for the low-precision kernels (lowp.h). The project
// builds for baseline x86-64; the AVX2 and AVX-512 kernels live in files
// compiled with their own -m flags and are only called after cpuid (and the
// OS, through XGETBV) says their instructions and registers are usable.
#pragma once

#include <cstdint>
#include <string>

namespace wisp::kernels {

// Instruction-set levels of the low-precision kernels, lowest first.
//   kGeneric: portable C++ (any x86-64 or other CPU).
//   kAvx2:    AVX2 + FMA + F16C (x86-64-v3): 256-bit integer pair dot products
//             (vpmaddwd), f16 conversion in hardware.
//   kAvx512:  AVX-512 F/BW/VL (x86-64-v4); uses VNNI's vpdpwssd when present.
//   kAmx:     detected (AMX-TILE + AMX-INT8 + AMX-BF16); lowp.h serves it
//             with the AVX-512 kernels. The tiles are used through oneDNN:
//             the int8 encoder's 8-bit path (onednn_s8.h), chosen on any
//             CPU with AVX-512 VNNI, where oneDNN picks AMX by itself.
enum class Isa { kGeneric = 0, kAvx2 = 1, kAvx512 = 2, kAmx = 3 };

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512vnni = false;
  bool avx512bf16 = false;
  bool amx_tile = false, amx_int8 = false, amx_bf16 = false;
  bool os_avx = false, os_avx512 = false, os_amx = false;  // XCR0 enables the registers
  int64_t l2_bytes = 0;                                    // a core's L2 cache (sysconf; 0: unknown)
};

// What this CPU and OS support (cpuid + xgetbv; all false off x86-64).
CpuFeatures detect_cpu();

// The highest level `f` supports.
Isa best_isa(const CpuFeatures& f);

// True if kernels of level `isa` can run on a CPU with features `f`.
bool isa_supported(Isa isa, const CpuFeatures& f);

// "generic", "avx2", "avx512", "amx".
const char* isa_name(Isa isa);

// Parses isa_name()'s spellings; throws wisp::Error for anything else.
Isa parse_isa(const std::string& name);

// The level the library uses by default: best_isa(detect_cpu()), lowered to
// the environment variable WISP_ISA when it is set (tests and benchmarks use
// it to force the AVX2 or generic path on bigger CPUs). Throws wisp::Error if
// WISP_ISA names an unknown level or one this CPU cannot run.
Isa default_isa();

// The level the kernels actually run for a request: kAmx runs the AVX-512
// kernels.
Isa kernel_isa(Isa requested);

}  // namespace wisp::kernels
