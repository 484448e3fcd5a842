# wisp_headers(TARGET MODULE): TARGET exposes src/MODULE's headers, as
# "MODULE/name.h", and no others. Each module gets its own include folder in
# the build tree (build/include/MODULE/MODULE -> src/MODULE), so a target sees
# a module's headers only if it links that module: an include across layers
# that the CMake files do not list fails to compile (tests/layering).
function(wisp_headers target module)
  set(dir ${CMAKE_BINARY_DIR}/include/${module})
  if(NOT EXISTS ${dir}/${module})
    file(MAKE_DIRECTORY ${dir})
    file(CREATE_LINK ${CMAKE_SOURCE_DIR}/src/${module} ${dir}/${module} SYMBOLIC)
  endif()
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "INTERFACE_LIBRARY")
    target_include_directories(${target} INTERFACE ${dir})
  elseif(type STREQUAL "EXECUTABLE")
    target_include_directories(${target} PRIVATE ${dir})
  else()
    target_include_directories(${target} PUBLIC ${dir})
  endif()
endfunction()

# wisp_test(NAME SOURCES... DEPS ...): one GoogleTest executable registered with CTest.
# Tests run from the build directory and find their data through WISP_TESTDATA_DIR.
function(wisp_test name)
  if(NOT WISP_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/support)
  target_compile_definitions(${name} PRIVATE
    WISP_TESTDATA_DIR="${WISP_TESTDATA_DIR}"
    WISP_ASSETS_DIR="${WISP_ASSETS_DIR}"
    WISP_BINARY_DIR="${CMAKE_BINARY_DIR}")
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 600
    ENVIRONMENT GOMP_SPINCOUNT=30000)  # as the wisp binary runs (src/cli/main.cc)
endfunction()
