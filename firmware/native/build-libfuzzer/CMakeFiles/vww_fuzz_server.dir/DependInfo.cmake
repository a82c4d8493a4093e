
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/firmware/native/fuzz/fuzz_server.cpp" "CMakeFiles/vww_fuzz_server.dir/fuzz/fuzz_server.cpp.o" "gcc" "CMakeFiles/vww_fuzz_server.dir/fuzz/fuzz_server.cpp.o.d"
  "/work/main/firmware/lib/vww_core/src/frame.cpp" "CMakeFiles/vww_fuzz_server.dir/work/main/firmware/lib/vww_core/src/frame.cpp.o" "gcc" "CMakeFiles/vww_fuzz_server.dir/work/main/firmware/lib/vww_core/src/frame.cpp.o.d"
  "/work/main/firmware/lib/vww_core/src/server.cpp" "CMakeFiles/vww_fuzz_server.dir/work/main/firmware/lib/vww_core/src/server.cpp.o" "gcc" "CMakeFiles/vww_fuzz_server.dir/work/main/firmware/lib/vww_core/src/server.cpp.o.d"
  "/work/main/firmware/lib/vww_core/src/test_double.cpp" "CMakeFiles/vww_fuzz_server.dir/work/main/firmware/lib/vww_core/src/test_double.cpp.o" "gcc" "CMakeFiles/vww_fuzz_server.dir/work/main/firmware/lib/vww_core/src/test_double.cpp.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
