// The test-double engine of the native and QEMU builds: a stand-in with no model.
//
// It has the shape of a VWW model (int8 input [1,96,96,3] by default, int8 output [1,2])
// and computes its outputs from the input so that the host can check every byte that
// went through the link:
//   output[0] = (sum of the input bytes) mod 256, as int8
//   output[1] = XOR of the input bytes, as int8
// It walks the input in fake "layers", each summing and XOR-ing its share of the bytes,
// so the profiler and the cycle counters have real work to measure. The layers are named
// CONV_2D, DEPTHWISE_CONV_2D, SOFTMAX unless set_layers() gives the names of a real
// model's operators, so that a conformance suite can compare the profile's shape with
// the model's. Its name is "test-double"; the harness never benchmarks it.
//
// Test hooks: an input that starts with the bytes "FAIL" makes invoke() fail (to exercise
// INVOKE_FAILED); constructing it with fail_load = true gives an engine whose model "did
// not load" (status MODEL_ERROR) to exercise the not-ready paths.
#pragma once

#include <stdint.h>

#include "vww/engine.h"

namespace vww {

class TestDoubleEngine final : public Engine {
 public:
  static constexpr uint32_t kMaxInputBytes = 65536;

  // `dims` of the int8 input (ndims <= kMaxDims, product <= kMaxInputBytes); null: VWW.
  TestDoubleEngine(const uint32_t* dims, uint8_t ndims, bool fail_load);
  // Names the fake layers (the pointers must outlive the engine); n == 0 restores the
  // default three.
  void set_layers(const char* const* ops, uint16_t n);

  uint8_t status() const override;
  const char* status_text() const override;
  const char* name() const override { return "test-double"; }
  uint8_t input_count() const override { return status() == 0 ? 1 : 0; }
  uint8_t output_count() const override { return status() == 0 ? 1 : 0; }
  TensorSpec input_spec(uint8_t i) const override;
  TensorSpec output_spec(uint8_t i) const override;
  uint8_t* input_buffer(uint8_t i) override;
  const uint8_t* output_buffer(uint8_t i) const override;
  bool invoke() override;
  uint32_t arena_size() const override { return sizeof input_ + sizeof output_; }
  uint32_t arena_used() const override { return input_spec_.bytes + sizeof output_; }
  uint32_t model_bytes() const override { return 0; }
  const uint8_t* model_sha256() const override { return sha_; }
  uint16_t layer_count() const override { return n_layers_; }
  bool set_profiler(Profiler* profiler) override {
    profiler_ = profiler;
    return true;
  }

 private:
  TensorSpec input_spec_;
  TensorSpec output_spec_;
  bool fail_load_;
  const char* load_error_;
  Profiler* profiler_ = nullptr;
  const char* const* layers_;
  uint16_t n_layers_;
  uint8_t sha_[32] = {};
  int8_t output_[2] = {};
  uint8_t input_[kMaxInputBytes];
};

}  // namespace vww
