// SPDX-License-Identifier: MIT
// x86-64 CPU exceptions: the IDT (shared by every CPU: the 32 CPU exception vectors, and the
// device vectors cpu.cpp installs), each CPU's GDT and TSS whose interrupt stack table gives the
// double fault a stack of its own, and the handler that turns the stub's saved state
// (ExceptionFrame) into a portable FaultReport. Every exception is fatal here: the report is
// printed and the run ends with failure, so a fault never hangs - unless a test catches it
// (kernel/trap.h): report_fault() then resumes the test directly from this handler, abandoning
// the frame (the gate cleared IF; trap.h's callers run with interrupts off). A double fault is
// never resumed: its stack is the IST stack and its cause is lost.
//
// Per CPU: the boot CPU uses boot.S's GDT, g_tss and g_double_fault_stack; each secondary CPU
// gets a CpuDescriptorTables (GDT, TSS, double-fault stack) in memory cpu.cpp allocates for it.
// Every GDT has the same selectors (0x08 code, 0x10 data, 0x18 the CPU's own TSS).
//
// Stack overflow: the boot stack ends at an unmapped guard page (boot.S, paging.cpp). A push into
// it page-faults, delivering that page fault pushes into it again, and the CPU raises a double
// fault, which the IDT sends to the CPU's double-fault stack (IST1) whatever RSP holds, so the
// report still prints.
#include <stddef.h>
#include <stdint.h>

#include "arch/x86_64/entry.h"
#include "arch/x86_64/local_apic.h"
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

// The 64-bit task-state segment: only the interrupt stack table is used.
struct [[gnu::packed]] TaskStateSegment {
    uint32_t reserved0;
    uint64_t privilege_stacks[3];
    uint64_t reserved1;
    uint64_t interrupt_stacks[7]; // IST1..IST7
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t io_map_base; // = the TSS size: no I/O permission bitmap
};
static_assert(sizeof(TaskStateSegment) == 104);
static_assert(offsetof(TaskStateSegment, interrupt_stacks) == 36);

constexpr size_t kExceptionVectors = 32;
constexpr size_t kVectors = 256;
constexpr uint16_t kKernelCodeSelector = 0x08;
constexpr uint16_t kKernelDataSelector = 0x10;
constexpr uint8_t kInterruptGate = 0x8E; // present, ring 0, 64-bit interrupt gate
constexpr uint64_t kDoubleFaultVector = 8;
constexpr uint64_t kPageFaultVector = 14;
constexpr uint64_t kPageFaultWrite = 1 << 1;       // error code: the access was a write
constexpr uint64_t kPageFaultInstruction = 1 << 4; // error code: an instruction fetch
constexpr uint16_t kTssSelector = 0x18;            // x86_64_tss_descriptor in boot.S's GDT
constexpr uint64_t kTssAvailable = 0x89;           // present, 64-bit TSS (available)
constexpr uint8_t kDoubleFaultStackIst = 1;
constexpr size_t kDoubleFaultStackSize = 16384;

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

IdtGate g_idt[kVectors]; // not present (a #NP when raised) unless installed
TaskStateSegment g_tss;
alignas(16) uint8_t g_double_fault_stack[kDoubleFaultStackSize];

uint64_t read_cr2() {
    uint64_t value;
    __asm__ volatile("mov %%cr2, %0" : "=r"(value));
    return value;
}

void clear_cr2() {
    __asm__ volatile("mov %0, %%cr2" : : "r"(uint64_t{0}));
}

bool in_boot_stack_guard(uint64_t address) {
    const auto guard = reinterpret_cast<uint64_t>(x86_64_boot_stack_guard);
    return address - guard < kBootStackGuardSize;
}

// A secondary CPU's own descriptor tables: boot.S's GDT layout, a TSS, a double-fault stack.
struct CpuDescriptorTables {
    alignas(16) uint8_t double_fault_stack[kDoubleFaultStackSize];
    uint64_t gdt[5]; // null, code 0x08, data 0x10, TSS 0x18 (two slots)
    TaskStateSegment tss;
};
static_assert(sizeof(CpuDescriptorTables) <= kCpuDescriptorTablesSize);

constexpr uint64_t kKernelCode = 0x00AF9B000000FFFF; // as boot.S's GDT
constexpr uint64_t kKernelData = 0x00CF93000000FFFF;

struct [[gnu::packed]] GdtPointer {
    uint16_t limit;
    uint64_t base;
};

// Points the GDT's TSS slot `descriptor` at `tss` (base and limit are split across the 16-byte
// descriptor) with `double_fault_stack_top` as IST1, and loads the task register, which makes
// the interrupt stack table live.
void load_task_state(TaskStateSegment& tss, uint64_t* descriptor,
                     const uint8_t* double_fault_stack_top) {
    tss.interrupt_stacks[kDoubleFaultStackIst - 1] =
        reinterpret_cast<uint64_t>(double_fault_stack_top);
    tss.io_map_base = sizeof(TaskStateSegment);
    const auto base = reinterpret_cast<uint64_t>(&tss);
    const uint64_t limit = sizeof(TaskStateSegment) - 1;
    descriptor[0] = (limit & 0xFFFF) | (base & 0xFF'FFFF) << 16 | kTssAvailable << 40 |
                    (limit >> 16 & 0xF) << 48 | (base >> 24 & 0xFF) << 56;
    descriptor[1] = base >> 32;
    __asm__ volatile("ltr %0" : : "r"(kTssSelector) : "memory");
}

void load_idt() {
    const IdtPointer pointer{sizeof(g_idt) - 1, reinterpret_cast<uint64_t>(g_idt)};
    __asm__ volatile("lidt %0" : : "m"(pointer));
}

} // namespace
} // namespace bedrock::arch::x86_64

extern "C" const uint64_t x86_64_exception_stubs[bedrock::arch::x86_64::kExceptionVectors];
extern "C" const char x86_64_nmi_stub[];
extern "C" [[noreturn]] void x86_64_exception(const bedrock::arch::x86_64::ExceptionFrame* frame);

extern "C" void x86_64_exception(const bedrock::arch::x86_64::ExceptionFrame* frame) {
    using namespace bedrock::arch::x86_64;
    const uint64_t registers[kRegisterCount] = {
        frame->rax, frame->rbx, frame->rcx, frame->rdx, frame->rsi,    frame->rdi,
        frame->rbp, frame->r8,  frame->r9,  frame->r10, frame->r11,    frame->r12,
        frame->r13, frame->r14, frame->r15, frame->cs,  frame->rflags, frame->ss};
    // CR2 holds the address of the last page fault: the faulting access for a page fault. Every
    // page fault that is delivered either ends the run or, caught by a test, leaves CR2 cleared
    // here, so at a double fault a non-zero CR2 can only be the page fault whose delivery failed
    // (the push into the guard page, for a stack overflow).
    const bool page_fault = frame->vector == kPageFaultVector;
    const uint64_t cr2 = read_cr2();
    if (page_fault) {
        clear_cr2();
    }
    const bool double_fault_from_page_fault = frame->vector == kDoubleFaultVector && cr2 != 0;
    bedrock::kernel::FaultReport report{};
    report.description =
        frame->vector < kExceptionVectors ? kExceptionNames[frame->vector] : "unknown vector";
    if ((page_fault || double_fault_from_page_fault) && in_boot_stack_guard(cr2)) {
        report.description = page_fault ? "page fault: stack overflow (boot stack guard page)"
                                        : "double fault: stack overflow (boot stack guard page)";
    }
    report.vector = frame->vector;
    report.syndrome = frame->error_code;
    report.address = page_fault || double_fault_from_page_fault ? cr2 : 0;
    report.address_valid = page_fault || double_fault_from_page_fault;
    using bedrock::kernel::FaultAccess;
    report.access = !page_fault                                        ? FaultAccess::Unknown
                    : (frame->error_code & kPageFaultInstruction) != 0 ? FaultAccess::Execute
                    : (frame->error_code & kPageFaultWrite) != 0       ? FaultAccess::Write
                                                                       : FaultAccess::Read;
    report.resumable = frame->vector != kDoubleFaultVector;
    report.pc = frame->rip;
    report.sp = frame->rsp;
    report.register_names = kRegisterNames;
    report.registers = registers;
    report.register_count = kRegisterCount;
    bedrock::kernel::report_fault(report);
}

namespace bedrock::arch::x86_64 {

void set_interrupt_gate(uint8_t vector, uint64_t handler) {
    g_idt[vector] = IdtGate{static_cast<uint16_t>(handler),
                            kKernelCodeSelector,
                            vector == kDoubleFaultVector ? kDoubleFaultStackIst : uint8_t{0},
                            kInterruptGate,
                            static_cast<uint16_t>(handler >> 16),
                            static_cast<uint32_t>(handler >> 32),
                            0};
}

void init_exceptions() {
    load_task_state(g_tss, x86_64_tss_descriptor, g_double_fault_stack + kDoubleFaultStackSize);
    for (size_t vector = 0; vector < kExceptionVectors; ++vector) {
        set_interrupt_gate(static_cast<uint8_t>(vector), x86_64_exception_stubs[vector]);
    }
    // NMIs carry TLB shootdowns between CPUs: every NMI flushes the TLB and returns (cpu.cpp).
    set_interrupt_gate(kNmiVector, reinterpret_cast<uint64_t>(x86_64_nmi_stub));
    load_idt();
}

void init_secondary_exceptions(void* tables_memory) {
    auto& tables = *static_cast<CpuDescriptorTables*>(tables_memory);
    tables = CpuDescriptorTables{};
    tables.gdt[1] = kKernelCode;
    tables.gdt[2] = kKernelData;
    const GdtPointer gdt{sizeof(tables.gdt) - 1, reinterpret_cast<uint64_t>(tables.gdt)};
    // The selectors stay those the trampoline left (its GDT has the same code and data layout);
    // the data segments are reloaded from this GDT. GS is not touched: its base is the CPU's
    // per-CPU pointer.
    __asm__ volatile("lgdt %0\n\t"
                     "mov %1, %%ds\n\t"
                     "mov %1, %%es\n\t"
                     "mov %1, %%ss"
                     :
                     : "m"(gdt), "r"(uint32_t{kKernelDataSelector})
                     : "memory");
    load_task_state(tables.tss, &tables.gdt[3], tables.double_fault_stack + kDoubleFaultStackSize);
    load_idt();
}

} // namespace bedrock::arch::x86_64
