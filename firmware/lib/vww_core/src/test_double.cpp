// Test-double engine; see vww/test_double.h for the function it computes and why.
#include "vww/test_double.h"

namespace vww {
namespace {

struct ScopedEvent {
  ScopedEvent(Profiler* p, const char* op) : p_(p), h_(p ? p->begin(op) : 0) {}
  ~ScopedEvent() {
    if (p_ != nullptr) p_->end(h_);
  }
  Profiler* p_;
  uint32_t h_;
};

const char* const kDefaultLayers[3] = {"CONV_2D", "DEPTHWISE_CONV_2D", "SOFTMAX"};

}  // namespace

void TestDoubleEngine::set_layers(const char* const* ops, uint16_t n) {
  layers_ = n != 0 ? ops : kDefaultLayers;
  n_layers_ = n != 0 ? n : 3;
}

TestDoubleEngine::TestDoubleEngine(const uint32_t* dims, uint8_t ndims, bool fail_load)
    : fail_load_(fail_load), load_error_(""), layers_(kDefaultLayers), n_layers_(3) {
  static const uint32_t kVww[4] = {1, 96, 96, 3};
  if (dims == nullptr || ndims == 0) {
    dims = kVww;
    ndims = 4;
  }
  uint64_t bytes = 1;
  input_spec_.ndims = ndims <= kMaxDims ? ndims : kMaxDims;
  for (uint8_t i = 0; i < input_spec_.ndims; ++i) {
    input_spec_.dims[i] = dims[i];
    bytes *= dims[i];
  }
  if (ndims > kMaxDims || bytes == 0 || bytes > kMaxInputBytes) {
    fail_load_ = true;
    load_error_ = "test double: input shape outside 1..65536 bytes";
    bytes = 0;
  }
  if (fail_load) load_error_ = "test double told to fail loading its model";
  input_spec_.dtype = kInt8;
  input_spec_.scale = 1.0f / 255.0f;
  input_spec_.zero_point = -128;
  input_spec_.bytes = static_cast<uint32_t>(bytes);
  output_spec_.dtype = kInt8;
  output_spec_.ndims = 2;
  output_spec_.dims[0] = 1;
  output_spec_.dims[1] = 2;
  output_spec_.scale = 1.0f / 256.0f;
  output_spec_.zero_point = -128;
  output_spec_.bytes = sizeof output_;
}

uint8_t TestDoubleEngine::status() const {
  return fail_load_ ? static_cast<uint8_t>(ErrorCode::kModelError) : 0;
}

const char* TestDoubleEngine::status_text() const { return fail_load_ ? load_error_ : ""; }

TensorSpec TestDoubleEngine::input_spec(uint8_t i) const {
  return i == 0 ? input_spec_ : TensorSpec();
}

TensorSpec TestDoubleEngine::output_spec(uint8_t i) const {
  return i == 0 ? output_spec_ : TensorSpec();
}

uint8_t* TestDoubleEngine::input_buffer(uint8_t i) {
  return i == 0 && !fail_load_ ? input_ : nullptr;
}

const uint8_t* TestDoubleEngine::output_buffer(uint8_t i) const {
  return i == 0 && !fail_load_ ? reinterpret_cast<const uint8_t*>(output_) : nullptr;
}

bool TestDoubleEngine::invoke() {
  if (fail_load_) return false;
  const uint32_t n = input_spec_.bytes;
  if (n >= 4 && input_[0] == 'F' && input_[1] == 'A' && input_[2] == 'I' && input_[3] == 'L') {
    return false;
  }
  uint32_t sum = 0;
  uint8_t x = 0;
  uint32_t begin = 0;
  for (uint16_t k = 0; k < n_layers_; ++k) {
    ScopedEvent e(profiler_, layers_[k]);
    const uint32_t end = k + 1u == n_layers_ ? n : (n / n_layers_) * (k + 1u);
    for (uint32_t i = begin; i < end; ++i) {
      sum += input_[i];
      x = static_cast<uint8_t>(x ^ input_[i]);
    }
    begin = end;
    if (k + 1u == n_layers_) {
      output_[0] = static_cast<int8_t>(static_cast<uint8_t>(sum & 0xFFu));
      output_[1] = static_cast<int8_t>(x);
    }
  }
  return true;
}

}  // namespace vww
