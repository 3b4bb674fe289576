// SPDX-License-Identifier: MIT
/* arch_save_context / arch_resume_context for kernel/trap.h (SavedContext in kernel/arch.h):
 * the AAPCS64 callee-saved general registers x19-x28, the frame record (x29, x30 = the return
 * address) and sp. Kernel code uses no floating point, so d8-d15 need no saving. */

    .text
    .global arch_save_context
arch_save_context:                        /* x0 = SavedContext* */
    stp x19, x20, [x0, #0]
    stp x21, x22, [x0, #16]
    stp x23, x24, [x0, #32]
    stp x25, x26, [x0, #48]
    stp x27, x28, [x0, #64]
    stp x29, x30, [x0, #80]
    mov x1, sp
    str x1, [x0, #96]
    mov w0, #0
    ret

    .global arch_resume_context
arch_resume_context:                      /* x0 = SavedContext*; returns 1 from the save */
    ldp x19, x20, [x0, #0]
    ldp x21, x22, [x0, #16]
    ldp x23, x24, [x0, #32]
    ldp x25, x26, [x0, #48]
    ldp x27, x28, [x0, #64]
    ldp x29, x30, [x0, #80]
    ldr x1, [x0, #96]
    mov sp, x1
    mov w0, #1
    ret
