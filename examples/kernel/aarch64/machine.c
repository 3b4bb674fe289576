/* SPDX-License-Identifier: MIT */
/* The example kernel's AArch64 machine (QEMU virt): the PL011 UART for the console,
 * semihosting to end the run, and the RAM ranges of the device tree's /memory nodes, read by a
 * minimal flattened-device-tree walk (no other node is needed). The MMU stays off, so RAM is
 * identity-mapped Device memory: the toolchain file builds everything with -mstrict-align. */
#include <stdint.h>

#include "machine.h"

enum {
    kFdtBeginNode = 1,
    kFdtEndNode = 2,
    kFdtProperty = 3,
    kFdtNop = 4,
    kFdtEnd = 9,
};
static volatile uint32_t* const kUartData = (volatile uint32_t*)0x09000000;
static volatile uint32_t* const kUartFlags = (volatile uint32_t*)0x09000018;
static const uint32_t kFdtMagic = 0xd00dfeed;
static const uintptr_t kRamStart = 0x40000000; /* where a plain ELF finds its device tree */

_Noreturn void machine_semihosting_exit(uint64_t code); /* boot.S */

void machine_putc(char c) {
    while ((*kUartFlags & (1u << 5)) != 0) { /* transmit FIFO full */
    }
    *kUartData = (uint32_t)(unsigned char)c;
}

void machine_exit(bool success) {
    machine_semihosting_exit(success ? 0 : 3);
}

/* Device tree values are big-endian. */
static uint32_t be32(const uint8_t* bytes) {
    return (uint32_t)bytes[0] << 24 | (uint32_t)bytes[1] << 16 | (uint32_t)bytes[2] << 8 | bytes[3];
}

static uint64_t cells(const uint8_t* bytes, uint32_t count) {
    uint64_t value = 0;
    for (uint32_t i = 0; i < count; ++i) {
        value = value << 32 | be32(bytes + 4 * i);
    }
    return value;
}

static bool starts_with(const char* text, const char* prefix) {
    while (*prefix != '\0' && *text == *prefix) {
        ++text;
        ++prefix;
    }
    return *prefix == '\0';
}

static bool is_memory_node(const char* name) {
    return starts_with(name, "memory") && (name[6] == '\0' || name[6] == '@');
}

/* The `reg` ranges of every node named memory or memory@... under the root. */
static size_t device_tree_ram(const uint8_t* tree, bedrock_phys_range* ram) {
    const char* strings = (const char*)tree + be32(tree + 12);
    const uint8_t* at = tree + be32(tree + 8);
    uint32_t address_cells = 2, size_cells = 1, depth = 0;
    bool in_memory = false;
    size_t count = 0;
    for (;;) {
        const uint32_t token = be32(at);
        at += 4;
        if (token == kFdtBeginNode) {
            const char* name = (const char*)at;
            in_memory = ++depth == 2 && is_memory_node(name);
            size_t length = 0;
            while (name[length] != '\0') {
                ++length;
            }
            at += (length + 4) & ~(size_t)3;
        } else if (token == kFdtEndNode) {
            --depth;
            in_memory = false;
        } else if (token == kFdtProperty) {
            const uint32_t length = be32(at);
            const char* name = strings + be32(at + 4);
            const uint8_t* value = at + 8;
            if (depth == 1 && starts_with(name, "#address-cells")) {
                address_cells = be32(value);
            } else if (depth == 1 && starts_with(name, "#size-cells")) {
                size_cells = be32(value);
            } else if (in_memory && starts_with(name, "reg") && name[3] == '\0') {
                const uint32_t entry = 4 * (address_cells + size_cells);
                for (uint32_t offset = 0; offset + entry <= length && count < kMaxRamRanges;
                     offset += entry) {
                    ram[count++] =
                        (bedrock_phys_range){cells(value + offset, address_cells),
                                             cells(value + offset + 4 * address_cells, size_cells)};
                }
            }
            at = value + ((length + 3) & ~(uint32_t)3);
        } else if (token != kFdtNop) {
            return count; /* kFdtEnd, or damage */
        }
    }
}

_Noreturn void machine_start(uintptr_t device_tree);

void machine_start(uintptr_t device_tree) {
    const uint8_t* tree = (const uint8_t*)(device_tree != 0 ? device_tree : kRamStart);
    if (be32(tree) != kFdtMagic) {
        machine_exit(false);
    }
    bedrock_phys_range ram[kMaxRamRanges];
    kernel_run(ram, device_tree_ram(tree, ram));
}
