/* SPDX-License-Identifier: MIT */
/* The example kernel's portable part: Bedrock's platform hooks written in C, and the kernel
 * itself: usable memory from the firmware's RAM ranges, a page frame allocator over it, a heap
 * over that as the default heap, then blocks and pages allocated and freed, the allocators
 * checked, "kernel example: ok" printed and QEMU left with success. The machine layer
 * (<arch>/machine.c) finds the RAM; RAM is identity-mapped, so physical = virtual. */
#include <stdint.h>

#include "machine.h"

extern char __kernel_end[]; /* the end of the image, from <arch>/linker.ld */

static bedrock_page_frame_allocator g_frames;

static void print(const char* text) {
    while (*text != '\0') {
        machine_putc(*text++);
    }
}

static void print_number(uint64_t value, unsigned base) {
    char digits[24];
    size_t count = 0;
    do {
        digits[count++] = "0123456789abcdef"[value % base];
        value /= base;
    } while (value != 0);
    while (count > 0) {
        machine_putc(digits[--count]);
    }
}

static void print_line(void* context, const char* line) {
    (void)context;
    print(line);
    print("\n");
}

static _Noreturn void fail(const char* what) {
    print("kernel example: FAILED: ");
    print_line(NULL, what);
    machine_exit(false);
}

/* ---- Bedrock's platform hooks (bedrock/bedrock.h) ---- */

void* bedrock_platform_phys_to_virt(bedrock_phys_addr phys) {
    return (void*)(uintptr_t)phys; /* RAM is identity-mapped */
}

void bedrock_platform_report_error(const bedrock_error_report* report) {
    bedrock_write_error_report(report, print_line, NULL);
}

void bedrock_platform_panic(const char* message) {
    fail(message);
}

bool bedrock_platform_set_page_access(void* page, bool accessible) {
    (void)page;
    (void)accessible;
    return false; /* no guard pages in this kernel */
}

void bedrock_platform_assertion_failed(const char* expression, const char* file, int line) {
    print(file);
    print(":");
    print_number((uint64_t)line, 10);
    print(": ");
    fail(expression);
}

/* One CPU, interrupts never enabled: nothing to mask. */
unsigned bedrock_platform_current_cpu(void) {
    return 0;
}

uintptr_t bedrock_platform_disable_interrupts(void) {
    return 0;
}

void bedrock_platform_restore_interrupts(uintptr_t previous) {
    (void)previous;
}

void bedrock_platform_lock_wait(void) {}

/* Free pages the page frame allocator no longer needs the contents of. This kernel keeps all
 * RAM mapped and has no one to give it to; one that shares memory (a balloon, a hypervisor)
 * would pass the range on here. */
void bedrock_platform_pages_unused(void* start, size_t bytes) {
    (void)start;
    (void)bytes;
}

/* ---- The kernel ---- */

/* RAM from the end of the image up, in whole pages, sorted by address (the page frame allocator
 * wants them so): the firmware's tables, the device tree and the image itself lie below it. */
static size_t usable_ranges(const bedrock_phys_range* ram, size_t count,
                            bedrock_phys_range* usable) {
    const uint64_t page = BEDROCK_PAGE_SIZE;
    bedrock_phys_range sorted[kMaxRamRanges];
    for (size_t i = 0; i < count; ++i) { /* insertion sort: a handful of ranges */
        size_t at = i;
        for (; at > 0 && sorted[at - 1].base > ram[i].base; --at) {
            sorted[at] = sorted[at - 1];
        }
        sorted[at] = ram[i];
    }
    ram = sorted;
    const uint64_t floor = ((uint64_t)(uintptr_t)__kernel_end + page - 1) & ~(page - 1);
    size_t used = 0;
    for (size_t i = 0; i < count; ++i) {
        const uint64_t end = (ram[i].base + ram[i].size) & ~(page - 1);
        uint64_t base = (ram[i].base + page - 1) & ~(page - 1);
        base = base > floor ? base : floor;
        if (base < end) {
            usable[used++] = (bedrock_phys_range){base, end - base};
            print("usable 0x");
            print_number(base, 16);
            print(" - 0x");
            print_number(end - 1, 16);
            print("\n");
        }
    }
    return used;
}

void kernel_run(const bedrock_phys_range* ram, size_t count) {
    print("example kernel, Bedrock " BEDROCK_VERSION_STRING "\n");
    bedrock_phys_range usable[kMaxRamRanges];
    const size_t usable_count = usable_ranges(ram, count, usable);
    if (!bedrock_pages_init(&g_frames, usable, usable_count)) {
        fail("the page frame allocator refused the memory map");
    }
    print("pages: ");
    print_number(bedrock_pages_free_count(&g_frames), 10);
    print(" free\n");

    bedrock_heap* heap = bedrock_heap_create(&g_frames);
    if (heap == NULL) {
        fail("no heap");
    }
    bedrock_set_default_heap(heap);

    /* Blocks of every kind: small (size classes), medium, large (a page run of its own). */
    unsigned char* blocks[40];
    for (size_t i = 0; i < 40; ++i) {
        const size_t size = (size_t)16 << (i % 18);
        blocks[i] = bedrock_malloc(size);
        if (blocks[i] == NULL) {
            fail("malloc");
        }
        bedrock_memset(blocks[i], (int)i + 1, size);
    }
    blocks[0] = bedrock_realloc(blocks[0], 5000);
    if (blocks[0] == NULL || blocks[0][15] != 1) { /* the first 16 bytes moved along */
        fail("realloc");
    }
    for (size_t i = 0; i < 40; ++i) {
        bedrock_free(blocks[i]);
    }
    /* 16 KiB below 4 GiB, as a 32-bit device would need them. */
    const bedrock_phys_addr low =
        bedrock_pages_allocate_below(&g_frames, 2, BEDROCK_ZONE_DMA32_LIMIT);
    if (low == BEDROCK_NO_PAGE) {
        fail("pages below 4 GiB");
    }
    bedrock_pages_free(&g_frames, low, 2);

    const char* failure = NULL;
    if (!bedrock_heap_check(heap) || !bedrock_pages_check(&g_frames, &failure)) {
        fail(failure != NULL ? failure : "heap check");
    }
    bedrock_heap_statistics statistics;
    bedrock_heap_statistics_of(heap, &statistics);
    print("heap: ");
    print_number(statistics.peak_pages_held, 10);
    print(" pages at the peak, ");
    print_number(statistics.blocks_in_use, 10);
    print(" blocks in use now\n");
    bedrock_set_default_heap(NULL);
    if (!bedrock_heap_destroy(heap)) {
        fail("heap destroy");
    }
    print("kernel example: ok\n");
    machine_exit(true);
}
