// SPDX-License-Identifier: MIT
// AArch64 exceptions: turns what exception_vectors.S saved into a portable FaultReport.
// One fault is not one: a translation fault in the window of another CPU's live block split
// (break-before-make, kernel/page_table.h) returns, and the vector code retries the access.
// Every other exception is fatal here: it is reported and the run ends with failure, so a fault
// never hangs - unless a test catches it (kernel/trap.h), in
// which case report_fault() resumes the test directly from this handler: the exception frame is
// abandoned, which is safe because nothing here runs with interrupts or other state to restore
// (DAIF stays masked, as it always is in this kernel).
#include <stddef.h>
#include <stdint.h>

#include "arch/aarch64/aarch64.h"
#include "kernel/fault.h"

namespace {

struct ExceptionFrame {
    uint64_t x[31];
    uint64_t sp;
};
static_assert(sizeof(ExceptionFrame) == 32 * 8);

constexpr const char* kSlotNames[16] = {"synchronous (SP0)",
                                        "IRQ (SP0)",
                                        "FIQ (SP0)",
                                        "SError (SP0)",
                                        "synchronous",
                                        "IRQ",
                                        "FIQ",
                                        "SError",
                                        "synchronous (EL0)",
                                        "IRQ (EL0)",
                                        "FIQ (EL0)",
                                        "SError (EL0)",
                                        "synchronous (EL0 AArch32)",
                                        "IRQ (EL0 AArch32)",
                                        "FIQ (EL0 AArch32)",
                                        "SError (EL0 AArch32)"};

// ESR_EL1.EC values this kernel can meet, and whether FAR_EL1 holds the faulting address.
struct ExceptionClass {
    uint32_t code;
    const char* name;
    bool address_valid;
};
constexpr ExceptionClass kClasses[] = {
    {0x00, "unknown reason", false},
    {0x01, "WFI/WFE trapped", false},
    {0x07, "FP/SIMD access trapped", false},
    {0x0E, "illegal execution state", false},
    {0x15, "SVC", false},
    {0x18, "system register access trapped", false},
    {0x20, "instruction abort (lower EL)", true},
    {0x21, "instruction abort", true},
    {0x22, "PC alignment fault", true},
    {0x24, "data abort (lower EL)", true},
    {0x25, "data abort", true},
    {0x26, "SP alignment fault", false},
    {0x2F, "SError", false},
    {0x3C, "BRK instruction", false},
};

constexpr size_t kRegisterCount = 31;
constexpr const char* kRegisterNames[kRegisterCount] = {
    "x0",  "x1",  "x2",  "x3",  "x4",  "x5",  "x6",  "x7",  "x8",  "x9",  "x10",
    "x11", "x12", "x13", "x14", "x15", "x16", "x17", "x18", "x19", "x20", "x21",
    "x22", "x23", "x24", "x25", "x26", "x27", "x28", "x29", "x30"};

constexpr uint64_t kSynchronousSlotMask = 0x3; // slot % 4 == 0: synchronous
constexpr uint32_t kInstructionAbortLower = 0x20;
constexpr uint32_t kInstructionAbort = 0x21;
constexpr uint32_t kDataAbortLower = 0x24;
constexpr uint32_t kDataAbort = 0x25;
constexpr uint64_t kWriteNotRead = uint64_t{1} << 6; // ESR ISS.WnR for data aborts
// ISS.DFSC / IFSC: 0b0001LL is a translation fault at level LL.
constexpr uint64_t kFaultStatusClassMask = 0x3C;
constexpr uint64_t kTranslationFault = 0x04;

bedrock::kernel::FaultAccess access_of(uint32_t exception_class, uint64_t esr) {
    using bedrock::kernel::FaultAccess;
    if (exception_class == kDataAbort || exception_class == kDataAbortLower) {
        return (esr & kWriteNotRead) != 0 ? FaultAccess::Write : FaultAccess::Read;
    }
    if (exception_class == kInstructionAbort || exception_class == kInstructionAbortLower) {
        return FaultAccess::Execute;
    }
    return FaultAccess::Unknown;
}

} // namespace

// Returns only for a fault in a split's window (the vector code then retries the access).
extern "C" void aarch64_exception(uint64_t slot, const ExceptionFrame* frame);

extern "C" void aarch64_exception(uint64_t slot, const ExceptionFrame* frame) {
    uint64_t esr;
    uint64_t far;
    uint64_t elr;
    __asm__ volatile("mrs %0, esr_el1" : "=r"(esr));
    __asm__ volatile("mrs %0, far_el1" : "=r"(far));
    __asm__ volatile("mrs %0, elr_el1" : "=r"(elr));
    const bool synchronous = (slot & kSynchronousSlotMask) == 0;
    const auto exception_class = static_cast<uint32_t>((esr >> 26) & 0x3F);
    if (synchronous && (exception_class == kDataAbort || exception_class == kInstructionAbort) &&
        (esr & kFaultStatusClassMask) == kTranslationFault &&
        bedrock::arch::aarch64::fault_in_split_window(far)) {
        return;
    }
    const char* description = kSlotNames[slot % 16];
    bool address_valid = false;
    if (synchronous) {
        description = "synchronous exception";
        for (const ExceptionClass& known : kClasses) {
            if (known.code == exception_class) {
                description = known.name;
                address_valid = known.address_valid;
            }
        }
    }
    bedrock::kernel::FaultReport report{};
    report.description = description;
    report.vector = slot;
    report.syndrome = esr;
    report.address = far;
    report.address_valid = address_valid;
    report.access =
        synchronous ? access_of(exception_class, esr) : bedrock::kernel::FaultAccess::Unknown;
    report.resumable = true;
    report.pc = elr;
    report.sp = frame->sp;
    report.register_names = kRegisterNames;
    report.registers = frame->x;
    report.register_count = kRegisterCount;
    bedrock::kernel::report_fault(report);
}
