# Tests of the "simd" area (tests/test_kernels.c): every SIMD kernel variant the host
# supports against the scalar reference, the matmul's batch/thread/packing invariance,
# `colloq quantize` round trips to every type, and the quantize/bench command lines.
add_executable(test_kernels ${CMAKE_SOURCE_DIR}/tests/test_kernels.c)
target_include_directories(test_kernels PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_kernels PRIVATE colloq_lib)

foreach(what act panels vecdot tiles)
  add_test(NAME kernels_${what} COMMAND test_kernels ${what})
endforeach()
# The matmul with each kernel set (COLLOQ_KERNELS picks it; a set the host lacks falls
# back to the best it has, so these never fail for want of a CPU feature).
foreach(isa ref avx2 avx512)
  foreach(what batch pack multi)
    add_test(NAME kernels_${what}_${isa} COMMAND test_kernels ${what})
    set_tests_properties(kernels_${what}_${isa} PROPERTIES ENVIRONMENT "COLLOQ_KERNELS=${isa}")
  endforeach()
endforeach()

file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/kernels_quantize_tmp)
add_test(NAME kernels_quantize COMMAND test_kernels quantize ${CMAKE_CURRENT_BINARY_DIR}/kernels_quantize_tmp)
add_test(NAME kernels_bench_cli COMMAND ${COLLOQ_PYTHON} ${CMAKE_SOURCE_DIR}/tests/bench_cli.py
         $<TARGET_FILE:colloq> ${CMAKE_CURRENT_BINARY_DIR}/kernels_bench_cli_tmp)
