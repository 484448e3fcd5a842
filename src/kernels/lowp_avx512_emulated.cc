// wisp/kernels/lowp_avx512_emulated.cc (tests only): lowp_avx512.cc's
// kernels over avx512_emulation.h, for the wisp_kernels_emu512 test library
// (CMakeLists.txt). Compiled for AVX2 like lowp_avx2.cc; an intrinsic the
// emulation lacks is a compile error, so a kernel change that uses a new one
// must add it there.
#include "kernels/avx512_emulation.h"
// Then the shipped source itself.
#include "kernels/lowp_avx512.cc"  // NOLINT(bugprone-suspicious-include)
