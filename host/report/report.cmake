# Included by host/CMakeLists.txt after qallow_room(report ...): the page's
# template embedded at build time (Chart.js: util/paths.hpp's chartjs_file()).
set(_report_embedded ${CMAKE_CURRENT_BINARY_DIR}/generated/report/template_text.hpp)
add_custom_command(OUTPUT ${_report_embedded}
  COMMAND ${CMAKE_COMMAND} -DSRC=${CMAKE_CURRENT_SOURCE_DIR}/report -DOUT=${_report_embedded}
          -P ${CMAKE_CURRENT_SOURCE_DIR}/report/embed.cmake
  DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/report/embed.cmake ${CMAKE_CURRENT_SOURCE_DIR}/report/template.html
          ${CMAKE_CURRENT_SOURCE_DIR}/report/template.css ${CMAKE_CURRENT_SOURCE_DIR}/report/template.js
  COMMENT "Embedding the report page's template" VERBATIM)
target_sources(qallow_report PRIVATE ${_report_embedded})
target_include_directories(qallow_report PRIVATE ${CMAKE_CURRENT_BINARY_DIR}/generated)
