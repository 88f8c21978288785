# kvsieve_add_python_policies(<module> <source>...)
# Builds the Python extension module <module> from C++ sources that define it with
# KVSIEVE_PYTHON_POLICIES(<module>, registry) (kvsieve/python/extension.hpp): your own ladders,
# selectable by name in the kvsieve package once the module is imported. It links kvsieve::kvsieve
# and Python's Development.Module (found here when the caller has not; set Python_EXECUTABLE to
# the interpreter that has kvsieve installed). The module must be built against the kvsieve that
# Python imports: the headers the wheel ships (`python -m kvsieve --cmake-dir`), or the source
# tree or C++ install of the same version; importing it says so otherwise.
# Shipped three ways, each defining kvsieve::kvsieve first: the source tree (add_subdirectory),
# the C++ install (find_package(kvsieve)) and the wheel (find_package(kvsieve) with kvsieve_DIR
# from `python -m kvsieve --cmake-dir`).
set(_KVSIEVE_PYTHON_CMAKE_DIR ${CMAKE_CURRENT_LIST_DIR})

function(kvsieve_add_python_policies name)
  if(NOT ARGN)
    message(FATAL_ERROR "kvsieve_add_python_policies(${name}): no source files")
  endif()
  if(NOT TARGET kvsieve::kvsieve)
    message(FATAL_ERROR "kvsieve_add_python_policies: kvsieve::kvsieve is not defined; "
                        "find_package(kvsieve) or add_subdirectory(<kvsieve>) first")
  endif()
  if(NOT COMMAND Python_add_library)
    find_package(Python 3.9 REQUIRED COMPONENTS Interpreter Development.Module)
  endif()
  Python_add_library(${name} MODULE WITH_SOABI ${ARGN})
  target_link_libraries(${name} PRIVATE kvsieve::kvsieve)
  # The source tree keeps these headers in python/include; installs put them beside the others.
  if(EXISTS ${_KVSIEVE_PYTHON_CMAKE_DIR}/../include/kvsieve/python/extension.hpp)
    target_include_directories(${name} PRIVATE ${_KVSIEVE_PYTHON_CMAKE_DIR}/../include)
  endif()
  target_compile_features(${name} PRIVATE cxx_std_20)
  # Only PyInit_<module> is exported: two policy modules never share a weak symbol.
  set_target_properties(${name} PROPERTIES CXX_VISIBILITY_PRESET hidden
                                           VISIBILITY_INLINES_HIDDEN ON)
endfunction()
