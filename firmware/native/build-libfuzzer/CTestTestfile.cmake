# CMake generated Testfile for 
# Source directory: /work/main/firmware/native
# Build directory: /work/main/firmware/native/build-libfuzzer
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
add_test(vww_core_tests "/work/main/firmware/native/build-libfuzzer/vww_core_tests" "/work/main/firmware/native/../../tests/golden/frames.txt")
set_tests_properties(vww_core_tests PROPERTIES  _BACKTRACE_TRIPLES "/work/main/firmware/native/CMakeLists.txt;50;add_test;/work/main/firmware/native/CMakeLists.txt;0;")
