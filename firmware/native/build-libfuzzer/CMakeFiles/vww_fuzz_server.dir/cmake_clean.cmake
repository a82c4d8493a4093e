file(REMOVE_RECURSE
  "CMakeFiles/vww_fuzz_server.dir/fuzz/fuzz_server.cpp.o"
  "CMakeFiles/vww_fuzz_server.dir/fuzz/fuzz_server.cpp.o.d"
  "CMakeFiles/vww_fuzz_server.dir/work/main/firmware/lib/vww_core/src/frame.cpp.o"
  "CMakeFiles/vww_fuzz_server.dir/work/main/firmware/lib/vww_core/src/frame.cpp.o.d"
  "CMakeFiles/vww_fuzz_server.dir/work/main/firmware/lib/vww_core/src/server.cpp.o"
  "CMakeFiles/vww_fuzz_server.dir/work/main/firmware/lib/vww_core/src/server.cpp.o.d"
  "CMakeFiles/vww_fuzz_server.dir/work/main/firmware/lib/vww_core/src/test_double.cpp.o"
  "CMakeFiles/vww_fuzz_server.dir/work/main/firmware/lib/vww_core/src/test_double.cpp.o.d"
  "vww_fuzz_server"
  "vww_fuzz_server.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang CXX)
  include(CMakeFiles/vww_fuzz_server.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
