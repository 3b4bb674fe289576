// SPDX-License-Identifier: MIT
/* AArch64 entry (QEMU virt, -kernel with an ELF): x0 = device tree or 0.
 *
 * Drops from EL2 to EL1 if entered at EL2, or from EL3 to Secure EL1 if entered at EL3 (where
 * every CPU but MPIDR 0 parks, and aarch64_secure_el1 records it), zeroes .bss, builds an early identity map
 * (0-1 GiB Device-nGnRnE for virt's MMIO, 1-2 GiB Normal write-back for the kernel, the device
 * tree and the first RAM), turns the MMU and caches on - before any C++, because with the MMU
 * off every data access is Device memory (unaligned accesses fault, exclusives do not work) -
 * installs the exception vectors and calls aarch64_entry(device tree).
 * arch::map_memory() later replaces the early map with one covering exactly the RAM the device
 * tree describes.
 *
 * Before any memory is written (the stack and .bss may lie outside RAM), the boot CPU reads the
 * image's last word with early vectors installed: on virt, RAM is one range from 0x40000000, so
 * if that read aborts (no memory there), RAM ends inside the image, and the CPU prints
 * "bedrock: RAM ends below the end of the kernel image at 0x...; cannot boot" on the PL011 and
 * exits through semihosting with the failure code (3) instead of hanging in a fault with no
 * vectors (these early vectors stay until the real ones, and name any other exception before
 * them by its address: "bedrock: an exception before the exception vectors, at 0x...; cannot
 * boot"). An image that lies wholly outside RAM (-m 2M: RAM ends at 0x40200000, where the image
 * starts) never runs at all: nothing here can report it.
 *
 * Secondary CPUs enter at aarch64_secondary_start (PSCI CPU_ON, see cpu.cpp) with the MMU off and
 * x0 = their kernel::CpuLocal: the same EL2 -> EL1 drop, then the boot CPU's final MMU settings
 * (aarch64_secondary_mmu, written and cleaned to memory by start_cpu()), the vectors, and
 * aarch64_secondary_entry(cpu).
 *
 * Every CPU leaves here with: EL1h, DAIF masked, CPACR_EL1 = 0 (FP/SIMD traps: the kernel is
 * built without them and the IRQ path saves only general registers), TPIDR_EL1 = its CpuLocal
 * or 0 on the boot CPU (arch::cpu_local() reads null until set_cpu_local()). */

#define EARLY_NORMAL_BASE 0x40000000
#define BOOT_STACK_SIZE 65536
#define MAIR_VALUE 0xFF00                  /* attr 0: Device-nGnRnE; attr 1: Normal WB RW-alloc */
#define BLOCK_DEVICE ((1 << 10) | (0 << 2) | 1 | (3 << 53))   /* AF, attr 0, block, XN */
#define BLOCK_NORMAL ((1 << 10) | (3 << 8) | (1 << 2) | 1)    /* AF, inner shareable, attr 1 */
/* T0SZ = 16 (48-bit VA), inner/outer WB-WA walks, inner shareable, 4 KiB granule, no TTBR1. */
#define TCR_VALUE (16 | (1 << 8) | (1 << 10) | (3 << 12) | (1 << 23))
#define CPU_LOCAL_STACK_TOP 24             /* offsetof(kernel::CpuLocal, stack_top), cpu.cpp */
#define PL011_BASE 0x09000000              /* virt's UART0, as arch/aarch64/console.cpp */
#define PL011_FLAGS 0x18
#define PL011_TRANSMIT_FULL_BIT 5
#define SEMIHOSTING_SYS_EXIT 0x18

/* From EL`el` (2 or 3), once it has set its own controls: opens the GIC's system registers
 * (GICv3) to EL1, then continues at EL1h at `target` with DAIF masked. Clobbers x1. */
.macro eret_to_el1 el, target
    mrs x1, id_aa64pfr0_el1
    ubfx x1, x1, #24, #4                   /* GIC: system register interface implemented */
    cbz x1, 1f
    mov x1, #0x9                           /* ICC_SRE_ELn: Enable (EL1 may use SRE), SRE */
    msr icc_sre_el\el, x1
    isb
1:  mov x1, #0x3c5                         /* EL1h, DAIF masked */
    msr spsr_el\el, x1
    adr x1, \target
    msr elr_el\el, x1
    eret
.endm

/* At EL2: make EL1 AArch64 with the timers and (GICv3) the GIC's system registers accessible,
 * then continue at EL1 at `target` with DAIF masked. At EL1: fall through to `target`.
 * Clobbers x1. */
.macro enter_el1 target
    mrs x1, CurrentEL
    lsr x1, x1, #2
    cmp x1, #2
    b.ne \target
    mov x1, #(1 << 31)                     /* HCR_EL2.RW */
    msr hcr_el2, x1
    mrs x1, cnthctl_el2
    orr x1, x1, #3                         /* EL1PCTEN, EL1PCEN */
    msr cnthctl_el2, x1
    msr cntvoff_el2, xzr
    eret_to_el1 2, \target
.endm

    .section .text.boot, "ax"
    .global _start
_start:
    mov x20, x0                            /* the device tree pointer, kept across set-up */
    mov x21, xzr                           /* 1 once dropped from EL3 to Secure EL1 */
    mrs x1, CurrentEL
    lsr x1, x1, #2
    cmp x1, #3
    b.ne not_at_el3
    /* EL3: no firmware ran before the kernel, and every CPU may have come out of reset here
     * (QEMU's virt,secure=on starts each one at the ELF entry and offers no PSCI). The CPU with
     * MPIDR affinity 0 boots; any other parks for good. The boot CPU goes on in Secure EL1
     * (lower levels AArch64, nothing routed or trapped to EL3, GICv3 system registers open to
     * EL1): a non-secure EL1 would need EL3 to move the GIC's interrupts into group 1 first. */
    mrs x1, mpidr_el1
    ldr x2, =0xFF00FFFFFF                  /* Aff3, Aff2..Aff0 */
    tst x1, x2
    b.ne park_at_el3
    mov x1, #((1 << 10) | (3 << 4))        /* SCR_EL3: RW, RES1 bits; NS, IRQ, FIQ, EA clear */
    msr scr_el3, x1
    msr cptr_el3, xzr
    mov x21, #1
    eret_to_el1 3, at_el1
park_at_el3:                               /* interrupts masked since reset: wfi sleeps, where */
    wfi                                    /* QEMU runs wfe as a yield and the CPU would spin */
    b park_at_el3

not_at_el3:
    enter_el1 at_el1

at_el1:
    msr daifset, #0xf
    /* The image's last word must be RAM: a read that aborts goes to image_not_in_ram. */
    ldr x1, =image_probe_vectors
    msr vbar_el1, x1
    isb
    ldr x1, =(__kernel_end - 8)
image_probe:
    ldr x2, [x1]
    ldr x1, =arch_boot_stack_top
    mov sp, x1
    msr tpidr_el1, xzr
    msr cpacr_el1, xzr

    /* Zero .bss with aligned 8-byte stores (safe with the MMU off). */
    ldr x1, =__bss_start
    ldr x2, =__bss_end
1:  cmp x1, x2
    b.hs 2f
    str xzr, [x1], #8
    b 1b
2:
    ldr x1, =aarch64_secure_el1
    str w21, [x1]
    /* L0[0] -> L1; L1[0] = 0-1 GiB Device; L1[1] = 1-2 GiB Normal. */
    ldr x1, =early_level0
    ldr x2, =early_level1
    orr x3, x2, #3                         /* table descriptor */
    str x3, [x1]
    ldr x3, =BLOCK_DEVICE
    str x3, [x2]
    ldr x3, =(EARLY_NORMAL_BASE | BLOCK_NORMAL)
    str x3, [x2, #8]

    ldr x3, =MAIR_VALUE
    msr mair_el1, x3
    mrs x3, id_aa64mmfr0_el1
    and x3, x3, #0x7                       /* PARange -> TCR.IPS */
    ldr x4, =TCR_VALUE
    orr x4, x4, x3, lsl #32
    msr tcr_el1, x4
    msr ttbr0_el1, x1
    isb
    tlbi vmalle1
    dsb nsh
    isb
    mrs x3, sctlr_el1
    orr x3, x3, #(1 << 0)                  /* M: MMU on */
    orr x3, x3, #(1 << 2)                  /* C: data cache */
    orr x3, x3, #(1 << 12)                 /* I: instruction cache */
    bic x3, x3, #(1 << 1)                  /* A: no alignment checks */
    msr sctlr_el1, x3
    isb

    ldr x1, =aarch64_exception_vectors
    msr vbar_el1, x1
    isb
    mov x0, x20
    mov x29, xzr                           /* the outermost frame for backtraces */
    bl aarch64_entry
3:  wfe
    b 3b

/* Reached through image_probe_vectors: the read of the image's last word aborted - or, if the
 * exception came from anywhere else, early boot code failed before the real vectors. */
image_not_in_ram:
    mrs x19, elr_el1
    adr x1, image_probe
    cmp x19, x1
    b.ne early_exception
    adr x0, ram_ends_message
    bl print_string
    ldr x0, =__kernel_end
    bl print_hex
    b exit_with_failure
early_exception:
    adr x0, early_exception_message
    bl print_string
    mov x0, x19
    bl print_hex
exit_with_failure:
    adr x0, cannot_boot_message
    bl print_string
    mov x0, #SEMIHOSTING_SYS_EXIT
    adr x1, exit_failure_block
    hlt #0xf000
1:  wfe                                    /* only reached without semihosting */
    b 1b

/* The NUL-terminated string at x0 to the PL011 (MMU off: a Device access). Clobbers x0-x3. */
print_string:
    ldr x1, =PL011_BASE
1:  ldrb w2, [x0], #1
    cbz w2, 3f
2:  ldr w3, [x1, #PL011_FLAGS]
    tbnz w3, #PL011_TRANSMIT_FULL_BIT, 2b
    str w2, [x1]
    b 1b
3:  ret

/* x0 as "0x" and 16 hex digits. Clobbers x0-x5. */
print_hex:
    mov x4, x0
    ldr x1, =PL011_BASE
    adr x5, hex_prefix
    mov x0, #18                            /* "0x" and 16 digits */
1:  cmp x0, #16
    b.hi 2f
    ror x4, x4, #60                        /* the next digit into bits 0-3 */
    and x2, x4, #0xF
    adr x3, hex_digits
    ldrb w2, [x3, x2]
    b 3f
2:  ldrb w2, [x5], #1
3:  ldr w3, [x1, #PL011_FLAGS]
    tbnz w3, #PL011_TRANSMIT_FULL_BIT, 3b
    str w2, [x1]
    subs x0, x0, #1
    b.ne 1b
    ret

    .p2align 3
exit_failure_block:                        /* SYS_EXIT: ADP_Stopped_ApplicationExit, code 3 */
    .quad 0x20026, 3
ram_ends_message:
    .asciz "bedrock: RAM ends below the end of the kernel image at "
early_exception_message:
    .asciz "bedrock: an exception before the exception vectors, at "
cannot_boot_message:
    .asciz "; cannot boot\n"
hex_prefix:
    .ascii "0x"
hex_digits:
    .ascii "0123456789abcdef"

/* Until the real vectors (installed once the MMU is on). */
    .p2align 11
image_probe_vectors:
    .rept 16
    b image_not_in_ram
    .p2align 7
    .endr

    .global aarch64_secondary_start
aarch64_secondary_start:                   /* x0 = kernel::CpuLocal*, MMU off */
    mov x20, x0
    enter_el1 secondary_at_el1
secondary_at_el1:
    msr daifset, #0xf
    /* MMU off: these loads are Device accesses, aligned, of data start_cpu() cleaned to memory. */
    ldr x1, [x20, #CPU_LOCAL_STACK_TOP]
    mov sp, x1
    msr tpidr_el1, x20
    msr cpacr_el1, xzr
    ldr x1, =aarch64_secondary_mmu         /* {mair, tcr, ttbr0, sctlr} of the boot CPU */
    ldp x2, x3, [x1]
    ldp x4, x5, [x1, #16]
    msr mair_el1, x2
    msr tcr_el1, x3
    msr ttbr0_el1, x4
    isb
    tlbi vmalle1
    dsb nsh
    isb
    msr sctlr_el1, x5
    isb
    ldr x1, =aarch64_exception_vectors
    msr vbar_el1, x1
    isb
    mov x0, x20
    mov x29, xzr
    bl aarch64_secondary_entry
4:  wfe
    b 4b

    .section .bss
    .p2align 12
early_level0:
    .skip 4096
early_level1:
    .skip 4096
    .p2align 4
boot_stack:
    .skip BOOT_STACK_SIZE
    .global arch_boot_stack_top             /* kernel/arch.h: the boot CPU's stack top */
arch_boot_stack_top:
