// Compact per-layer profiler: a fixed table of (op name, cycles), no heap, no strings copied.
//
// TFLM's own MicroProfiler keeps 4096 events; a VWW model has a few dozen layers, so the
// table here holds N entries chosen by the caller (StaticProfiler<N>). A TFLM engine
// drives it from tflite::MicroProfilerInterface through a small adapter in the engine
// library:
//     uint32_t BeginEvent(const char* tag) override { return table_.begin(tag); }
//     void EndEvent(uint32_t h) override { table_.end(h); }
// `tag` must outlive the profile (TFLM passes op names from static registrations).
// Events past the table's capacity are counted in dropped() and otherwise ignored, so a
// model larger than the table still runs; the host sees the first N layers.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "vww/timer.h"

namespace vww {

struct ProfileEntry {
  const char* op;   // op name, e.g. "CONV_2D"; never null once recorded
  uint64_t cycles;  // while the event is open: its start time; after end(): its duration
};

class Profiler {
 public:
  static constexpr uint32_t kInvalidHandle = 0xFFFFFFFFu;

  Profiler(ProfileEntry* table, uint16_t capacity, Timer& timer)
      : table_(table), capacity_(capacity), timer_(timer) {}

  // Forget all entries (the server calls this before the profiled repeat).
  void reset() {
    count_ = 0;
    dropped_ = 0;
  }
  // Opens an event; the handle goes back to end(). kInvalidHandle when the table is full.
  uint32_t begin(const char* op) {
    if (count_ >= capacity_) {
      ++dropped_;
      return kInvalidHandle;
    }
    ProfileEntry& e = table_[count_];
    e.op = op != nullptr ? op : "?";
    e.cycles = timer_.now();
    return count_++;
  }
  void end(uint32_t handle) {
    if (handle >= count_) return;
    uint64_t t = timer_.now();
    ProfileEntry& e = table_[handle];
    e.cycles = t - e.cycles;
  }

  uint16_t count() const { return count_; }
  uint16_t capacity() const { return capacity_; }
  uint32_t dropped() const { return dropped_; }
  const ProfileEntry& entry(uint16_t i) const { return table_[i]; }

 private:
  ProfileEntry* table_;
  uint16_t capacity_;
  uint16_t count_ = 0;
  uint32_t dropped_ = 0;
  Timer& timer_;
};

// A profiler that owns its table of N entries (static storage when declared static).
template <uint16_t N>
class StaticProfiler : public Profiler {
 public:
  explicit StaticProfiler(Timer& timer) : Profiler(storage_, N, timer) {}

 private:
  ProfileEntry storage_[N];
};

}  // namespace vww
