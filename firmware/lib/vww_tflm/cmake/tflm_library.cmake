# TFLM, CMSIS-NN and flatbuffers from the Chirale Arduino-library tree as one static
# library. Kept apart from vww_tflm.cmake because the harness keys its cached library on
# this file (with the compiler, the toolchain file and the tree's checksum): a change to
# how images are linked must not cost a rebuild of TFLM.
#
# Every file that uses TFLM's headers must see the same defines as the library:
# -DARDUINO (several of the port's files guard struct members with it) and
# VWW_TFLM_BARE_METAL (leaves out the port's Arduino header); never -DCMSIS_NN (the port
# already swapped in the CMSIS-NN kernels; the define would register them twice).
set(VWW_TFLM_DEFINES ARDUINO VWW_TFLM_BARE_METAL)

function(vww_require var)
  if(NOT ${var})
    message(FATAL_ERROR "${var} is not set")
  endif()
endfunction()

# TFLM as the port lays it out: every .cpp under src/tensorflow and src/third_party and
# every .c under src/third_party, minus the Arduino glue (system_setup.cpp), tests and
# kissfft (VWW needs neither). The target supplies DebugLog and InitializeTarget.
function(vww_add_tflm_library name)
  vww_require(VWW_TFLM_DIR)
  set(src ${VWW_TFLM_DIR}/src)
  file(GLOB_RECURSE cpp ${src}/tensorflow/*.cpp ${src}/third_party/*.cpp)
  file(GLOB_RECURSE c ${src}/third_party/*.c)
  set(all ${cpp} ${c})
  list(FILTER all EXCLUDE REGEX "/system_setup\\.cpp$")
  list(FILTER all EXCLUDE REGEX "/debug_log\\.cpp$")
  list(FILTER all EXCLUDE REGEX "test[^/]*$")
  list(FILTER all EXCLUDE REGEX "/kissfft/")
  add_library(${name} STATIC ${all})
  target_include_directories(${name} SYSTEM PUBLIC ${src} ${src}/third_party/flatbuffers/include
                             ${src}/third_party/gemmlowp ${src}/third_party/ruy)
  target_compile_definitions(${name} PRIVATE ${VWW_TFLM_DEFINES})
  target_compile_options(${name} PRIVATE -w $<$<COMPILE_LANGUAGE:CXX>:-fno-exceptions -fno-rtti>)
endfunction()

