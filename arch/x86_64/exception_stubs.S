// SPDX-License-Identifier: MIT
/* The 32 CPU exception entry stubs. Each pushes a zero in place of the error code when the CPU
 * pushes none, then its vector, then every general register, and calls
 * x86_64_exception(ExceptionFrame*) (arch/x86_64/exceptions.cpp), which reports and never
 * returns. The stack layout built here is ExceptionFrame, lowest address first. */

#include "arch/x86_64/general_registers.h"

.macro exception_stub vector, has_error_code
    .p2align 4
exception_stub_\vector:
    .if \has_error_code == 0
    pushq $0
    .endif
    pushq $\vector
    jmp exception_common
.endm

    .text
    exception_stub 0, 0
    exception_stub 1, 0
    exception_stub 2, 0
    exception_stub 3, 0
    exception_stub 4, 0
    exception_stub 5, 0
    exception_stub 6, 0
    exception_stub 7, 0
    exception_stub 8, 1
    exception_stub 9, 0
    exception_stub 10, 1
    exception_stub 11, 1
    exception_stub 12, 1
    exception_stub 13, 1
    exception_stub 14, 1
    exception_stub 15, 0
    exception_stub 16, 0
    exception_stub 17, 1
    exception_stub 18, 0
    exception_stub 19, 0
    exception_stub 20, 0
    exception_stub 21, 1
    exception_stub 22, 0
    exception_stub 23, 0
    exception_stub 24, 0
    exception_stub 25, 0
    exception_stub 26, 0
    exception_stub 27, 0
    exception_stub 28, 0
    exception_stub 29, 1
    exception_stub 30, 1
    exception_stub 31, 0

exception_common:
    push_general_registers
    mov %rsp, %rdi
    and $-16, %rsp                            /* the ABI's call alignment */
    call x86_64_exception
1:  hlt
    jmp 1b

    .section .rodata
    .p2align 3
    .global x86_64_exception_stubs
x86_64_exception_stubs:
    .irp vector, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad exception_stub_\vector
    .endr

    .section .note.GNU-stack, "", @progbits
