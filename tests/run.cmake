# Tests of the "run" area: sampler, random-weight model writer, `colloq run`, and the
# float64 reference forward pass compared with the engine on every model variant.

add_executable(test_sampler ${CMAKE_SOURCE_DIR}/tests/test_sampler.c)
target_include_directories(test_sampler PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_sampler PRIVATE colloq_lib)
add_test(NAME run_sampler COMMAND test_sampler)

add_executable(test_mkmodel ${CMAKE_SOURCE_DIR}/tests/test_mkmodel.c)
target_include_directories(test_mkmodel PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_mkmodel PRIVATE colloq_lib)
add_test(NAME run_mkmodel COMMAND test_mkmodel ${CMAKE_CURRENT_BINARY_DIR}/run_mkmodel_tmp
         ${COLLOQ_SHARED_DIR}/testdata/vocab/ggml-vocab-llama-spm.gguf)

# `colloq run` / `colloq mkmodel` from the command line (exit codes, JSON, UTF-8 streaming, seeds).
add_test(NAME run_cli COMMAND ${COLLOQ_PYTHON} ${CMAKE_SOURCE_DIR}/tests/run_cli.py
         --colloq $<TARGET_FILE:colloq> --workdir ${CMAKE_CURRENT_BINARY_DIR}/run_cli_tmp)

# Every model variant against the float64 reference, all positions' logits.
add_test(NAME run_vs_ref COMMAND ${COLLOQ_PYTHON} ${CMAKE_SOURCE_DIR}/tests/run_vs_ref.py
         --colloq $<TARGET_FILE:colloq> --workdir ${CMAKE_CURRENT_BINARY_DIR}/run_vs_ref_tmp)

# Every quantised type and K-quant mix (via `colloq quantize`) against the float64 reference.
add_test(NAME run_quant_vs_ref
         COMMAND ${COLLOQ_PYTHON} ${CMAKE_SOURCE_DIR}/tests/quant_vs_ref.py
                 --colloq $<TARGET_FILE:colloq> --workdir ${CMAKE_CURRENT_BINARY_DIR}/quant_vs_ref_tmp)
