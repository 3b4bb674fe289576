// SPDX-License-Identifier: MIT
/* Assembler macros for the x86-64 entry stubs (exception_stubs.S, interrupt_stubs.S): every
 * general register pushed in one order, rax first and r15 last, so r15 sits at the lowest
 * address (ExceptionFrame in exceptions.cpp), and popped in the reverse order. */
#pragma once

.macro push_general_registers
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
.endm

.macro pop_general_registers
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
.endm
