# Tests of the "safety" area: redaction rules and streams (test_redact), the audit log
# (test_audit: records, rotation, retention, recovery, concurrent writers), `colloq audit`
# (audit_cli.py), a kill -9 loop against a process writing audit records (audit_kill.py),
# and both again through `colloq serve` (tests/server/safety.test.mjs, audit_kill.test.mjs).

add_executable(test_redact ${CMAKE_SOURCE_DIR}/tests/test_redact.c)
target_include_directories(test_redact PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_redact PRIVATE colloq_lib)
add_test(NAME safety_redact COMMAND test_redact)

add_executable(test_audit ${CMAKE_SOURCE_DIR}/tests/test_audit.c)
target_include_directories(test_audit PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_audit PRIVATE colloq_lib)
add_test(NAME safety_audit COMMAND test_audit ${CMAKE_CURRENT_BINARY_DIR}/safety_audit_tmp)

add_test(NAME safety_audit_cli COMMAND ${COLLOQ_PYTHON} ${CMAKE_SOURCE_DIR}/tests/audit_cli.py
         $<TARGET_FILE:colloq> ${CMAKE_CURRENT_BINARY_DIR}/safety_audit_cli_tmp)
add_test(NAME safety_audit_kill COMMAND ${COLLOQ_PYTHON} ${CMAKE_SOURCE_DIR}/tests/audit_kill.py
         $<TARGET_FILE:test_audit> $<TARGET_FILE:colloq> ${CMAKE_CURRENT_BINARY_DIR}/safety_audit_kill_tmp 60)

# Through `colloq serve` and the npm `openai` client (tests/server; skipped with 77 when
# its node_modules are missing): filtered answers streamed and not, and the audit log
# under a kill -9 loop with concurrent clients.
find_program(COLLOQ_NODE node)
if(COLLOQ_NODE)
  foreach(t safety audit_kill)
    add_test(NAME safety_server_${t}
             COMMAND ${COLLOQ_NODE} ${CMAKE_SOURCE_DIR}/tests/server/run.mjs ${t}.test.mjs
                     $<TARGET_FILE:colloq> ${CMAKE_CURRENT_BINARY_DIR}/safety_server_${t}_tmp)
    set_tests_properties(safety_server_${t} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600 RUN_SERIAL TRUE
                         ENVIRONMENT "COLLOQ_REDACT_TOOL=$<TARGET_FILE:test_redact>")
  endforeach()
endif()
