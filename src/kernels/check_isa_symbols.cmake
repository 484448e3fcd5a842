# ctest lowp_isa_symbols: the objects compiled with -mavx2 / -mavx512* may
# define no externally visible symbol but their lowp_impl entry points. An
# inline function or template emitted there (std::max, a vector method...)
# would be a weak symbol the linker might keep for every caller, baseline
# code included, which would then fault on CPUs without those instructions.
#   cmake -DNM=<nm> -DOBJECTS=<a|b|c> -P check_isa_symbols.cmake
string(REPLACE "|" ";" objects "${OBJECTS}")
set(checked 0)
foreach(obj IN LISTS objects)
  if(NOT obj MATCHES "lowp_avx")
    continue()
  endif()
  execute_process(COMMAND ${NM} -g --defined-only -C ${obj} OUTPUT_VARIABLE out RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "nm failed on ${obj}")
  endif()
  string(REPLACE "\n" ";" lines "${out}")
  foreach(line IN LISTS lines)
    if(line STREQUAL "")
      continue()
    endif()
    # Data, not code: the pointer to the C++ personality routine that GCC
    # emits (weak) where an object has exception landing pads, as the
    # sanitizer build's instrumented objects do. No instruction set in it.
    if(line MATCHES " V DW\\.ref\\.__gxx_personality_v0$")
      continue()
    endif()
    if(NOT line MATCHES "wisp::kernels::lowp_impl::avx(2|512)::")
      message(FATAL_ERROR "${obj} exports a symbol outside lowp_impl: ${line}")
    endif()
    math(EXPR checked "${checked} + 1")
  endforeach()
endforeach()
if(checked LESS 10)
  message(FATAL_ERROR "found only ${checked} lowp_impl entry points in the AVX objects")
endif()
message(STATUS "${checked} exported symbols, all lowp_impl entry points")
