// SPDX-License-Identifier: MIT
/* Entry stubs of the device interrupts (arch/x86_64/local_apic.h's vectors) and of the NMI
 * (vector 2, which carries TLB shootdowns), which return to the interrupted code. Each saves
 * every general register (the kernel has no FP/SIMD state: it is built with -mno-sse -mno-mmx),
 * clears DF as the ABI expects at a call, calls its C++ handler (cpu.cpp; a device interrupt's
 * sends the EOI), restores and returns with iretq. The spurious-interrupt vector needs no EOI
 * and returns at once. */

#include "arch/x86_64/general_registers.h"

.macro interrupt_stub name, handler
    .p2align 4
    .global \name
\name:
    push_general_registers
    cld
    mov %rsp, %rbx                            /* callee-saved: the stack before alignment */
    and $-16, %rsp
    call \handler
    mov %rbx, %rsp
    pop_general_registers
    iretq
.endm

    .text
    interrupt_stub x86_64_timer_stub, x86_64_timer_interrupt
    interrupt_stub x86_64_wake_stub, x86_64_wake_interrupt
    interrupt_stub x86_64_nmi_stub, x86_64_nmi

    .p2align 4
    .global x86_64_spurious_stub
x86_64_spurious_stub:
    iretq

    .section .note.GNU-stack, "", @progbits
