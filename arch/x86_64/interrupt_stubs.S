/* Entry stubs of the device interrupts (arch/x86_64/local_apic.h's vectors), which return to the
 * interrupted code. The timer stub saves every general register (the kernel has no FP/SIMD
 * state: it is built with -mno-sse -mno-mmx), clears DF as the ABI expects at a call, calls
 * x86_64_timer_interrupt() (cpu.cpp, which calls the tick and sends the EOI), restores and
 * returns with iretq. The spurious-interrupt vector needs no EOI and returns at once. */

    .text
    .p2align 4
    .global x86_64_timer_stub
x86_64_timer_stub:
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    cld
    mov %rsp, %rbx                            /* callee-saved: the stack before alignment */
    and $-16, %rsp
    call x86_64_timer_interrupt
    mov %rbx, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    iretq

    .p2align 4
    .global x86_64_spurious_stub
x86_64_spurious_stub:
    iretq

    .section .note.GNU-stack, "", @progbits
