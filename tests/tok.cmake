# Tests of the "tok" area: vocabulary loading, the SentencePiece tokenizer, golden ids,
# a cross-check against the sentencepiece library, and `colloq tokenize`.

add_executable(tok_golden ${CMAKE_SOURCE_DIR}/tests/tok_golden.c)
target_include_directories(tok_golden PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(tok_golden PRIVATE colloq_lib)

# Golden ids for a vocabulary: tok_add_golden(<name> <vocab file stem>).  Other areas
# may call this for their vocabularies (the function is defined once, here).
function(tok_add_golden name stem)
  set(d ${COLLOQ_SHARED_DIR}/testdata/vocab)
  add_test(NAME ${name} COMMAND tok_golden ${d}/${stem}.gguf ${d}/${stem}.gguf.inp ${d}/${stem}.gguf.out)
  set_tests_properties(${name} PROPERTIES SKIP_RETURN_CODE 77)
endfunction()

tok_add_golden(tok_golden_llama_spm ggml-vocab-llama-spm)
tok_add_golden(tok_golden_phi3 ggml-vocab-phi-3)

add_executable(tok_batch ${CMAKE_SOURCE_DIR}/tests/tok_batch.c)
target_include_directories(tok_batch PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(tok_batch PRIVATE colloq_lib)

# ids, round trip and decode against the sentencepiece library on seeded random text
add_test(NAME tok_sp_crosscheck
         COMMAND ${COLLOQ_PYTHON} ${CMAKE_SOURCE_DIR}/tests/sp_crosscheck.py ${COLLOQ_SHARED_DIR}
                 $<TARGET_FILE:tok_batch> $<TARGET_FILE:colloq>)
set_tests_properties(tok_sp_crosscheck PROPERTIES SKIP_RETURN_CODE 77)

add_executable(test_tokenizer ${CMAKE_SOURCE_DIR}/tests/test_tokenizer.c)
target_include_directories(test_tokenizer PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_tokenizer PRIVATE colloq_lib)
add_test(NAME tok_unit COMMAND test_tokenizer ${CMAKE_CURRENT_BINARY_DIR}/tok_unit_tmp ${COLLOQ_SHARED_DIR})
