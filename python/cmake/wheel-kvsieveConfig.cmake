# kvsieve's CMake package as the Python wheel ships it (kvsieve/cmake, found by
# `python -m kvsieve --cmake-dir`): the header-only library, exactly the headers the installed
# kvsieve._core was built from, and kvsieve_add_python_policies (kvsieve_python.cmake).
include(CMakeFindDependencyMacro)
find_dependency(fmt)
find_dependency(Threads)
find_dependency(hwy)
find_dependency(nlohmann_json 3)
if(NOT TARGET kvsieve::kvsieve)
  add_library(kvsieve::kvsieve INTERFACE IMPORTED)
  set_target_properties(kvsieve::kvsieve PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${CMAKE_CURRENT_LIST_DIR}/../include"
    INTERFACE_COMPILE_FEATURES cxx_std_20
    INTERFACE_LINK_LIBRARIES "fmt::fmt;Threads::Threads;hwy::hwy;nlohmann_json::nlohmann_json")
endif()
include("${CMAKE_CURRENT_LIST_DIR}/kvsieve_python.cmake")
