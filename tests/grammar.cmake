# Tests of the "grammar" area: constrained JSON output (grammar*.c) and tool calling
# (toolcall.c).

add_executable(test_grammar ${CMAKE_SOURCE_DIR}/tests/test_grammar.c)
target_include_directories(test_grammar PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_grammar PRIVATE colloq_lib)

# automaton vs jansson, schema subset, compile errors, masks on a synthetic vocabulary
add_test(NAME grammar_unit COMMAND test_grammar unit)
# sampling under the mask on a real 32k vocabulary (skipped without the shared test data)
add_test(NAME grammar_vocab COMMAND test_grammar vocab ${COLLOQ_SHARED_DIR}/testdata/vocab/ggml-vocab-llama-spm.gguf)
set_tests_properties(grammar_vocab PROPERTIES SKIP_RETURN_CODE 77)
# the same on a byte-level BPE vocabulary (50k tokens)
add_test(NAME grammar_vocab_gpt2 COMMAND test_grammar vocab ${COLLOQ_SHARED_DIR}/testdata/vocab/ggml-vocab-gpt-2.gguf)
set_tests_properties(grammar_vocab_gpt2 PROPERTIES SKIP_RETURN_CODE 77)

add_executable(test_toolcall ${CMAKE_SOURCE_DIR}/tests/test_toolcall.c)
target_include_directories(test_toolcall PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_toolcall PRIVATE colloq_lib)
# request parsing, call grammar, output parser, constraint on a synthetic vocabulary
add_test(NAME grammar_toolcall_unit COMMAND test_toolcall unit)
# the constraint on a real vocabulary, prompts with real chat templates
add_test(NAME grammar_toolcall_shared COMMAND test_toolcall shared ${COLLOQ_SHARED_DIR})
set_tests_properties(grammar_toolcall_shared PROPERTIES SKIP_RETURN_CODE 77)

# `colloq serve` through the npm `openai` client (see tests/server.cmake): JSON mode and
# json_schema answers on a random-weight model, and tool calls, streamed and not.
find_program(COLLOQ_NODE node)
if(COLLOQ_NODE)
  foreach(t grammar tools)
    add_test(NAME grammar_server_${t}
             COMMAND ${COLLOQ_NODE} ${CMAKE_SOURCE_DIR}/tests/server/run.mjs ${t}.test.mjs
                     $<TARGET_FILE:colloq> ${CMAKE_CURRENT_BINARY_DIR}/grammar_server_${t}_tmp)
    set_tests_properties(grammar_server_${t} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300 RUN_SERIAL TRUE)
  endforeach()
endif()
