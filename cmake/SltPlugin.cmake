# slt_add_plugin(<target> [OUTPUT_DIR dir] [NO_INSTALL] SOURCES src...)
#
# Builds an slt plugin: a MODULE library with hidden visibility (only the
# SLT_PLUGIN entry point is exported) linked against slt::core.
function(slt_add_plugin target)
  cmake_parse_arguments(ARG "NO_INSTALL" "OUTPUT_DIR" "SOURCES" ${ARGN})
  add_library(${target} MODULE ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE slt::core)
  target_compile_options(${target} PRIVATE -Wall -Wextra)  # as slt's own code
  set_target_properties(${target} PROPERTIES
    PREFIX "lib"
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(ARG_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${ARG_OUTPUT_DIR}")
  elseif(DEFINED SLT_PLUGIN_SUBDIR AND TARGET slt_core)
    # In the slt source tree: the build's default plugin folder.
    set_target_properties(${target} PROPERTIES
      LIBRARY_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}/${SLT_PLUGIN_SUBDIR}")
  endif()
  if(NOT ARG_NO_INSTALL AND DEFINED SLT_PLUGIN_SUBDIR AND TARGET slt_core)
    install(TARGETS ${target} LIBRARY DESTINATION "${SLT_PLUGIN_SUBDIR}")
  endif()
endfunction()

# slt_use_torch_pch(<target>): precompile the LibTorch C++ API header for a
# target with several translation units (each would otherwise parse ~20 s of
# headers on a 2-core machine).
function(slt_use_torch_pch target)
  if(SLT_USE_PCH OR NOT DEFINED SLT_USE_PCH)
    target_precompile_headers(${target} PRIVATE <torch/torch.h>)
  endif()
endfunction()
