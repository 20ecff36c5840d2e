# Tests of the "jinja" area: the chat-template engine (src/jinja_*.c).
#   jinja_unit       semantics, error messages with line numbers, limits, robustness
#   jinja_reference  every template in ../shared/testdata/templates against Python's
#                    jinja2 configured as transformers configures it, many conversations
add_executable(test_jinja ${CMAKE_SOURCE_DIR}/tests/test_jinja.c)
target_include_directories(test_jinja PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_jinja PRIVATE colloq_lib)

add_executable(test_jinja_render ${CMAKE_SOURCE_DIR}/tests/test_jinja_render.c)
target_include_directories(test_jinja_render PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_jinja_render PRIVATE colloq_lib)

add_test(NAME jinja_unit COMMAND test_jinja unit)
add_test(NAME jinja_fuzz COMMAND test_jinja fuzz ${COLLOQ_SHARED_DIR}/testdata/templates)
set_tests_properties(jinja_fuzz PROPERTIES SKIP_RETURN_CODE 77)
add_test(NAME jinja_reference
         COMMAND ${COLLOQ_PYTHON} ${CMAKE_SOURCE_DIR}/tests/jinja_check.py
                 $<TARGET_FILE:test_jinja_render> ${COLLOQ_SHARED_DIR}/testdata/templates)
set_tests_properties(jinja_reference PROPERTIES SKIP_RETURN_CODE 77)
