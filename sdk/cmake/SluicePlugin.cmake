# sluice_add_plugin(NAME SOURCES src... [LIBRARIES lib...] [NO_INSTALL])
#
# Builds a Sluice plugin: a MODULE library `NAME.so` that exports only the ABI entry point
# (hidden visibility, and the version script sluice_plugin.map for the std and Boost
# templates that visibility alone leaves exported), linked against the SDK. In the Sluice tree it lands in the build's
# plugin folder; out of tree, set SLUICE_PLUGIN_OUTPUT_DIR or point SLUICE_PLUGIN_PATH at
# the build folder. `cmake --install` puts it in <prefix>/lib/sluice/plugins.
function(sluice_add_plugin name)
  set(version_script ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/sluice_plugin.map)
  cmake_parse_arguments(ARG "NO_INSTALL" "" "SOURCES;LIBRARIES" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "sluice_add_plugin(${name}): no SOURCES given")
  endif()
  add_library(${name} MODULE ${ARG_SOURCES})
  if(TARGET SluiceSDK::sdk)
    target_link_libraries(${name} PRIVATE SluiceSDK::sdk)
  else()
    target_link_libraries(${name} PRIVATE sluice_sdk)
  endif()
  if(ARG_LIBRARIES)
    target_link_libraries(${name} PRIVATE ${ARG_LIBRARIES})
  endif()
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    CXX_VISIBILITY_PRESET hidden
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    LINK_DEPENDS ${version_script}
    CXX_STANDARD 17
    CXX_STANDARD_REQUIRED ON)
  if(SLUICE_PLUGIN_OUTPUT_DIR)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${SLUICE_PLUGIN_OUTPUT_DIR})
  endif()
  # Refuse unresolved symbols at link time rather than at load time in a worker.
  target_link_options(${name} PRIVATE -Wl,--no-undefined
                      -Wl,--version-script=${version_script})
  if(NOT ARG_NO_INSTALL)
    install(TARGETS ${name} LIBRARY DESTINATION lib/sluice/plugins)
  endif()
endfunction()
