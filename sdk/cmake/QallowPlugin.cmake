# qallow_add_plugin(<name> <sources>...)
#
# Builds <name>.so, a Qallow plugin: no "lib" prefix (the host lists plugins
# by descriptor name, the file name is for people), hidden symbols except the
# entry point, and the SDK on the include path.
function(qallow_add_plugin name)
  add_library(${name} MODULE ${ARGN})
  if(TARGET qallow_sdk)
    target_link_libraries(${name} PRIVATE qallow_sdk)
  else()
    target_link_libraries(${name} PRIVATE QallowSDK::sdk)
  endif()
  # Same rounding on every machine: no silent fused multiply-add.
  target_compile_options(${name} PRIVATE $<$<COMPILE_LANGUAGE:C,CXX>:-ffp-contract=off>)
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    CXX_VISIBILITY_PRESET hidden
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(DEFINED QALLOW_PLUGIN_OUTPUT_DIR)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${QALLOW_PLUGIN_OUTPUT_DIR})
  endif()
  if(DEFINED QALLOW_PLUGIN_INSTALL_DIR)
    install(TARGETS ${name} LIBRARY DESTINATION ${QALLOW_PLUGIN_INSTALL_DIR})
  endif()
endfunction()
