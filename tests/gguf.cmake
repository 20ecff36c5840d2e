# GGUF reader/writer tests (src/gguf.c, src/gguf_write.c).
add_executable(test_gguf ${CMAKE_SOURCE_DIR}/tests/test_gguf.c)
target_include_directories(test_gguf PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_gguf PRIVATE colloq_lib)

add_executable(test_gguf_bad ${CMAKE_SOURCE_DIR}/tests/test_gguf_bad.c)
target_include_directories(test_gguf_bad PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_gguf_bad PRIVATE colloq_lib)

add_test(NAME gguf_roundtrip COMMAND test_gguf roundtrip)
add_test(NAME gguf_malformed COMMAND test_gguf_bad)
add_test(NAME gguf_vocab COMMAND test_gguf vocab ${COLLOQ_SHARED_DIR}/testdata/vocab)
set_tests_properties(gguf_vocab PROPERTIES SKIP_RETURN_CODE 77)
