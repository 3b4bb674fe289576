// SPDX-License-Identifier: MIT
// arch::nanoseconds() on x86-64: the TSC, whose frequency is measured once at boot against the
// PIT (channel 2, a fixed 1.193182 MHz) or, where no PIT counts (QEMU's -machine pc,pit=off;
// chipsets that gate the 8254 off), the ACPI PM timer (3.579545 MHz, its port from the FADT).
// Without either the frequency is unknown: the kernel says so and assumes kFallbackTscHz, so
// every time-out it measures may be off. (Trusting the PIT blindly made the clock run about a
// thousand times fast: 500 ms check-ins timed out at once and secondaries were left out.)
// Invariant after calibrate_clock(): g_tsc_hz > 0 and g_tsc_at_boot <= rdtsc().
#include <stdint.h>

#include "arch/x86_64/entry.h"
#include "arch/x86_64/port_io.h"
#include "kernel/acpi.h"
#include "kernel/arch.h"
#include "kernel/console.h"

namespace bedrock::arch {
namespace {

using x86_64::in32;
using x86_64::in8;
using x86_64::out8;

constexpr uint64_t kPitHz = 1193182;
constexpr uint16_t kCalibrationTicks = 11932; // 10 ms
constexpr uint64_t kNanosecondsPerSecond = 1000000000;
constexpr uint64_t kPmTimerCalibrationCounts = kernel::kAcpiPmTimerHz / 100; // 10 ms
constexpr uint64_t kPmTimerMaxReads = uint64_t{10} * 1000 * 1000;
constexpr uint64_t kFallbackTscHz = uint64_t{2} * 1000 * 1000 * 1000;

uint64_t g_tsc_hz = 1;
uint64_t g_tsc_at_boot = 0;

uint64_t read_tsc() {
    uint32_t low;
    uint32_t high;
    __asm__ volatile("rdtsc" : "=a"(low), "=d"(high));
    return (uint64_t{high} << 32) | low;
}

// TSC ticks per second measured against PIT channel 2, or 0 if it does not count: in mode 0 a
// PIT's OUT goes low when the mode is set and rises when the count ends, 10 ms later; where none
// counts, port 0x61 shows OUT2 high at once.
uint64_t tsc_hz_from_pit() {
    // Gate channel 2 on with the speaker off, one-shot mode 0, then wait for OUT2 to rise.
    out8(0x61, static_cast<uint8_t>((in8(0x61) & ~0x02) | 0x01));
    out8(0x43, 0xB0);
    out8(0x42, kCalibrationTicks & 0xFF);
    out8(0x42, kCalibrationTicks >> 8);
    const uint64_t start = read_tsc();
    if ((in8(0x61) & 0x20) != 0) {
        return 0;
    }
    while ((in8(0x61) & 0x20) == 0) {
    }
    return (read_tsc() - start) * kPitHz / kCalibrationTicks;
}

// TSC ticks per second measured against the ACPI PM timer, or 0 without one (or one that does
// not count within kPmTimerMaxReads reads, seconds of port reads).
uint64_t tsc_hz_from_pm_timer(uint64_t acpi_rsdp) {
    const kernel::AcpiPmTimer timer = kernel::acpi_find_pm_timer(acpi_rsdp);
    if (timer.port == 0) {
        return 0;
    }
    const uint32_t mask = timer.bits == 32 ? 0xFFFF'FFFFu : 0x00FF'FFFFu;
    const uint32_t first = in32(timer.port) & mask;
    const uint64_t start = read_tsc();
    uint32_t counted = 0;
    for (uint64_t reads = 0; counted < kPmTimerCalibrationCounts; ++reads) {
        if (reads == kPmTimerMaxReads) {
            return 0;
        }
        counted = ((in32(timer.port) & mask) - first) & mask;
    }
    return (read_tsc() - start) * kernel::kAcpiPmTimerHz / counted;
}

} // namespace

void x86_64::calibrate_clock(uint64_t acpi_rsdp) {
    g_tsc_at_boot = read_tsc();
    uint64_t hz = tsc_hz_from_pit();
    if (hz == 0) {
        hz = tsc_hz_from_pm_timer(acpi_rsdp);
        kernel::print("clock: no PIT counts; TSC measured against the ACPI PM timer%s\n",
                      hz == 0 ? ", which there is not either: assuming 2 GHz, time-outs may be off"
                              : "");
    }
    g_tsc_hz = hz != 0 ? hz : kFallbackTscHz;
}

uint64_t nanoseconds() {
    const uint64_t ticks = read_tsc() - g_tsc_at_boot;
    // Split so that neither product overflows 64 bits for any realistic frequency.
    return ticks / g_tsc_hz * kNanosecondsPerSecond +
           ticks % g_tsc_hz * kNanosecondsPerSecond / g_tsc_hz;
}

} // namespace bedrock::arch
