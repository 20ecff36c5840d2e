# Tests of the "bpe" area: byte-level BPE (src/tok_bpe.c) and its pre-tokenizers
# (src/tok_bpe_pre.c).  Golden ids run through tok_golden (defined in tok.cmake).

add_executable(test_bpe_pre ${CMAKE_SOURCE_DIR}/tests/test_bpe_pre.c)
target_include_directories(test_bpe_pre PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_bpe_pre PRIVATE colloq_lib)

add_executable(test_bpe ${CMAKE_SOURCE_DIR}/tests/test_bpe.c)
target_include_directories(test_bpe PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_bpe PRIVATE colloq_lib)

set(BPE_VOCAB_DIR ${COLLOQ_SHARED_DIR}/testdata/vocab)

# every vocabulary with golden files whose tokenizer.ggml.model is "gpt2"
foreach(stem deepseek-coder deepseek-llm falcon gpt-2 mpt refact starcoder)
  add_test(NAME bpe_golden_${stem}
           COMMAND tok_golden ${BPE_VOCAB_DIR}/ggml-vocab-${stem}.gguf
                   ${BPE_VOCAB_DIR}/ggml-vocab-${stem}.gguf.inp ${BPE_VOCAB_DIR}/ggml-vocab-${stem}.gguf.out)
  set_tests_properties(bpe_golden_${stem} PROPERTIES SKIP_RETURN_CODE 77)
endforeach()

add_test(NAME bpe_pre COMMAND test_bpe_pre)
add_test(NAME bpe_synth COMMAND test_bpe synth ${CMAKE_CURRENT_BINARY_DIR}/bpe_synth_tmp)
# round trip, naive-BPE cross-check and speed on the real vocabularies (gpt-neox included)
add_test(NAME bpe_vocabs COMMAND test_bpe vocab ${BPE_VOCAB_DIR})
# baichuan has no golden files: it must load and round-trip text
add_test(NAME bpe_baichuan COMMAND test_bpe spm ${BPE_VOCAB_DIR})
set_tests_properties(bpe_vocabs bpe_baichuan PROPERTIES SKIP_RETURN_CODE 77)

# qwen2 has golden files but no vocabulary: see tests/test_bpe_qwen2.py
add_test(NAME bpe_qwen2_regex
         COMMAND ${COLLOQ_PYTHON} ${CMAKE_SOURCE_DIR}/tests/test_bpe_qwen2.py regex $<TARGET_FILE:test_bpe_pre>)
add_test(NAME bpe_qwen2_golden
         COMMAND ${COLLOQ_PYTHON} ${CMAKE_SOURCE_DIR}/tests/test_bpe_qwen2.py golden $<TARGET_FILE:test_bpe_pre>
                 ${BPE_VOCAB_DIR})
set_tests_properties(bpe_qwen2_golden PROPERTIES SKIP_RETURN_CODE 77)
