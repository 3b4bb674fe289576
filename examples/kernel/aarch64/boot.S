/* SPDX-License-Identifier: MIT */
/* The example kernel's AArch64 entry (QEMU virt, cortex-a57). QEMU's -kernel loads this ELF
 * at its link address and starts it at EL1 with the MMU off; x0 holds the device tree's
 * address, or 0 for a plain ELF (the device tree is then at the start of RAM). The stub sets
 * the stack, zeroes .bss and calls machine_start(device tree), which never returns.
 * machine_semihosting_exit(code) ends the run through semihosting (SYS_EXIT). */
    .section .text.boot, "ax"
    .global _start
_start:
    adrp x1, stack_top
    add x1, x1, :lo12:stack_top
    mov sp, x1
    adrp x1, __bss_start
    add x1, x1, :lo12:__bss_start
    adrp x2, __bss_end
    add x2, x2, :lo12:__bss_end
1:  cmp x1, x2
    b.hs 2f
    str xzr, [x1], #8
    b 1b
2:  bl machine_start
3:  wfe
    b 3b

    .text
    .global machine_semihosting_exit
machine_semihosting_exit:
    /* SYS_EXIT (0x18) with x1 -> { ADP_Stopped_ApplicationExit, code } */
    sub sp, sp, #16
    mov x1, #0x0026
    movk x1, #0x2, lsl #16
    stp x1, x0, [sp]
    mov x1, sp
    mov x0, #0x18
    hlt #0xf000
4:  wfe
    b 4b

    .section .bss
    .align 12
    .skip 16384
stack_top:
