# Tests of the "quant" area: tensor types and reference kernels (src/quant*.c),
# the thread pool and matmul.  quant_ref_py decodes C-written blocks with an
# independent numpy implementation (tests/quant_ref.py).
add_executable(test_quant ${CMAKE_SOURCE_DIR}/tests/test_quant.c)
target_include_directories(test_quant PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_quant PRIVATE colloq_lib)

foreach(what types f16 quantizer vecdot matmul pool)
  add_test(NAME quant_${what} COMMAND test_quant ${what})
endforeach()
add_test(NAME quant_ref_py
         COMMAND ${COLLOQ_PYTHON} ${CMAKE_SOURCE_DIR}/tests/quant_ref.py $<TARGET_FILE:test_quant>)
