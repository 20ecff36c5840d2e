# Tests of the "model" area: loading (shape/type/hyper-parameter checks with precise
# messages), the forward pass against a float64 reference written in C, batch vs
# one-token evaluation, truncate, the context limit, allocation failures.

add_executable(test_model ${CMAKE_SOURCE_DIR}/tests/test_model.c)
target_include_directories(test_model PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_model PRIVATE colloq_lib)
add_test(NAME model_load_forward COMMAND test_model ${CMAKE_CURRENT_BINARY_DIR}/model_test_tmp)

# `colloq info` end to end (the vocabulary-only case runs when ../shared is present).
add_test(NAME model_info COMMAND ${COLLOQ_PYTHON} ${CMAKE_SOURCE_DIR}/tests/model_info.py
         $<TARGET_FILE:colloq> ${CMAKE_CURRENT_BINARY_DIR}/model_info_tmp ${COLLOQ_SHARED_DIR}/testdata/vocab)
