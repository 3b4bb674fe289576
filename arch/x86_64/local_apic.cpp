// SPDX-License-Identifier: MIT
// The local APIC and the legacy PICs; see local_apic.h.
//
// The APIC timer counts down at the bus clock divided by kTimerDivide; its rate is measured once
// (g_timer_hz) by letting it count for kCalibrationNanoseconds of arch::nanoseconds().
#include "arch/x86_64/local_apic.h"

#include "arch/x86_64/cpuid.h"
#include "arch/x86_64/port_io.h"
#include "kernel/arch.h"

namespace bedrock::arch::x86_64 {
namespace {

constexpr uint32_t kCpuidApic = 1u << 9; // CPUID leaf 1, EDX
constexpr uint32_t kApicBaseMsr = 0x1B;
constexpr uint64_t kApicBaseMask = 0x000F'FFFF'FFFF'F000;

// Register offsets in the APIC page.
constexpr uint32_t kId = 0x020;
constexpr uint32_t kTaskPriority = 0x080;
constexpr uint32_t kEndOfInterrupt = 0x0B0;
constexpr uint32_t kSpuriousVectorRegister = 0x0F0;
constexpr uint32_t kCommandLow = 0x300;
constexpr uint32_t kCommandHigh = 0x310;
constexpr uint32_t kTimerVectorRegister = 0x320;
constexpr uint32_t kTimerInitialCount = 0x380;
constexpr uint32_t kTimerCurrentCount = 0x390;
constexpr uint32_t kTimerDivideRegister = 0x3E0;

constexpr uint32_t kApicSoftwareEnable = 1u << 8;
constexpr uint32_t kMasked = 1u << 16;
constexpr uint32_t kTimerDivideBy16 = 0x3;
constexpr uint32_t kDeliveryNmi = 0x4 << 8;
constexpr uint32_t kDeliveryInit = 0x5 << 8;
constexpr uint32_t kDeliveryStartup = 0x6 << 8;
constexpr uint32_t kLevelAssert = 1u << 14;
constexpr uint32_t kDeliveryPending = 1u << 12;

constexpr uint64_t kMicrosecond = 1000;
constexpr uint64_t kAfterInit = 10'000 * kMicrosecond;
constexpr uint64_t kAfterStartup = 200 * kMicrosecond;
constexpr uint64_t kDeliveryTimeout = 1000 * kMicrosecond;
constexpr uint64_t kCalibrationNanoseconds = 10'000 * kMicrosecond;

constinit uint64_t g_base = 0;
constinit uint64_t g_timer_hz = 0; // counts per second at kTimerDivideBy16

volatile uint32_t& reg(uint32_t offset) {
    return *reinterpret_cast<volatile uint32_t*>(static_cast<uintptr_t>(g_base + offset));
}

uint64_t read_msr(uint32_t msr) {
    uint32_t low;
    uint32_t high;
    __asm__ volatile("rdmsr" : "=a"(low), "=d"(high) : "c"(msr));
    return (uint64_t{high} << 32) | low;
}

void wait_nanoseconds(uint64_t delay) {
    const uint64_t end = nanoseconds() + delay;
    while (nanoseconds() < end) {
        __builtin_ia32_pause();
    }
}

// ICW1-4: master at 0x20, slave at 0x28, cascaded on IRQ 2, 8086 mode; then every line masked.
void remap_and_mask_pics() {
    constexpr uint16_t kMasterCommand = 0x20, kMasterData = 0x21;
    constexpr uint16_t kSlaveCommand = 0xA0, kSlaveData = 0xA1;
    out8(kMasterCommand, 0x11);
    out8(kSlaveCommand, 0x11);
    out8(kMasterData, 0x20);
    out8(kSlaveData, 0x28);
    out8(kMasterData, 0x04);
    out8(kSlaveData, 0x02);
    out8(kMasterData, 0x01);
    out8(kSlaveData, 0x01);
    out8(kMasterData, 0xFF);
    out8(kSlaveData, 0xFF);
}

bool send_ipi(uint32_t apic_id, uint32_t command) {
    reg(kCommandHigh) = apic_id << 24;
    reg(kCommandLow) = command;
    const uint64_t deadline = nanoseconds() + kDeliveryTimeout;
    while ((reg(kCommandLow) & kDeliveryPending) != 0) {
        if (nanoseconds() > deadline) {
            return false;
        }
        __builtin_ia32_pause();
    }
    return true;
}

void calibrate_timer() {
    reg(kTimerDivideRegister) = kTimerDivideBy16;
    reg(kTimerVectorRegister) = kMasked | kTimerVector;
    const uint64_t start = nanoseconds();
    reg(kTimerInitialCount) = 0xFFFF'FFFF;
    wait_nanoseconds(kCalibrationNanoseconds);
    const uint32_t remaining = reg(kTimerCurrentCount);
    const uint64_t elapsed = nanoseconds() - start;
    reg(kTimerInitialCount) = 0;
    const uint64_t counted = 0xFFFF'FFFFu - remaining;
    const uint64_t hz = counted * 1'000'000'000 / (elapsed != 0 ? elapsed : 1);
    // Two CPUs may calibrate at once, each its own timer: either measurement will do.
    __atomic_store_n(&g_timer_hz, hz != 0 ? hz : 1, __ATOMIC_RELEASE);
}

} // namespace

uint64_t local_apic_base() {
    return g_base;
}

bool has_local_apic() {
    return g_base != 0;
}

void init_interrupt_controllers() {
    if ((cpuid(1).edx & kCpuidApic) != 0) {
        g_base = read_msr(kApicBaseMsr) & kApicBaseMask;
    }
    remap_and_mask_pics();
}

void enable_local_apic() {
    if (!has_local_apic()) {
        return;
    }
    reg(kTaskPriority) = 0;
    reg(kTimerVectorRegister) = kMasked | kTimerVector;
    reg(kSpuriousVectorRegister) = kApicSoftwareEnable | kSpuriousVector;
}

uint32_t local_apic_id() {
    return has_local_apic() ? reg(kId) >> 24 : 0;
}

bool send_init_startup(uint32_t apic_id, uint8_t start_page) {
    if (!has_local_apic() || !send_ipi(apic_id, kDeliveryInit | kLevelAssert)) {
        return false;
    }
    wait_nanoseconds(kAfterInit);
    for (int i = 0; i < 2; ++i) {
        if (!send_ipi(apic_id, kDeliveryStartup | kLevelAssert | start_page)) {
            return false;
        }
        wait_nanoseconds(kAfterStartup);
    }
    return true;
}

bool send_wake(uint32_t apic_id) {
    return has_local_apic() && send_ipi(apic_id, kLevelAssert | kWakeVector);
}

bool send_nmi(uint32_t apic_id) {
    return has_local_apic() && send_ipi(apic_id, kDeliveryNmi | kLevelAssert);
}

void start_local_timer(uint32_t hz) {
    if (!has_local_apic()) {
        return;
    }
    if (__atomic_load_n(&g_timer_hz, __ATOMIC_ACQUIRE) == 0) {
        calibrate_timer();
    }
    const uint64_t count = g_timer_hz / (hz != 0 ? hz : 1);
    reg(kTimerDivideRegister) = kTimerDivideBy16;
    reg(kTimerVectorRegister) = kTimerVector; // one-shot
    reg(kTimerInitialCount) = static_cast<uint32_t>(count == 0            ? 1
                                                    : count > 0xFFFF'FFFF ? 0xFFFF'FFFF
                                                                          : count);
}

// The initial count keeps the value last written: writing it again starts a new count; 0 (a
// stopped timer) starts nothing.
void rearm_local_timer() {
    if (!has_local_apic()) {
        return;
    }
    const uint32_t count = reg(kTimerInitialCount);
    if (count != 0) {
        reg(kTimerInitialCount) = count;
    }
}

void stop_local_timer() {
    if (!has_local_apic()) {
        return;
    }
    reg(kTimerVectorRegister) = kMasked | kTimerVector;
    reg(kTimerInitialCount) = 0;
}

void end_of_interrupt() {
    if (has_local_apic()) {
        reg(kEndOfInterrupt) = 0;
    }
}

} // namespace bedrock::arch::x86_64
