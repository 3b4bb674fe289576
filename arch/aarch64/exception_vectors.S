// SPDX-License-Identifier: MIT
/* The EL1 exception vector table: 16 slots (current EL with SP0 / SPx, lower EL AArch64 /
 * AArch32; each synchronous, IRQ, FIQ, SError). The kernel runs at EL1h, so the only interrupt
 * it takes is slot 5 (IRQ, current EL with SPx): that slot saves every general register, ELR_EL1
 * and SPSR_EL1 on the interrupted stack, calls aarch64_irq() (timer.cpp) and returns with eret.
 * (No FP/SIMD registers: boot.S leaves them trapped on every CPU.)
 * Every other slot saves x0/x1, puts its slot number in x0 and branches to a common path that
 * saves x2-x30 and calls aarch64_exception(slot, frame), which reports and never returns - but
 * for a translation fault in another CPU's block split window, where it returns and the path
 * restores every register and retries the access with eret (ELR_EL1 and SPSR_EL1 are as the
 * exception left them: nothing in between takes one). Frame layout: x0..x30, then the interrupted SP (ExceptionFrame in
 * exceptions.cpp). Both paths use the current stack, so each CPU's exceptions run on its own
 * kernel stack. */

#define FRAME_SIZE (32 * 8)
#define IRQ_FRAME_SIZE (34 * 8)                /* x0..x30, ELR_EL1, SPSR_EL1, padding */

/* x2..x29 into the frame at sp (x0/x1 are saved by the slot, x30 with what follows it). */
.macro save_x2_to_x29
    stp x2, x3, [sp, #16]
    stp x4, x5, [sp, #32]
    stp x6, x7, [sp, #48]
    stp x8, x9, [sp, #64]
    stp x10, x11, [sp, #80]
    stp x12, x13, [sp, #96]
    stp x14, x15, [sp, #112]
    stp x16, x17, [sp, #128]
    stp x18, x19, [sp, #144]
    stp x20, x21, [sp, #160]
    stp x22, x23, [sp, #176]
    stp x24, x25, [sp, #192]
    stp x26, x27, [sp, #208]
    stp x28, x29, [sp, #224]
.endm

/* The same registers back from the frame. */
.macro restore_x2_to_x29
    ldp x2, x3, [sp, #16]
    ldp x4, x5, [sp, #32]
    ldp x6, x7, [sp, #48]
    ldp x8, x9, [sp, #64]
    ldp x10, x11, [sp, #80]
    ldp x12, x13, [sp, #96]
    ldp x14, x15, [sp, #112]
    ldp x16, x17, [sp, #128]
    ldp x18, x19, [sp, #144]
    ldp x20, x21, [sp, #160]
    ldp x22, x23, [sp, #176]
    ldp x24, x25, [sp, #192]
    ldp x26, x27, [sp, #208]
    ldp x28, x29, [sp, #224]
.endm

.macro vector_slot number
    .p2align 7
    sub sp, sp, #FRAME_SIZE
    stp x0, x1, [sp, #0]
    mov x0, #\number
    b exception_common
.endm

    .text
    .p2align 11
    .global aarch64_exception_vectors
aarch64_exception_vectors:
    vector_slot 0
    vector_slot 1
    vector_slot 2
    vector_slot 3
    vector_slot 4
    .p2align 7
    sub sp, sp, #IRQ_FRAME_SIZE                /* slot 5: IRQ */
    stp x0, x1, [sp, #0]
    b irq_common
    vector_slot 6
    vector_slot 7
    vector_slot 8
    vector_slot 9
    vector_slot 10
    vector_slot 11
    vector_slot 12
    vector_slot 13
    vector_slot 14
    vector_slot 15

exception_common:
    save_x2_to_x29
    add x1, sp, #FRAME_SIZE                /* the SP before the exception */
    stp x30, x1, [sp, #240]
    mov x1, sp
    bl aarch64_exception
    restore_x2_to_x29
    ldr x30, [sp, #240]
    ldp x0, x1, [sp, #0]
    add sp, sp, #FRAME_SIZE
    eret

irq_common:
    save_x2_to_x29
    mrs x0, elr_el1
    mrs x1, spsr_el1
    stp x30, x0, [sp, #240]
    str x1, [sp, #256]
    bl aarch64_irq
    ldr x1, [sp, #256]
    ldp x30, x0, [sp, #240]
    msr spsr_el1, x1
    msr elr_el1, x0
    restore_x2_to_x29
    ldp x0, x1, [sp, #0]
    add sp, sp, #IRQ_FRAME_SIZE
    eret
