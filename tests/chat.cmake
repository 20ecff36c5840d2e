# Tests of the "chat" area: chat formats (built-ins, identity rules, the model file's
# template), streaming text, conversations with KV reuse and the context-full
# policies, `colloq template` and `colloq chat` (piped and driven through tmux).

foreach(t test_chat test_textstream test_conversation)
  add_executable(${t} ${CMAKE_SOURCE_DIR}/tests/${t}.c)
  target_include_directories(${t} PRIVATE ${CMAKE_SOURCE_DIR}/src)
  target_link_libraries(${t} PRIVATE colloq_lib)
endforeach()

add_test(NAME chat_formats COMMAND test_chat ${CMAKE_CURRENT_BINARY_DIR}/chat_formats_tmp ${COLLOQ_SHARED_DIR})
add_test(NAME chat_textstream COMMAND test_textstream ${CMAKE_CURRENT_BINARY_DIR}/chat_textstream_tmp ${COLLOQ_SHARED_DIR})
add_test(NAME chat_conversation COMMAND test_conversation ${CMAKE_CURRENT_BINARY_DIR}/chat_conversation_tmp
         ${COLLOQ_SHARED_DIR})
set_tests_properties(chat_formats chat_textstream chat_conversation PROPERTIES SKIP_RETURN_CODE 77)

# `colloq template` against Python's jinja2, `colloq chat` with stdin piped (commands, the
# context-full policies as the user is told, SIGINT), and `colloq chat` typed into through
# tmux (two turns with /stats, Ctrl-C, /save and /load).
add_test(NAME chat_cli COMMAND ${COLLOQ_PYTHON} ${CMAKE_SOURCE_DIR}/tests/chat_cli.py --colloq $<TARGET_FILE:colloq>
         --workdir ${CMAKE_CURRENT_BINARY_DIR}/chat_cli_tmp --shared ${COLLOQ_SHARED_DIR})
add_test(NAME chat_tmux COMMAND ${COLLOQ_PYTHON} ${CMAKE_SOURCE_DIR}/tests/chat_tmux.py --colloq $<TARGET_FILE:colloq>
         --workdir ${CMAKE_CURRENT_BINARY_DIR}/chat_tmux_tmp --shared ${COLLOQ_SHARED_DIR})
set_tests_properties(chat_cli chat_tmux PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
