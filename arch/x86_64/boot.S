// SPDX-License-Identifier: MIT
/* x86-64 entry: from 32-bit protected mode (paging off) to long mode and C++.
 *
 * Two ways in, one path on:
 *   PVH (QEMU -kernel): the XEN_ELFNOTE_PHYS32_ENTRY note names pvh_entry; EBX = hvm_start_info.
 *   multiboot2 (GRUB):  the ELF entry is multiboot2_entry; EAX = 0x36d76289, EBX = the MBI.
 * Then: zero .bss, identity-map 0-4 GiB with 2 MiB pages (the default qemu64 CPU has no 1 GiB
 * pages), enable PAE, long mode and paging, load a 64-bit GDT and call
 * x86_64_entry(protocol, info) on the boot stack. arch::map_memory() later replaces this map
 * with one covering exactly the RAM the firmware reported, except the page just below the boot
 * stack (x86_64_boot_stack_guard): from then on a stack overflow faults instead of silently
 * overwriting what lies below the stack. */

#define BOOT_PROTOCOL_UNKNOWN 0
#define BOOT_PROTOCOL_PVH 1
#define BOOT_PROTOCOL_MULTIBOOT2 2
#define MULTIBOOT2_HEADER_MAGIC 0xE85250D6
#define MULTIBOOT2_BOOTLOADER_MAGIC 0x36D76289
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define EARLY_MAP_GIB 4
#define BOOT_STACK_SIZE 65536

    .section .multiboot2, "a"
    .p2align 3
multiboot2_header:
    .long MULTIBOOT2_HEADER_MAGIC
    .long 0                                   /* architecture: i386 protected mode */
    .long multiboot2_header_end - multiboot2_header
    .long -(MULTIBOOT2_HEADER_MAGIC + (multiboot2_header_end - multiboot2_header))
    .short 0, 0                               /* end tag */
    .long 8
multiboot2_header_end:

    .section .note.Xen, "a", @note
    .p2align 2
    .long 4                                   /* name size: "Xen\0" */
    .long 4                                   /* descriptor size */
    .long XEN_ELFNOTE_PHYS32_ENTRY
    .asciz "Xen"
    .long pvh_entry

    .section .boot.text, "ax"
    .code32
    .global pvh_entry
pvh_entry:
    cli
    mov $BOOT_PROTOCOL_PVH, %ebp
    jmp enter_long_mode

    /* The ELF entry. Without multiboot2's magic in EAX some other loader jumped here: go on
     * anyway, so that C++ can say so on the console instead of the machine hanging silently. */
    .global multiboot2_entry
multiboot2_entry:
    cli
    mov $BOOT_PROTOCOL_UNKNOWN, %ebp
    cmp $MULTIBOOT2_BOOTLOADER_MAGIC, %eax
    jne enter_long_mode
    mov $BOOT_PROTOCOL_MULTIBOOT2, %ebp
    jmp enter_long_mode

/* EBP = protocol, EBX = boot information (both preserved until the call into C++). */
enter_long_mode:
    mov $arch_boot_stack_top, %esp

    /* Zero .bss: the page tables below and every C++ global start at zero. */
    mov $__bss_start, %edi
    mov $__bss_end, %ecx
    sub %edi, %ecx
    xor %eax, %eax
    cld
    rep stosb

    /* PML4[0] -> PDPT; PDPT[0..3] -> the four page directories; each PD maps 1 GiB. */
    mov $early_pdpt, %eax
    or $0x3, %eax                             /* present, writable */
    mov %eax, early_pml4
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $12, %eax
    add $early_page_directories, %eax
    or $0x3, %eax
    mov %eax, early_pdpt(, %ecx, 8)
    inc %ecx
    cmp $EARLY_MAP_GIB, %ecx
    jne 1b
    /* 2048 entries of 2 MiB: entry i maps physical i * 2 MiB (bits 32+ go in the high dword). */
    xor %ecx, %ecx
2:  mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax                            /* present, writable, page size (2 MiB) */
    mov %eax, early_page_directories(, %ecx, 8)
    mov %ecx, %eax
    shr $11, %eax
    mov %eax, early_page_directories + 4(, %ecx, 8)
    inc %ecx
    cmp $(EARLY_MAP_GIB * 512), %ecx
    jne 2b

    mov $early_pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $(1 << 5), %eax                        /* PAE */
    mov %eax, %cr4
    mov $0xC0000080, %ecx                     /* EFER */
    rdmsr
    or $(1 << 8), %eax                        /* LME */
    wrmsr
    mov %cr0, %eax
    or $((1 << 31) | (1 << 0)), %eax          /* PG, PE */
    mov %eax, %cr0

    lgdt gdt64_pointer
    ljmp $0x08, $long_mode

    .code64
long_mode:
    mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov %eax, %fs
    mov %eax, %gs
    mov $arch_boot_stack_top, %esp                 /* zero-extends into RSP */
    mov %ebp, %edi                            /* protocol (32-bit moves zero-extend) */
    mov %ebx, %esi                            /* boot information, physical */
    xor %ebp, %ebp                            /* the outermost frame for backtraces */
    call x86_64_entry
3:  hlt
    jmp 3b

    /* Writable: the CPU sets a descriptor's busy bit when `ltr` loads the TSS. The code and data
     * descriptors have their accessed bit set already, so loading them writes nothing. */
    .section .data
    .p2align 3
gdt64:
    .quad 0
    .quad 0x00AF9B000000FFFF                  /* 0x08: 64-bit code, ring 0 */
    .quad 0x00CF93000000FFFF                  /* 0x10: data, ring 0 */
    .global x86_64_tss_descriptor
x86_64_tss_descriptor:                        /* 0x18: the TSS, filled in by exceptions.cpp */
    .quad 0, 0
gdt64_end:

    .section .rodata
    .p2align 3
gdt64_pointer:
    .short gdt64_end - gdt64 - 1
    .quad gdt64

    .section .bss
    .p2align 12
    .global x86_64_early_pml4
x86_64_early_pml4:
early_pml4:
    .skip 4096
early_pdpt:
    .skip 4096
early_page_directories:
    .skip 4096 * EARLY_MAP_GIB
    .global x86_64_boot_stack_guard
x86_64_boot_stack_guard:                      /* left unmapped by arch::map_memory() */
    .skip 4096
boot_stack:
    .skip BOOT_STACK_SIZE
    .global arch_boot_stack_top             /* kernel/arch.h: the boot CPU's stack top */
arch_boot_stack_top:

    .section .note.GNU-stack, "", @progbits
