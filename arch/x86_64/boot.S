// SPDX-License-Identifier: MIT
/* x86-64 entry: from 32-bit protected mode (paging off) to long mode and C++.
 *
 * Two ways in, one path on (and a third, refused: see linux_real_mode_entry):
 *   PVH (QEMU -kernel): the XEN_ELFNOTE_PHYS32_ENTRY note names pvh_entry; EBX = hvm_start_info.
 *   multiboot2 (GRUB):  the ELF entry is multiboot2_entry; EAX = 0x36d76289, EBX = the MBI.
 * First the machine is checked, writing nothing outside this code's own section (.bss, which
 * holds the boot stack, may lie outside RAM; the checks use a small stack beside this code), and
 * a machine the kernel cannot run on gets one line on COM1 and QEMU's isa-debug-exit with the
 * failure status (35), not a triple fault or a hang:
 *   - the CPU must have long mode (CPUID 0x80000001 EDX bit 29; without CPUID, it has none):
 *     "bedrock: this CPU has no long mode (x86-64); cannot boot";
 *   - the CPU must have SSE2 (CPUID 1 EDX bit 26), which every x86-64 CPU has but QEMU lets one
 *     leave out (-cpu qemu64,-sse2): the compiler's memory fences are mfence, an SSE2
 *     instruction: "bedrock: this CPU has no SSE2 (mfence); cannot boot";
 *   - with PVH's memory map, RAM must cover the whole image, __kernel_start .. __kernel_end
 *     (.bss, the page tables and the boot stack included), merging adjacent RAM entries:
 *     "bedrock: RAM ends at 0x..., below the end of the kernel image at 0x...; cannot boot".
 *     multiboot2's map is checked in C++ (kernel_main: GRUB loads the image at its link address
 *     even where its map, cut by `cutmem`, lists no RAM), and PVH without a map, version 0, is
 *     refused there too;
 *   - with PVH, no boot module (the initrd) may overlap the image: QEMU puts the initrd below the
 *     top of low RAM without looking at the image and loads it after the image, over its data
 *     (and .bss would be zeroed over the module): "bedrock: a boot module (initrd) at 0x...
 *     overlaps the kernel image at 0x... - 0x...; cannot boot". GRUB never does.
 * An image that lies wholly outside RAM (-m 1M, -M pc,max-ram-below-4g=1M) never runs at all,
 * nor does this code when a module covers it: nothing here can report either.
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
#define EFLAGS_ID (1 << 21)
#define CPUID_LONG_MODE (1 << 29)                 /* CPUID 0x80000001 EDX */
#define CPUID_SSE2 (1 << 26)                      /* CPUID 1 EDX */
#define CPUID_CMOV (1 << 15)                      /* CPUID 1 EDX */
#define PVH_VERSION 4                             /* offsets in hvm_start_info */
#define PVH_MODULE_COUNT 12                       /* u32 nr_modules */
#define PVH_MODULE_LIST 16                        /* u64 modlist_paddr */
#define PVH_MODULE_ENTRY_SIZE 32                  /* {u64 paddr, u64 size, u64 cmdline, u64} */
#define PVH_MEMMAP 40                             /* u64 memmap_paddr (version 1) */
#define PVH_MEMMAP_ENTRIES 48                     /* u32 memmap_entries */
#define PVH_MEMMAP_ENTRY_SIZE 24
#define E820_RAM 1
#define COM1 0x3F8
#define LSR_TRANSMIT_EMPTY (1 << 5)
#define DEBUG_EXIT_PORT 0xF4                      /* isa-debug-exit, see qemu.cmake */
#define EXIT_FAILURE_VALUE 17                     /* QEMU exits with (17 << 1) | 1 = 35 */

/* A third way in, refused: QEMU machine types before 4.0 (pc-i440fx-3.1, pc-q35-3.1 and older)
 * have no PVH loader and take an ELF without multiboot1's header for an old Linux zImage: the
 * file's first 2,560 bytes go to 0x90000, the rest to 0x10000, none of it where it was linked,
 * and the CPU enters in 16-bit real mode at file offset 0x200 (CS:IP = 0x9020:0). The linker
 * script puts this code there. It names the machine and exits with the failure status, as the
 * checks below do, instead of leaving the CPU to run the ELF's padding. */
    .section .linux_real_mode_entry, "ax"
    .code16
linux_real_mode_entry:
    /* Over the Linux setup header (file offsets 0x202 to 0x26c), which the loader writes: QEMU's
     * option ROM for machine types before 2.5 puts the initrd's address at 0x218. Linux's own
     * first instruction jumps over it too. */
    jmp 1f
    .org 0x80
1:  cli
    mov $(linux_loader_message - linux_real_mode_entry), %si  /* CS's base is this code's */
2:  mov $COM1 + 5, %dx
3:  in %dx, %al
    test $LSR_TRANSMIT_EMPTY, %al
    jz 3b
    movb %cs:(%si), %al
    test %al, %al
    jz 4f
    mov $COM1, %dx
    out %al, %dx
    inc %si
    jmp 2b
4:  mov $EXIT_FAILURE_VALUE, %eax
    out %eax, $DEBUG_EXIT_PORT
5:  hlt                                       /* only reached without the exit device */
    jmp 5b
linux_loader_message:
    .ascii "bedrock: loaded as a Linux kernel in real mode, not through PVH (QEMU machine "
    .asciz "types before 4.0 have no PVH loader: use pc or q35 4.0 or later); cannot boot\r\n"

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
    jmp check_machine

    /* The ELF entry. Without multiboot2's magic in EAX some other loader jumped here: go on
     * anyway, so that C++ can say so on the console instead of the machine hanging silently. */
    .global multiboot2_entry
multiboot2_entry:
    cli
    mov $BOOT_PROTOCOL_UNKNOWN, %ebp
    cmp $MULTIBOOT2_BOOTLOADER_MAGIC, %eax
    jne check_machine
    mov $BOOT_PROTOCOL_MULTIBOOT2, %ebp
    jmp check_machine

/* EBP = protocol, EBX = boot information (both preserved until the call into C++). The stack is
 * check_stack, beside this code: the image's first page is RAM, or this would not run. */
check_machine:
    mov $check_stack_top, %esp
    call init_serial

    /* Long mode. CPUID exists if EFLAGS.ID can be flipped. */
    pushfl
    pop %eax
    mov %eax, %ecx
    xor $EFLAGS_ID, %eax
    push %eax
    popfl
    pushfl
    pop %eax
    push %ecx
    popfl                                     /* EFLAGS as it was */
    xor %ecx, %eax
    test $EFLAGS_ID, %eax
    jz no_long_mode
    push %ebx                                 /* CPUID writes EBX */
    mov $0x80000000, %eax
    cpuid
    cmp $0x80000001, %eax
    jb no_long_mode
    mov $0x80000001, %eax
    cpuid
    pop %ebx
    test $CPUID_LONG_MODE, %edx
    jz no_long_mode
    push %ebx
    mov $1, %eax
    cpuid
    pop %ebx
    test $CPUID_SSE2, %edx
    jz no_sse2
    test $CPUID_CMOV, %edx
    jz no_cmov

    /* RAM under the image (PVH's map only). ESI = the end of the RAM that runs unbroken from
     * __kernel_start: raised past every RAM entry that starts at or below it and ends above it,
     * until a pass over the map raises it no more. Entries above 4 GiB cannot cover the image;
     * an entry that reaches 4 GiB covers the rest of it. */
    cmp $BOOT_PROTOCOL_PVH, %ebp
    jne enter_long_mode
    cmpl $1, PVH_VERSION(%ebx)
    jb check_modules
    cmpl $0, PVH_MEMMAP + 4(%ebx)
    jne check_modules                         /* a map above 4 GiB: C++ reads it */
    mov $__kernel_start, %esi
1:  mov PVH_MEMMAP(%ebx), %edi                /* the entries: {u64 base, u64 size, u32 type, u32} */
    mov PVH_MEMMAP_ENTRIES(%ebx), %ecx
    xor %edx, %edx                            /* raised in this pass */
2:  test %ecx, %ecx
    jz 4f
    cmpl $E820_RAM, 16(%edi)
    jne 3f
    cmpl $0, 4(%edi)
    jne 3f                                    /* starts above 4 GiB */
    mov (%edi), %eax
    cmp %esi, %eax
    ja 3f                                     /* starts above ESI */
    cmpl $0, 12(%edi)
    jne 5f                                    /* 4 GiB or more long: reaches past the image */
    add 8(%edi), %eax
    jc 5f                                     /* ends at or above 4 GiB */
    cmp %esi, %eax
    jbe 3f
    mov %eax, %esi
    mov $1, %edx
3:  add $PVH_MEMMAP_ENTRY_SIZE, %edi
    dec %ecx
    jmp 2b
4:  cmp $__kernel_end, %esi
    jae check_modules
    test %edx, %edx
    jnz 1b
    /* ESI: where the RAM under the image ends. */
    mov $ram_ends_message, %eax
    call print_string
    mov %esi, %eax
    call print_hex
    mov $ram_ends_message_2, %eax
    call print_string
    mov $__kernel_end, %eax
    call print_hex
    mov $cannot_boot_message, %eax
    call print_string
    jmp exit_failure
5:  mov $__kernel_end, %esi                   /* covered up to 4 GiB */
    jmp 4b

/* PVH's boot modules against the image. A module above 4 GiB, or an empty one, cannot overlap
 * it; a list above 4 GiB is not read here (QEMU puts it in low memory). */
check_modules:
    mov PVH_MODULE_COUNT(%ebx), %ecx
    test %ecx, %ecx
    jz enter_long_mode
    cmpl $0, PVH_MODULE_LIST + 4(%ebx)
    jne enter_long_mode
    mov PVH_MODULE_LIST(%ebx), %edi
1:  cmpl $0, 4(%edi)
    jne 2f                                    /* starts above 4 GiB */
    mov (%edi), %eax
    cmp $__kernel_end, %eax
    jae 2f                                    /* starts after the image */
    cmpl $0, 12(%edi)
    jne module_overlaps                       /* 4 GiB or more long */
    mov 8(%edi), %edx
    test %edx, %edx
    jz 2f                                     /* empty */
    add %edx, %eax
    jc module_overlaps                        /* ends at or above 4 GiB */
    cmp $__kernel_start, %eax
    ja module_overlaps                        /* ends inside or after the image */
2:  add $PVH_MODULE_ENTRY_SIZE, %edi
    dec %ecx
    jnz 1b
    jmp enter_long_mode
/* EDI = the module's entry. */
module_overlaps:
    mov $module_overlaps_message, %eax
    call print_string
    mov (%edi), %eax
    call print_hex
    mov $module_overlaps_message_2, %eax
    call print_string
    mov $__kernel_start, %eax
    call print_hex
    mov $module_overlaps_message_3, %eax
    call print_string
    mov $__kernel_end, %eax
    call print_hex
    mov $cannot_boot_message, %eax
    call print_string
    jmp exit_failure

no_long_mode:
    mov $no_long_mode_message, %eax
    call print_string
    jmp exit_failure

no_sse2:
    mov $no_sse2_message, %eax
    call print_string
    jmp exit_failure
no_cmov:
    mov $no_cmov_message, %eax
    call print_string
    jmp exit_failure

/* The same set-up as arch/x86_64/console.cpp's init_console(): 115200 8N1, FIFOs, DTR and RTS. */
init_serial:
    mov $COM1 + 1, %dx
    xor %al, %al
    out %al, %dx                              /* no interrupts */
    mov $COM1 + 3, %dx
    mov $0x80, %al
    out %al, %dx                              /* divisor latch access */
    mov $COM1, %dx
    mov $0x01, %al
    out %al, %dx                              /* 115200 baud */
    mov $COM1 + 1, %dx
    xor %al, %al
    out %al, %dx
    mov $COM1 + 3, %dx
    mov $0x03, %al
    out %al, %dx                              /* 8 bits, no parity, one stop bit */
    mov $COM1 + 2, %dx
    mov $0xC7, %al
    out %al, %dx                              /* FIFOs on and cleared */
    mov $COM1 + 4, %dx
    mov $0x03, %al
    out %al, %dx                              /* DTR, RTS */
    ret

/* AL -> COM1, once the transmitter holds no byte. Clobbers EDX. */
put_char:
    push %eax
    mov $COM1 + 5, %dx
1:  in %dx, %al
    test $LSR_TRANSMIT_EMPTY, %al
    jz 1b
    pop %eax
    mov $COM1, %dx
    out %al, %dx
    ret

/* The NUL-terminated string at EAX, "\n" sent as "\r\n". Clobbers EAX, ECX, EDX. */
print_string:
    mov %eax, %ecx
1:  movb (%ecx), %al
    test %al, %al
    jz 3f
    cmp $0x0A, %al                            /* newline */
    jne 2f
    mov $0x0D, %al                            /* carriage return first */
    call put_char
    mov $0x0A, %al
2:  call put_char
    inc %ecx
    jmp 1b
3:  ret

/* EAX as "0x" and eight hex digits. Clobbers EAX, ECX, EDX. */
print_hex:
    mov %eax, %ecx
    mov $0x30, %al                            /* '0' */
    call put_char
    mov $0x78, %al                            /* 'x' */
    call put_char
    push %ebx
    mov $8, %ebx
1:  rol $4, %ecx
    mov %ecx, %eax
    and $0xF, %eax
    movb hex_digits(%eax), %al
    call put_char
    dec %ebx
    jnz 1b
    pop %ebx
    ret

/* isa-debug-exit with the failure value, as arch::exit(Failure) writes it (QEMU exits with 35). */
exit_failure:
    mov $EXIT_FAILURE_VALUE, %eax
    out %eax, $DEBUG_EXIT_PORT
1:  cli                                       /* only reached without the exit device */
    hlt
    jmp 1b

no_long_mode_message:
    .asciz "bedrock: this CPU has no long mode (x86-64); cannot boot\n"
no_sse2_message:
    .asciz "bedrock: this CPU has no SSE2 (mfence); cannot boot\n"
no_cmov_message:
    .asciz "bedrock: this CPU has no CMOV (conditional moves, which the compiled code uses); cannot boot\n"
ram_ends_message:
    .asciz "bedrock: RAM ends at "
ram_ends_message_2:
    .asciz ", below the end of the kernel image at "
module_overlaps_message:
    .asciz "bedrock: a boot module (initrd) at "
module_overlaps_message_2:
    .asciz " overlaps the kernel image at "
module_overlaps_message_3:
    .asciz " - "
cannot_boot_message:
    .asciz "; cannot boot\n"
hex_digits:
    .ascii "0123456789abcdef"
    /* The checks' stack, in this section: it is RAM if this code runs, and nothing is
     * write-protected before paging is on. */
    .p2align 4
    .skip 64
check_stack_top:

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
