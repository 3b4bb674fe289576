/* SPDX-License-Identifier: MIT */
/* The example kernel's x86-64 machine: COM1 for the console, QEMU's isa-debug-exit device
 * (port 0xf4) to end the run, and the RAM ranges of the E820 map that the PVH start info
 * carries (clipped to the 4 GiB that boot.S maps). */
#include <stdint.h>

#include "machine.h"

enum { kCom1 = 0x3f8, kDebugExit = 0xf4, kE820Ram = 1, kStartInfoMagic = 0x336ec578 };
static const uint64_t kMappedLimit = UINT64_C(4) << 30;

/* The parts of Xen's hvm_start_info and its memory map entries that the kernel reads. */
struct hvm_start_info {
    uint32_t magic;
    uint32_t version; /* 1 and up: the memory map fields below are present */
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;
    uint64_t rsdp_paddr;
    uint64_t memmap_paddr;
    uint32_t memmap_entries;
    uint32_t reserved;
};

struct hvm_memmap_table_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
    uint32_t reserved;
};

static uint8_t in8(uint16_t port) {
    uint8_t value;
    __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}

static void out8(uint16_t port, uint8_t value) {
    __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}

void machine_putc(char c) {
    while ((in8(kCom1 + 5) & 0x20) == 0) { /* wait until the transmitter can take a byte */
    }
    out8(kCom1, (uint8_t)c);
}

void machine_exit(bool success) {
    const uint32_t value = success ? 16 : 17; /* QEMU exits with (value << 1) | 1: 33 or 35 */
    __asm__ volatile("outl %0, %1" : : "a"(value), "Nd"((uint16_t)kDebugExit));
    for (;;) {
        __asm__ volatile("hlt");
    }
}

_Noreturn void machine_start(const struct hvm_start_info* info);

void machine_start(const struct hvm_start_info* info) {
    if (info->magic != kStartInfoMagic || info->version < 1) {
        machine_exit(false);
    }
    const struct hvm_memmap_table_entry* map =
        (const struct hvm_memmap_table_entry*)(uintptr_t)info->memmap_paddr;
    bedrock_phys_range ram[kMaxRamRanges];
    size_t count = 0;
    for (uint32_t i = 0; i < info->memmap_entries && count < kMaxRamRanges; ++i) {
        if (map[i].type != kE820Ram || map[i].addr >= kMappedLimit) {
            continue;
        }
        const uint64_t end = map[i].addr + map[i].size;
        ram[count++] = (bedrock_phys_range){map[i].addr, (end < kMappedLimit ? end : kMappedLimit) -
                                                             map[i].addr};
    }
    kernel_run(ram, count);
}
