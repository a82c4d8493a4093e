# The real-TFLM firmware for the emulated boards, shared by firmware/qemu (arm-none-eabi)
# and firmware/native (host g++). One CMake build folder makes one of two parts:
#
#   -DVWW_PART=tflm  -DVWW_TFLM_DIR=<Arduino library tree>
#       TFLM, CMSIS-NN and flatbuffers as a static library, libvww_tflm_lib.a. Built once
#       per (tree, flags): it does not depend on the model.
#   -DVWW_PART=image -DVWW_TFLM_DIR=... -DVWW_TFLM_LIB=<that .a> -DVWW_GENERATED_ROOT=<dir>
#       the firmware for one model: the portable core, the TFLM engine, the shared wiring
#       (firmware/src/vww_app.h) and <dir>/generated/ (written by the harness), linked with
#       the prebuilt library. A new model costs only these few files.
#
# Outside an Arduino framework the Chirale port needs -DARDUINO (several of its files guard
# struct members with it; the library and every file using its headers must agree) and
# must not get -DCMSIS_NN (the port already swapped in the CMSIS-NN kernels; the define
# would register them twice). VWW_TFLM_BARE_METAL leaves out the port's Arduino header.
set(VWW_FIRMWARE_DIR ${CMAKE_CURRENT_LIST_DIR}/../../..)
get_filename_component(VWW_FIRMWARE_DIR ${VWW_FIRMWARE_DIR} ABSOLUTE)
set(VWW_PART "" CACHE STRING "tflm (the TFLM static library) or image (one model's firmware)")
set(VWW_TFLM_DIR "" CACHE PATH "the TFLM Arduino library tree (Chirale_TensorFLowLite 2.0.0)")
set(VWW_TFLM_LIB "" CACHE FILEPATH "the static library a VWW_PART=tflm build made")
set(VWW_GENERATED_ROOT "" CACHE PATH "folder holding generated/model_*.{h,cpp}")
set(VWW_PROTOCOL_EEMBC 0 CACHE STRING "1: serve the EEMBC runner's protocol instead of v1")
set(VWW_MAX_PAYLOAD 1024 CACHE STRING "largest protocol v1 payload the firmware accepts")
set(VWW_FIRMWARE_VERSION "0.0.0" CACHE STRING "the firmware version HELLO reports")
set(VWW_EEMBC_TICKS_PER_S 0 CACHE STRING "EEMBC builds on QEMU: timer ticks per board second (0: the timer's own rate)")

include(${CMAKE_CURRENT_LIST_DIR}/tflm_library.cmake)

# One model's firmware: `platform_sources` are the target's board.h implementation and main.
function(vww_add_tflm_image name)
  vww_require(VWW_TFLM_DIR)
  vww_require(VWW_TFLM_LIB)
  vww_require(VWW_GENERATED_ROOT)
  set(core ${VWW_FIRMWARE_DIR}/lib/vww_core)
  set(engine ${VWW_FIRMWARE_DIR}/lib/vww_tflm)
  set(core_src ${core}/src/frame.cpp ${core}/src/server.cpp)
  if(VWW_PROTOCOL_EEMBC)
    list(APPEND core_src ${core}/src/eembc.cpp)
  endif()
  add_library(vww_tflm_prebuilt STATIC IMPORTED)
  set_target_properties(vww_tflm_prebuilt PROPERTIES IMPORTED_LOCATION ${VWW_TFLM_LIB})
  add_executable(${name} ${ARGN} ${core_src} ${engine}/src/tflm_engine.cpp
                 ${VWW_GENERATED_ROOT}/generated/model_data.cpp)
  target_include_directories(${name} PRIVATE ${VWW_GENERATED_ROOT} ${VWW_FIRMWARE_DIR}/src
                             ${core}/include ${engine}/include)
  target_include_directories(${name} SYSTEM PRIVATE ${VWW_TFLM_DIR}/src
                             ${VWW_TFLM_DIR}/src/third_party/flatbuffers/include)
  target_compile_definitions(${name} PRIVATE ${VWW_TFLM_DEFINES}
                             VWW_PROTOCOL_EEMBC=${VWW_PROTOCOL_EEMBC} VWW_MAX_PAYLOAD=${VWW_MAX_PAYLOAD}
                             VWW_EEMBC_TICKS_PER_S=${VWW_EEMBC_TICKS_PER_S}
                             "VWW_FIRMWARE_VERSION=\"${VWW_FIRMWARE_VERSION}\"")
  target_compile_options(${name} PRIVATE -Wall -Wextra -Werror -fno-exceptions -fno-rtti)
  target_link_libraries(${name} PRIVATE vww_tflm_prebuilt)
endfunction()
