// What runs the model: the inference-engine interface the server benchmarks.
//
// Implementations: the TFLM engine on boards (firmware/lib/vww_tflm, name "tflm") and
// the test double of the native and QEMU builds (name "test-double", which the harness
// refuses to benchmark). The engine sets itself up before the Server is constructed
// (model, arena, op resolver) and reports the outcome through status()/status_text():
// a device whose model failed to load still answers HELLO, PING and GET_MEMORY so that
// the host can say why.
//
// Input/output buffers belong to the engine (for TFLM: tensors inside the arena); the
// server writes uploaded chunks straight into input_buffer(0) and sends output bytes
// straight from output_buffer(i) (all outputs concatenated, in index order).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "vww/profiler.h"
#include "vww/protocol.h"

namespace vww {

constexpr uint8_t kMaxDims = 6;

struct TensorSpec {
  uint8_t dtype = kInt8;         // TFLite TensorType code (vww::DType)
  uint8_t ndims = 0;
  uint32_t dims[kMaxDims] = {};
  float scale = 0.0f;            // 0 when not quantised
  int32_t zero_point = 0;
  uint32_t bytes = 0;            // size of the tensor's buffer
};

class Engine {
 public:
  // 0 when a model is loaded and ready; otherwise the protocol ErrorCode that stopped it
  // (usually kModelError) and a one-line reason in status_text().
  virtual uint8_t status() const = 0;
  virtual const char* status_text() const = 0;
  // "tflm", "tflm-host", "test-double": goes into HELLO_RESP `engine`.
  virtual const char* name() const = 0;

  virtual uint8_t input_count() const = 0;
  virtual uint8_t output_count() const = 0;
  virtual TensorSpec input_spec(uint8_t i) const = 0;
  virtual TensorSpec output_spec(uint8_t i) const = 0;
  // Writable buffer of input i (spec.bytes long); null when not ready.
  virtual uint8_t* input_buffer(uint8_t i) = 0;
  // Output i after the last invoke() (spec.bytes long); null when not ready.
  virtual const uint8_t* output_buffer(uint8_t i) const = 0;

  // Runs the model once on the current input; false when the interpreter failed.
  virtual bool invoke() = 0;

  virtual uint32_t arena_size() const = 0;
  virtual uint32_t arena_used() const = 0;
  // Size of the model in flash, kUnknownU32 when unknown.
  virtual uint32_t model_bytes() const { return kUnknownU32; }
  // 32 bytes; all zero when unknown.
  virtual const uint8_t* model_sha256() const = 0;

  // Number of layers (operators) one invoke() runs.
  virtual uint16_t layer_count() const = 0;
  // Profiler hook: while set (non-null), invoke() records one event per layer in it;
  // nullptr detaches it. Returns false when this engine cannot profile at all (then the
  // call has no effect and the server answers UNSUPPORTED to profile requests).
  virtual bool set_profiler(Profiler* profiler) = 0;

 protected:
  ~Engine() = default;
};

}  // namespace vww
