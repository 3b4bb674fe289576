// SPDX-License-Identifier: MIT
/* The secondary CPUs' way from real mode to the kernel: 16-bit -> 32-bit -> 64-bit.
 *
 * x86_64_trampoline_start .. x86_64_trampoline_end is position-dependent code for one address,
 * TRAMPOLINE_BASE (page 0x08, below 1 MiB as STARTUP IPIs require): cpu.cpp copies it there and
 * fills its TrampolineData (x86_64_trampoline_data, the layout of struct TrampolineData in
 * cpu.cpp) before sending INIT-STARTUP-STARTUP. A started CPU begins at CS:IP = 0x0800:0000 in
 * real mode; it loads the trampoline's own GDT, enters protected mode, checks that it is the
 * CPU the data is for (its initial APIC id from CPUID; any other CPU - one that came up after
 * its time-out - parks itself with interrupts off and touches nothing), enables PAE and long
 * mode with boot.S's early page tables (0-4 GiB identity, which maps both this page and the
 * kernel image), and jumps to x86_64_secondary_start in the kernel image with
 *   RAX = the final page tables, RSP = the CPU's stack, RDI = its CpuLocal.
 * x86_64_secondary_start switches to the final page tables before it touches the stack (the
 * stack may lie above 4 GiB, outside the early map) and calls x86_64_secondary_entry (cpu.cpp).
 */

#define TRAMPOLINE_BASE 0x8000
#define ADDRESS(label) (TRAMPOLINE_BASE + (label - x86_64_trampoline_start))
#define DATA_EARLY_CR3 ADDRESS(x86_64_trampoline_data)
#define DATA_FINAL_CR3 (DATA_EARLY_CR3 + 8)
#define DATA_STACK_TOP (DATA_EARLY_CR3 + 16)
#define DATA_CPU (DATA_EARLY_CR3 + 24)
#define DATA_ENTRY (DATA_EARLY_CR3 + 32)
#define DATA_APIC_ID (DATA_EARLY_CR3 + 40)

/* Selectors of the trampoline's GDT. */
#define CODE64 0x08
#define DATA32 0x10
#define CODE32 0x18

    .section .rodata
    .p2align 4
    .global x86_64_trampoline_start
x86_64_trampoline_start:
    .code16
    cli
    cld
    mov %cs, %ax
    mov %ax, %ds
    lgdtl (trampoline_gdt_pointer - x86_64_trampoline_start)
    mov %cr0, %eax
    and $0x9FFFFFFF, %eax                     /* caches on: clear CD and NW (set by INIT) */
    or $1, %eax                               /* PE */
    mov %eax, %cr0
    ljmpl $CODE32, $ADDRESS(trampoline_protected_mode)

    .code32
trampoline_protected_mode:
    mov $DATA32, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov $1, %eax
    cpuid
    shr $24, %ebx                             /* initial APIC id */
    cmp DATA_APIC_ID, %ebx
    jne trampoline_park
    mov DATA_EARLY_CR3, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $(1 << 5), %eax                        /* PAE */
    mov %eax, %cr4
    mov $0xC0000080, %ecx                     /* EFER */
    rdmsr
    or $(1 << 8), %eax                        /* LME */
    wrmsr
    mov %cr0, %eax
    or $(1 << 31), %eax                       /* PG */
    mov %eax, %cr0
    ljmp $CODE64, $ADDRESS(trampoline_long_mode)

trampoline_park:
    cli
    hlt
    jmp trampoline_park

    .code64
trampoline_long_mode:
    mov $DATA32, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov DATA_FINAL_CR3, %rax
    mov DATA_STACK_TOP, %rsp
    mov DATA_CPU, %rdi
    mov DATA_ENTRY, %rcx
    jmp *%rcx

    .p2align 3
trampoline_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF                  /* 0x08: 64-bit code */
    .quad 0x00CF92000000FFFF                  /* 0x10: data, 4 GiB */
    .quad 0x00CF9A000000FFFF                  /* 0x18: 32-bit code, 4 GiB */
trampoline_gdt_end:
trampoline_gdt_pointer:
    .short trampoline_gdt_end - trampoline_gdt - 1
    .long ADDRESS(trampoline_gdt)

    .p2align 3
    .global x86_64_trampoline_data
x86_64_trampoline_data:
    .skip 48
    .global x86_64_trampoline_end
x86_64_trampoline_end:

    .text
    .global x86_64_secondary_start
x86_64_secondary_start:
    mov %rax, %cr3
    xor %ebp, %ebp                            /* the outermost frame for backtraces */
    call x86_64_secondary_entry
1:  cli
    hlt
    jmp 1b

    .section .note.GNU-stack, "", @progbits
