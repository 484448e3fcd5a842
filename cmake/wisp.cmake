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
