// SPDX-License-Identifier: MIT
// arch::nanoseconds() on x86-64: the TSC, whose frequency is measured once at boot against the
// PIT (channel 2, a fixed 1.193182 MHz), which every PC and QEMU machine has.
// Invariant after calibrate_clock(): g_tsc_hz > 0 and g_tsc_at_boot <= rdtsc().
#include <stdint.h>

#include "arch/x86_64/entry.h"
#include "arch/x86_64/port_io.h"
#include "kernel/arch.h"

namespace bedrock::arch {
namespace {

using x86_64::in8;
using x86_64::out8;

constexpr uint64_t kPitHz = 1193182;
constexpr uint16_t kCalibrationTicks = 11932; // 10 ms
constexpr uint64_t kNanosecondsPerSecond = 1000000000;

uint64_t g_tsc_hz = 1;
uint64_t g_tsc_at_boot = 0;

uint64_t read_tsc() {
    uint32_t low;
    uint32_t high;
    __asm__ volatile("rdtsc" : "=a"(low), "=d"(high));
    return (uint64_t{high} << 32) | low;
}

} // namespace

void x86_64::calibrate_clock() {
    // Gate channel 2 on with the speaker off, one-shot mode 0, then wait for OUT2 to rise.
    out8(0x61, static_cast<uint8_t>((in8(0x61) & ~0x02) | 0x01));
    out8(0x43, 0xB0);
    out8(0x42, kCalibrationTicks & 0xFF);
    out8(0x42, kCalibrationTicks >> 8);
    const uint64_t start = read_tsc();
    while ((in8(0x61) & 0x20) == 0) {
    }
    const uint64_t elapsed = read_tsc() - start;
    g_tsc_hz = elapsed * kPitHz / kCalibrationTicks;
    if (g_tsc_hz == 0) {
        g_tsc_hz = 1;
    }
    g_tsc_at_boot = start;
}

uint64_t nanoseconds() {
    const uint64_t ticks = read_tsc() - g_tsc_at_boot;
    // Split so that neither product overflows 64 bits for any realistic frequency.
    return ticks / g_tsc_hz * kNanosecondsPerSecond +
           ticks % g_tsc_hz * kNanosecondsPerSecond / g_tsc_hz;
}

} // namespace bedrock::arch
