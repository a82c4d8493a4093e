// A clock that only the test moves (a fake engine or the test itself), so that cycle counts
// and lap times are exact; shared by the protocol v1 and EEMBC core tests.
#pragma once

#include <stdint.h>

#include "vww/timer.h"

namespace test_support {

class FakeTimer : public vww::Timer {
 public:
  uint64_t now() override { return t; }
  uint32_t hz() const override { return 64000000; }
  vww::TimerKind kind() const override { return vww::TimerKind::kDwt; }
  uint64_t t = 1000;
};

}  // namespace test_support
