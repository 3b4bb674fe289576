/* SPDX-License-Identifier: MIT */
/* The example kernel's x86-64 entry. QEMU's -kernel loads this ELF and, finding the PVH note,
 * jumps to pvh_entry in 32-bit protected mode with paging off and EBX = the physical address
 * of the hvm_start_info. The stub zeroes .bss, identity-maps the first 4 GiB with 2 MiB pages,
 * enters long mode and calls machine_start(start_info), which never returns. */
    .section .note.Xen, "a", @note
    .align 4
    .long 4, 4, 18 /* name size ("Xen\0"), descriptor size, XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .long pvh_entry

    .section .boot, "ax"
    .code32
    .global pvh_entry
pvh_entry:
    cli
    mov %ebx, %esi                 /* the start info, for machine_start */
    mov $__bss_start, %edi
    mov $__bss_end, %ecx
    sub %edi, %ecx
    xor %eax, %eax
    rep stosb

    /* pml4[0] -> pdpt; pdpt[i] -> page_directories[i]; each entry there maps 2 MiB. */
    mov $pdpt, %eax
    or $3, %eax                    /* present, writable */
    mov %eax, pml4
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $12, %eax
    add $page_directories, %eax
    or $3, %eax
    mov %eax, pdpt(, %ecx, 8)
    inc %ecx
    cmp $4, %ecx
    jne 1b
    xor %ecx, %ecx
2:  mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax                 /* present, writable, 2 MiB page */
    mov %eax, page_directories(, %ecx, 8) /* the high half stays 0: all below 4 GiB */
    inc %ecx
    cmp $2048, %ecx
    jne 2b

    mov $pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $(1 << 5), %eax             /* PAE */
    mov %eax, %cr4
    mov $0xc0000080, %ecx          /* EFER */
    rdmsr
    or $(1 << 8), %eax             /* long mode enable */
    wrmsr
    mov %cr0, %eax
    or $((1 << 31) | 1), %eax      /* paging, protection */
    mov %eax, %cr0
    lgdt gdt_pointer
    ljmp $8, $long_mode

    .code64
long_mode:
    mov $16, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov $stack_top, %rsp
    mov %esi, %edi                 /* zero-extends: the start info, first argument */
    call machine_start
3:  hlt
    jmp 3b

    .section .rodata
    .align 8
gdt:
    .quad 0
    .quad 0x00af9a000000ffff       /* 8: 64-bit code */
    .quad 0x00cf92000000ffff       /* 16: data */
gdt_pointer:
    .word gdt_pointer - gdt - 1
    .long gdt

    .section .bss
    .align 4096
pml4:
    .skip 4096
pdpt:
    .skip 4096
page_directories:
    .skip 4 * 4096
    .skip 16384
stack_top:

    .section .note.GNU-stack, "", @progbits
