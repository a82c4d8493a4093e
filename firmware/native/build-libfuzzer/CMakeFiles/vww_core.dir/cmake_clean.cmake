file(REMOVE_RECURSE
  "CMakeFiles/vww_core.dir/work/main/firmware/lib/vww_core/src/frame.cpp.o"
  "CMakeFiles/vww_core.dir/work/main/firmware/lib/vww_core/src/frame.cpp.o.d"
  "CMakeFiles/vww_core.dir/work/main/firmware/lib/vww_core/src/server.cpp.o"
  "CMakeFiles/vww_core.dir/work/main/firmware/lib/vww_core/src/server.cpp.o.d"
  "CMakeFiles/vww_core.dir/work/main/firmware/lib/vww_core/src/test_double.cpp.o"
  "CMakeFiles/vww_core.dir/work/main/firmware/lib/vww_core/src/test_double.cpp.o.d"
  "libvww_core.a"
  "libvww_core.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang CXX)
  include(CMakeFiles/vww_core.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
