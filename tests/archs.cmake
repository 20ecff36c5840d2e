# Tests of the "archs" area: the qwen2, qwen, falcon, baichuan and chatglm architectures
# (src/arch_*.c): loading, fused-tensor views and load errors (test_archs), logits of random
# models of each against the float64 references of tests/ref_archs.py (archs_vs_ref.py), and
# `colloq chat` with each family's built-in format (archs_chat.py).

add_executable(test_archs ${CMAKE_SOURCE_DIR}/tests/test_archs.c)
target_include_directories(test_archs PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_archs PRIVATE colloq_lib)
add_test(NAME archs_load COMMAND test_archs ${CMAKE_CURRENT_BINARY_DIR}/archs_load_tmp)

add_test(NAME archs_vs_ref COMMAND ${COLLOQ_PYTHON} ${CMAKE_SOURCE_DIR}/tests/archs_vs_ref.py
         --colloq $<TARGET_FILE:colloq> --workdir ${CMAKE_CURRENT_BINARY_DIR}/archs_vs_ref_tmp)

# `colloq chat` end to end on a random model of each family with its built-in chat format
# (with ../shared, also falcon and baichuan with their real vocabularies).
add_test(NAME archs_chat COMMAND ${COLLOQ_PYTHON} ${CMAKE_SOURCE_DIR}/tests/archs_chat.py
         --colloq $<TARGET_FILE:colloq> --workdir ${CMAKE_CURRENT_BINARY_DIR}/archs_chat_tmp
         --vocab-dir ${COLLOQ_SHARED_DIR}/testdata/vocab)
