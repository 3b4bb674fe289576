/* AArch64 entry (QEMU virt, -kernel with an ELF): x0 = device tree or 0.
 *
 * Drops from EL2 to EL1 if entered at EL2, zeroes .bss, builds an early identity map
 * (0-1 GiB Device-nGnRnE for virt's MMIO, 1-2 GiB Normal write-back for the kernel, the device
 * tree and the first RAM), turns the MMU and caches on - before any C++, because with the MMU
 * off every data access is Device memory (unaligned accesses fault, exclusives do not work) -
 * installs the exception vectors and calls aarch64_entry(device tree).
 * arch::map_memory() later replaces the early map with one covering exactly the RAM the device
 * tree describes. */

#define EARLY_NORMAL_BASE 0x40000000
#define BOOT_STACK_SIZE 65536
#define MAIR_VALUE 0xFF00                  /* attr 0: Device-nGnRnE; attr 1: Normal WB RW-alloc */
#define BLOCK_DEVICE ((1 << 10) | (0 << 2) | 1 | (3 << 53))   /* AF, attr 0, block, XN */
#define BLOCK_NORMAL ((1 << 10) | (3 << 8) | (1 << 2) | 1)    /* AF, inner shareable, attr 1 */
/* T0SZ = 16 (48-bit VA), inner/outer WB-WA walks, inner shareable, 4 KiB granule, no TTBR1. */
#define TCR_VALUE (16 | (1 << 8) | (1 << 10) | (3 << 12) | (1 << 23))

    .section .text.boot, "ax"
    .global _start
_start:
    mov x20, x0                            /* the device tree pointer, kept across set-up */
    mrs x1, CurrentEL
    lsr x1, x1, #2
    cmp x1, #2
    b.ne at_el1
    /* EL2 -> EL1: EL1 is AArch64, timers accessible, exceptions masked. */
    mov x1, #(1 << 31)
    msr hcr_el2, x1
    mrs x1, cnthctl_el2
    orr x1, x1, #3
    msr cnthctl_el2, x1
    msr cntvoff_el2, xzr
    mov x1, #0x3c5                         /* EL1h, DAIF masked */
    msr spsr_el2, x1
    adr x1, at_el1
    msr elr_el2, x1
    eret

at_el1:
    msr daifset, #0xf
    ldr x1, =boot_stack_top
    mov sp, x1

    /* Zero .bss with aligned 8-byte stores (safe with the MMU off). */
    ldr x1, =__bss_start
    ldr x2, =__bss_end
1:  cmp x1, x2
    b.hs 2f
    str xzr, [x1], #8
    b 1b
2:
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

    .section .bss
    .p2align 12
early_level0:
    .skip 4096
early_level1:
    .skip 4096
    .p2align 4
boot_stack:
    .skip BOOT_STACK_SIZE
boot_stack_top:
