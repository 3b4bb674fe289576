// SPDX-License-Identifier: MIT
/* arch_save_context / arch_resume_context for kernel/trap.h (SavedContext in kernel/arch.h):
 * the System V callee-saved registers, the stack pointer the caller will have after the call
 * returns, and its return address. */

    .text
    .global arch_save_context
arch_save_context:                        /* rdi = SavedContext* */
    mov %rbx, 0(%rdi)
    mov %rbp, 8(%rdi)
    mov %r12, 16(%rdi)
    mov %r13, 24(%rdi)
    mov %r14, 32(%rdi)
    mov %r15, 40(%rdi)
    lea 8(%rsp), %rax                     /* the caller's rsp once this returns */
    mov %rax, 48(%rdi)
    mov (%rsp), %rax                      /* the return address */
    mov %rax, 56(%rdi)
    xor %eax, %eax
    ret

    .global arch_resume_context
arch_resume_context:                      /* rdi = SavedContext*; returns 1 from the save */
    mov 0(%rdi), %rbx
    mov 8(%rdi), %rbp
    mov 16(%rdi), %r12
    mov 24(%rdi), %r13
    mov 32(%rdi), %r14
    mov 40(%rdi), %r15
    mov 48(%rdi), %rsp
    mov $1, %eax
    jmp *56(%rdi)

    .section .note.GNU-stack, "", @progbits
