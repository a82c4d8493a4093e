// The TFLM engine: vww::Engine on top of TensorFlow Lite Micro's MicroInterpreter.
//
// Everything model-specific comes from the caller (firmware/src/main.cpp, which includes
// the sources `hil build` generates): the model array, an op resolver holding exactly the
// model's ops, the arena (static SRAM on the Nano, PSRAM on the ESP32-CAM) and the
// model's sha256. This library therefore never changes with the model.
//
// No heap: the interpreter is placement-constructed into storage inside the engine, once,
// in begin(). A model that does not load (schema version, missing op, arena too small)
// leaves the engine with status() = kModelError and a one-line status_text(); the server
// still answers HELLO so the host can print that line.
//
// Written against the TFLM API of the pinned port (spaziochirale/Chirale_TensorFLowLite
// 2.0.0): MicroInterpreter(model, resolver, arena, size, resource_variables, profiler)
// with a tflite::MicroProfilerInterface*, AllocateTensors(), arena_used_bytes().
#pragma once

#include <stddef.h>
#include <stdint.h>

// The port's main header first: it is how PlatformIO's dependency finder and the port's
// own Arduino set-up expect to be reached. Outside an Arduino framework (QEMU, the native
// runner) it stops with "unsupported framework", so those builds define
// VWW_TFLM_BARE_METAL and compile the same TFLM sources without it.
#ifndef VWW_TFLM_BARE_METAL
#include <Chirale_TensorFlowLite.h>
#endif

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_op_resolver.h"
#include "tensorflow/lite/micro/micro_profiler_interface.h"
#include "vww/engine.h"
#include "vww/profiler.h"

namespace vww_tflm {

// Feeds TFLM's per-op events into the core's compact profiler table (or nowhere).
class ProfilerAdapter : public tflite::MicroProfilerInterface {
 public:
  void attach(vww::Profiler* table) { table_ = table; }
  bool attached() const { return table_ != nullptr; }
  uint32_t BeginEvent(const char* tag) override {
    return table_ != nullptr ? table_->begin(tag) : vww::Profiler::kInvalidHandle;
  }
  void EndEvent(uint32_t handle) override {
    if (table_ != nullptr) table_->end(handle);
  }

 private:
  vww::Profiler* table_ = nullptr;
};

struct ModelImage {
  const uint8_t* data;     // the flatbuffer, 16-byte aligned
  uint32_t size;
  const uint8_t* sha256;   // 32 bytes
};

class TflmEngine : public vww::Engine {
 public:
  // `input_stage` holds the uploaded input outside the arena: TFLM may reuse the input
  // tensor's memory during Invoke(), so invoke() copies the stage into the tensor every
  // time and warm-ups and repeats all see the same input (docs/protocol.md).
  TflmEngine(const ModelImage& model, const tflite::MicroOpResolver& resolver, uint8_t* arena,
             size_t arena_size, uint8_t* input_stage, size_t input_stage_size);

  // Maps the model, builds the interpreter and allocates the tensors. Call once.
  void begin();
  // Marks the engine unusable with a one-line reason (e.g. the resolver refused an op).
  void fail(const char* text);

  uint8_t status() const override { return status_; }
  const char* status_text() const override { return status_text_; }
  const char* name() const override { return "tflm"; }

  uint8_t input_count() const override;
  uint8_t output_count() const override;
  vww::TensorSpec input_spec(uint8_t i) const override;
  vww::TensorSpec output_spec(uint8_t i) const override;
  uint8_t* input_buffer(uint8_t i) override;
  const uint8_t* output_buffer(uint8_t i) const override;
  bool invoke() override;

  uint32_t arena_size() const override { return static_cast<uint32_t>(arena_size_); }
  uint32_t arena_used() const override;
  uint32_t model_bytes() const override { return model_.size; }
  const uint8_t* model_sha256() const override { return model_.sha256; }

  uint16_t layer_count() const override { return layers_; }
  bool set_profiler(vww::Profiler* profiler) override;

 private:
  tflite::MicroInterpreter* interpreter() const;

  ModelImage model_;
  const tflite::MicroOpResolver& resolver_;
  uint8_t* arena_;
  size_t arena_size_;
  uint8_t* input_stage_;
  size_t input_stage_size_;
  ProfilerAdapter profiler_;
  alignas(tflite::MicroInterpreter) uint8_t storage_[sizeof(tflite::MicroInterpreter)];
  bool constructed_ = false;
  uint8_t status_;
  const char* status_text_;
  uint16_t layers_ = 0;
};

}  // namespace vww_tflm
