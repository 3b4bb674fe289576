// SPDX-License-Identifier: MIT
// arch::nanoseconds() on x86-64: the TSC, whose frequency is measured once at boot against the
// first of these that counts:
//   1. the PIT's channel 2 (a fixed 1.193182 MHz), gated and watched through port 0x61;
//   2. the PIT's channel 0, its count read back by latching, where port 0x61 gates nothing (no
//      speaker port: QEMU's microvm);
//   3. the ACPI PM timer (3.579545 MHz, its port from the FADT), where no PIT counts (QEMU's
//      -machine pc,pit=off; chipsets that gate the 8254 off);
//   4. the CMOS RTC's seconds, where there is neither (QEMU's microvm,pit=off): the TSC ticks
//      from one change of the seconds to the next, up to two seconds of waiting.
// Without any, the frequency is unknown: the kernel says so and assumes kFallbackTscHz, so every
// time-out it measures may be off. (Trusting the PIT blindly made the clock run about a thousand
// times fast: CPU check-ins timed out at once and secondaries were left out.) Each wait for a
// source that may not be there is bounded in TSC ticks, at most kMaxTscHz's worth of its time.
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
// No x86-64 TSC runs faster: a wait bounded by kMaxTscHz * t ticks lasts at least t.
constexpr uint64_t kMaxTscHz = uint64_t{10} * 1000 * 1000 * 1000;
// A PIT counter that has not moved for a millisecond (over 800 of its ticks) is not counting.
constexpr uint64_t kPitStillTscTicks = kMaxTscHz / 1000;
// The RTC's seconds change once a second: a wait for a change gives up after 1.2 s.
constexpr uint64_t kRtcChangeTscTicks = kMaxTscHz / 10 * 12;

constexpr uint16_t kPitChannel0 = 0x40;
constexpr uint16_t kPitChannel2 = 0x42;
constexpr uint16_t kPitCommand = 0x43;
constexpr uint16_t kSpeakerPort = 0x61; // bit 0: channel 2's gate; bit 5: its OUT
constexpr uint16_t kRtcIndex = 0x70;
constexpr uint16_t kRtcData = 0x71;
constexpr uint8_t kRtcSeconds = 0x00;
constexpr uint8_t kRtcStatusA = 0x0A;
constexpr uint8_t kRtcUpdating = 0x80;      // status A: an update is due within 244 us
constexpr uint8_t kRtcDividerMask = 0x70;   // status A: the time base
constexpr uint8_t kRtcDividerNormal = 0x20; // 32.768 kHz, counting

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
// counts (or no port 0x61 gates it, which then reads all ones), port 0x61 shows OUT2 high at once.
uint64_t tsc_hz_from_pit_channel_2() {
    // Gate channel 2 on with the speaker off, one-shot mode 0, then wait for OUT2 to rise.
    out8(kSpeakerPort, static_cast<uint8_t>((in8(kSpeakerPort) & ~0x02) | 0x01));
    out8(kPitCommand, 0xB0);
    out8(kPitChannel2, kCalibrationTicks & 0xFF);
    out8(kPitChannel2, kCalibrationTicks >> 8);
    const uint64_t start = read_tsc();
    if ((in8(kSpeakerPort) & 0x20) != 0) {
        return 0;
    }
    while ((in8(kSpeakerPort) & 0x20) == 0) {
    }
    return (read_tsc() - start) * kPitHz / kCalibrationTicks;
}

// Channel 0's count, latched and read back (low byte, then high).
uint16_t pit_channel_0_count() {
    out8(kPitCommand, 0x00); // latch channel 0
    const uint8_t low = in8(kPitChannel0);
    return static_cast<uint16_t>(low | in8(kPitChannel0) << 8);
}

// TSC ticks per second measured against PIT channel 0, whose gate is always on, or 0 if it does
// not count. It is set to count down from 65536 over and over (mode 2: IRQ 0 at 18.2 Hz, as the
// BIOS leaves it; the kernel takes no PIT interrupt), and its count is read back until 10 ms of
// it have passed, each step between two reads well under one 55 ms round.
uint64_t tsc_hz_from_pit_channel_0() {
    out8(kPitCommand, 0x34); // channel 0, low byte then high, mode 2, binary
    out8(kPitChannel0, 0);
    out8(kPitChannel0, 0);
    // Start on a tick, so that the ticks counted are whole.
    const uint16_t first = pit_channel_0_count();
    const uint64_t waiting = read_tsc();
    uint16_t last = first;
    while (last == first) {
        if (read_tsc() - waiting > kPitStillTscTicks) {
            return 0;
        }
        last = pit_channel_0_count();
    }
    const uint64_t start = read_tsc();
    uint64_t counted = 0;
    uint64_t at = start;
    while (counted < kCalibrationTicks) {
        const uint16_t now = pit_channel_0_count();
        if (now != last) {
            counted += static_cast<uint16_t>(last - now); // mod 65536: the count wraps
            last = now;
            at = read_tsc();
        } else if (read_tsc() - at > kPitStillTscTicks) {
            return 0;
        }
    }
    return (read_tsc() - start) * kPitHz / counted;
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

uint8_t read_rtc(uint8_t index) {
    out8(kRtcIndex, index);
    return in8(kRtcData);
}

// The RTC's seconds register, read outside an update (status A's update flag rises 244 us before
// one, so a read right after the flag is seen clear is a settled value), or -1 if the flag stays
// up for kRtcChangeTscTicks (an update takes 2 ms at most).
int rtc_seconds() {
    const uint64_t start = read_tsc();
    while ((read_rtc(kRtcStatusA) & kRtcUpdating) != 0) {
        if (read_tsc() - start > kRtcChangeTscTicks) {
            return -1;
        }
    }
    return read_rtc(kRtcSeconds);
}

// The TSC when the RTC's seconds next change from `seconds`, or 0 if they do not within 1.2 s.
uint64_t tsc_at_next_second(int seconds) {
    const uint64_t start = read_tsc();
    for (;;) {
        const uint64_t now = read_tsc();
        const int read = rtc_seconds();
        if (read < 0) {
            return 0;
        }
        if (read != seconds) {
            return now;
        }
        if (now - start > kRtcChangeTscTicks) {
            return 0;
        }
    }
}

// TSC ticks per second counted between two changes of the CMOS RTC's seconds, or 0 without an
// RTC (status A reads all ones where there is none) or one whose time base is not counting.
uint64_t tsc_hz_from_rtc() {
    if ((read_rtc(kRtcStatusA) & kRtcDividerMask) != kRtcDividerNormal) {
        return 0;
    }
    const int seconds = rtc_seconds();
    const uint64_t first = seconds < 0 ? 0 : tsc_at_next_second(seconds);
    if (first == 0) {
        return 0;
    }
    const int next = rtc_seconds();
    const uint64_t second = next < 0 ? 0 : tsc_at_next_second(next);
    return second == 0 ? 0 : second - first;
}

struct Measurement {
    uint64_t hz;        // 0: the source does not count
    const char* source; // what the TSC was measured against, for the boot line
};

Measurement measure_tsc(uint64_t acpi_rsdp) {
    if (const uint64_t hz = tsc_hz_from_pit_channel_2(); hz != 0) {
        return {hz, "the PIT's channel 2"};
    }
    if (const uint64_t hz = tsc_hz_from_pit_channel_0(); hz != 0) {
        return {hz, "the PIT's channel 0 (port 0x61 gates no channel 2)"};
    }
    if (const uint64_t hz = tsc_hz_from_pm_timer(acpi_rsdp); hz != 0) {
        return {hz, "the ACPI PM timer (no PIT counts)"};
    }
    if (const uint64_t hz = tsc_hz_from_rtc(); hz != 0) {
        return {hz, "the CMOS RTC's seconds (no PIT counts, no ACPI PM timer)"};
    }
    return {0, nullptr};
}

} // namespace

void x86_64::calibrate_clock(uint64_t acpi_rsdp) {
    g_tsc_at_boot = read_tsc();
    const Measurement measured = measure_tsc(acpi_rsdp);
    if (measured.hz == 0) {
        kernel::print("clock: no PIT counts, no ACPI PM timer, no CMOS RTC: TSC assumed %lu MHz; "
                      "time-outs may be off\n",
                      kFallbackTscHz / 1000000);
    } else {
        kernel::print("clock: TSC %lu MHz, measured against %s\n", (measured.hz + 500000) / 1000000,
                      measured.source);
    }
    g_tsc_hz = measured.hz != 0 ? measured.hz : kFallbackTscHz;
}

uint64_t nanoseconds() {
    const uint64_t ticks = read_tsc() - g_tsc_at_boot;
    // Split so that neither product overflows 64 bits for any realistic frequency.
    return ticks / g_tsc_hz * kNanosecondsPerSecond +
           ticks % g_tsc_hz * kNanosecondsPerSecond / g_tsc_hz;
}

} // namespace bedrock::arch
