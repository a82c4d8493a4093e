// Per-run settings the harness hands to the QEMU firmware without rebuilding it.
//
// The `qemu` backend writes this block to a file and QEMU loads it into the last 4 KiB of
// SSRAM2/3 before reset (-device loader,file=...,addr=0x203FF000,force-raw=on): the board
// id to report, the input shape and the op names of the model the test double stands in
// for. Start-up code never zeroes this region; without a block (magic absent) the
// firmware uses its defaults. The layout is mirrored in harness/devices/qemu.py.
#pragma once

#include <stdint.h>

namespace mps2 {

constexpr uint32_t kBootConfigMagic = 0x43575756u;  // "VWWC"
constexpr uint32_t kBootConfigAddr = 0x203FF000u;
constexpr uint32_t kBootConfigSize = 4096;
constexpr uint16_t kBootFlagFailModel = 1;
// The link is the semihosting console (QEMU started with -semihosting-config), not UART0.
constexpr uint16_t kBootFlagSemihost = 2;

struct BootConfig {
  uint32_t magic;
  uint8_t ndims;        // 0: the default VWW input shape
  uint8_t n_ops;        // 0: the test double's default layers
  uint16_t flags;       // bit0: the test double's model "fails to load" (MODEL_ERROR);
                        // bit1: the link is the semihosting console (kBootFlagSemihost)
  uint32_t dims[6];
  char board[32];       // NUL-terminated; empty: the default board id
  char ops[kBootConfigSize - 64];  // n_ops NUL-terminated names, back to back
};
static_assert(sizeof(BootConfig) == kBootConfigSize, "boot config must fill its 4 KiB");

}  // namespace mps2
