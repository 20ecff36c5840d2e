# Tests of attention (tests/test_attention.c): the kernels' exponential, and every
# attention kernel variant the host supports against a float64 reference and the
# portable kernel, bit-identical across chunking, batch composition and threads.
# `test_attention bench [REPS]` (not a test) times the variants.
add_executable(test_attention ${CMAKE_SOURCE_DIR}/tests/test_attention.c)
target_include_directories(test_attention PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_attention PRIVATE colloq_lib)

foreach(what exp shapes)
  add_test(NAME attention_${what} COMMAND test_attention ${what})
endforeach()
