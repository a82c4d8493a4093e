file(REMOVE_RECURSE
  "CMakeFiles/vww_native_runner.dir/runner/main.cpp.o"
  "CMakeFiles/vww_native_runner.dir/runner/main.cpp.o.d"
  "vww_native_runner"
  "vww_native_runner.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang CXX)
  include(CMakeFiles/vww_native_runner.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
