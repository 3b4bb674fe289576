// x86-64 CPU exceptions: the IDT for vectors 0-31 and the handler that turns the stub's saved
// state (ExceptionFrame) into a portable FaultReport. Every exception is fatal here: the report
// is printed and the run ends with failure, so a fault never hangs.
#include <stddef.h>
#include <stdint.h>

#include "arch/x86_64/entry.h"
#include "kernel/fault.h"

namespace bedrock::arch::x86_64 {
namespace {

// What exception_stubs.S leaves on the stack, lowest address first.
struct ExceptionFrame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector;
    uint64_t error_code;
    uint64_t rip, cs, rflags, rsp, ss; // pushed by the CPU
};
static_assert(sizeof(ExceptionFrame) == 22 * 8);

struct [[gnu::packed]] IdtGate {
    uint16_t offset_low;
    uint16_t selector;
    uint8_t ist;
    uint8_t type_attributes;
    uint16_t offset_middle;
    uint32_t offset_high;
    uint32_t reserved;
};
static_assert(sizeof(IdtGate) == 16);

struct [[gnu::packed]] IdtPointer {
    uint16_t limit;
    uint64_t base;
};

constexpr size_t kExceptionVectors = 32;
constexpr uint16_t kKernelCodeSelector = 0x08;
constexpr uint8_t kInterruptGate = 0x8E; // present, ring 0, 64-bit interrupt gate
constexpr uint64_t kPageFaultVector = 14;

constexpr const char* kExceptionNames[kExceptionVectors] = {"divide error",
                                                            "debug",
                                                            "non-maskable interrupt",
                                                            "breakpoint",
                                                            "overflow",
                                                            "bound range exceeded",
                                                            "invalid opcode",
                                                            "device not available",
                                                            "double fault",
                                                            "coprocessor segment overrun",
                                                            "invalid TSS",
                                                            "segment not present",
                                                            "stack-segment fault",
                                                            "general protection fault",
                                                            "page fault",
                                                            "reserved (15)",
                                                            "x87 floating-point error",
                                                            "alignment check",
                                                            "machine check",
                                                            "SIMD floating-point error",
                                                            "virtualization exception",
                                                            "control protection exception",
                                                            "reserved (22)",
                                                            "reserved (23)",
                                                            "reserved (24)",
                                                            "reserved (25)",
                                                            "reserved (26)",
                                                            "reserved (27)",
                                                            "hypervisor injection exception",
                                                            "VMM communication exception",
                                                            "security exception",
                                                            "reserved (31)"};

constexpr const char* kRegisterNames[] = {"rax", "rbx", "rcx", "rdx", "rsi",    "rdi",
                                          "rbp", "r8",  "r9",  "r10", "r11",    "r12",
                                          "r13", "r14", "r15", "cs",  "rflags", "ss"};
constexpr size_t kRegisterCount = sizeof(kRegisterNames) / sizeof(kRegisterNames[0]);

IdtGate g_idt[kExceptionVectors];

uint64_t read_cr2() {
    uint64_t value;
    __asm__ volatile("mov %%cr2, %0" : "=r"(value));
    return value;
}

} // namespace
} // namespace bedrock::arch::x86_64

extern "C" const uint64_t x86_64_exception_stubs[bedrock::arch::x86_64::kExceptionVectors];
extern "C" [[noreturn]] void x86_64_exception(const bedrock::arch::x86_64::ExceptionFrame* frame);

extern "C" void x86_64_exception(const bedrock::arch::x86_64::ExceptionFrame* frame) {
    using namespace bedrock::arch::x86_64;
    const uint64_t registers[kRegisterCount] = {
        frame->rax, frame->rbx, frame->rcx, frame->rdx, frame->rsi,    frame->rdi,
        frame->rbp, frame->r8,  frame->r9,  frame->r10, frame->r11,    frame->r12,
        frame->r13, frame->r14, frame->r15, frame->cs,  frame->rflags, frame->ss};
    const bool page_fault = frame->vector == kPageFaultVector;
    bedrock::kernel::FaultReport report{};
    report.description =
        frame->vector < kExceptionVectors ? kExceptionNames[frame->vector] : "unknown vector";
    report.vector = frame->vector;
    report.syndrome = frame->error_code;
    report.address = page_fault ? read_cr2() : 0;
    report.address_valid = page_fault;
    report.pc = frame->rip;
    report.sp = frame->rsp;
    report.register_names = kRegisterNames;
    report.registers = registers;
    report.register_count = kRegisterCount;
    bedrock::kernel::report_fault(report);
}

namespace bedrock::arch::x86_64 {

void init_exceptions() {
    for (size_t vector = 0; vector < kExceptionVectors; ++vector) {
        const uint64_t handler = x86_64_exception_stubs[vector];
        g_idt[vector] = IdtGate{static_cast<uint16_t>(handler),
                                kKernelCodeSelector,
                                0,
                                kInterruptGate,
                                static_cast<uint16_t>(handler >> 16),
                                static_cast<uint32_t>(handler >> 32),
                                0};
    }
    const IdtPointer pointer{sizeof(g_idt) - 1, reinterpret_cast<uint64_t>(g_idt)};
    __asm__ volatile("lidt %0" : : "m"(pointer));
}

} // namespace bedrock::arch::x86_64
