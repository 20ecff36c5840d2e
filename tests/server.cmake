# Tests of the "server" area: the batched forward pass and the scheduler (C), and
# `colloq serve` driven over loopback HTTP by node tests using the npm `openai` client.

add_executable(test_engine ${CMAKE_SOURCE_DIR}/tests/test_engine.c)
target_include_directories(test_engine PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_engine PRIVATE colloq_lib)
add_test(NAME server_engine COMMAND test_engine ${CMAKE_CURRENT_BINARY_DIR}/server_engine_tmp)

# `colloq serve` end to end (node's test runner + the npm `openai` client from
# tests/server/node_modules; `npm ci` there installs it).  Each test starts its own
# server on a free loopback port with a tiny random-weight model and stops it with SIGTERM.
find_program(COLLOQ_NODE node)
if(COLLOQ_NODE)
  foreach(t api bad_input auth)
    add_test(NAME server_${t}
             COMMAND ${COLLOQ_NODE} ${CMAKE_SOURCE_DIR}/tests/server/run.mjs ${t}.test.mjs
                     $<TARGET_FILE:colloq> ${CMAKE_CURRENT_BINARY_DIR}/server_${t}_tmp)
    set_tests_properties(server_${t} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300 RUN_SERIAL TRUE)
  endforeach()
else()
  message(STATUS "node not found: the server_* tests of colloq serve are not registered")
endif()
