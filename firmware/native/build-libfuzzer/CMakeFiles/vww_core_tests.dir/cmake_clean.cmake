file(REMOVE_RECURSE
  "CMakeFiles/vww_core_tests.dir/tests/test_core.cpp.o"
  "CMakeFiles/vww_core_tests.dir/tests/test_core.cpp.o.d"
  "vww_core_tests"
  "vww_core_tests.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang CXX)
  include(CMakeFiles/vww_core_tests.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
