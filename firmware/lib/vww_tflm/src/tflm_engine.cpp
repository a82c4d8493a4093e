#include "vww_tflm/tflm_engine.h"

#include <string.h>

#include <new>

#include "tensorflow/lite/schema/schema_generated.h"

namespace vww_tflm {

namespace {

vww::TensorSpec spec_of(const TfLiteTensor* t) {
  vww::TensorSpec s;
  if (t == nullptr) return s;
  s.dtype = static_cast<uint8_t>(t->type);
  const int n = t->dims != nullptr ? t->dims->size : 0;
  s.ndims = static_cast<uint8_t>(n < vww::kMaxDims ? n : vww::kMaxDims);
  for (uint8_t d = 0; d < s.ndims; ++d) s.dims[d] = static_cast<uint32_t>(t->dims->data[d]);
  s.scale = t->params.scale;
  s.zero_point = t->params.zero_point;
  s.bytes = static_cast<uint32_t>(t->bytes);
  return s;
}

}  // namespace

TflmEngine::TflmEngine(const ModelImage& model, const tflite::MicroOpResolver& resolver,
                       uint8_t* arena, size_t arena_size, uint8_t* input_stage,
                       size_t input_stage_size)
    : model_(model),
      resolver_(resolver),
      arena_(arena),
      arena_size_(arena_size),
      input_stage_(input_stage),
      input_stage_size_(input_stage_size),
      status_(static_cast<uint8_t>(vww::ErrorCode::kModelError)),
      status_text_("engine not started") {}

void TflmEngine::fail(const char* text) {
  status_ = static_cast<uint8_t>(vww::ErrorCode::kModelError);
  status_text_ = text;
}

tflite::MicroInterpreter* TflmEngine::interpreter() const {
  if (!constructed_) return nullptr;
  return std::launder(reinterpret_cast<tflite::MicroInterpreter*>(
      const_cast<uint8_t*>(storage_)));
}

void TflmEngine::begin() {
  if (constructed_) return;
  if (arena_ == nullptr || arena_size_ == 0) {
    fail("no memory for the tensor arena");
    return;
  }
  const tflite::Model* model = tflite::GetModel(model_.data);
  if (model->version() != TFLITE_SCHEMA_VERSION) {
    fail("model schema version differs from the TFLM library's");
    return;
  }
  const auto* subgraphs = model->subgraphs();
  if (subgraphs == nullptr || subgraphs->size() == 0) {
    fail("model has no subgraph");
    return;
  }
  const auto* ops = subgraphs->Get(0)->operators();
  layers_ = static_cast<uint16_t>(ops != nullptr ? ops->size() : 0);
  new (storage_) tflite::MicroInterpreter(model, resolver_, arena_, arena_size_, nullptr,
                                          &profiler_);
  constructed_ = true;
  if (interpreter()->AllocateTensors() != kTfLiteOk) {
    fail("AllocateTensors failed: arena too small or an op is missing from the resolver");
    return;
  }
  if (interpreter()->inputs_size() != 1 || input_stage_ == nullptr ||
      interpreter()->input(0)->bytes > input_stage_size_) {
    fail("the input buffer is missing or smaller than the model's input tensor");
    return;
  }
  status_ = 0;
  status_text_ = "";
}

uint8_t TflmEngine::input_count() const {
  return status_ == 0 ? static_cast<uint8_t>(interpreter()->inputs_size()) : 0;
}

uint8_t TflmEngine::output_count() const {
  return status_ == 0 ? static_cast<uint8_t>(interpreter()->outputs_size()) : 0;
}

vww::TensorSpec TflmEngine::input_spec(uint8_t i) const {
  return status_ == 0 ? spec_of(interpreter()->input(i)) : vww::TensorSpec{};
}

vww::TensorSpec TflmEngine::output_spec(uint8_t i) const {
  return status_ == 0 ? spec_of(interpreter()->output(i)) : vww::TensorSpec{};
}

uint8_t* TflmEngine::input_buffer(uint8_t i) {
  return status_ == 0 && i == 0 ? input_stage_ : nullptr;
}

const uint8_t* TflmEngine::output_buffer(uint8_t i) const {
  if (status_ != 0) return nullptr;
  const TfLiteTensor* t = interpreter()->output(i);
  return t != nullptr ? t->data.uint8 : nullptr;
}

bool TflmEngine::invoke() {
  if (status_ != 0) return false;
  TfLiteTensor* in = interpreter()->input(0);
  memcpy(in->data.uint8, input_stage_, in->bytes);
  return interpreter()->Invoke() == kTfLiteOk;
}

uint32_t TflmEngine::arena_used() const {
  if (!constructed_) return vww::kUnknownU32;
  return static_cast<uint32_t>(interpreter()->arena_used_bytes());
}

bool TflmEngine::set_profiler(vww::Profiler* profiler) {
  profiler_.attach(profiler);
  return true;
}

}  // namespace vww_tflm
