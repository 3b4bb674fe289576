/* SPDX-License-Identifier: MIT */
/* Bedrock on a hosted system, in C: the platform hooks, a heap over a static buffer as the
 * default heap, the C malloc API, checked mode catching a double free, the statistics. Prints
 * "host example: ok" and exits 0 when everything behaved. */
#include <stdio.h>
#include <stdlib.h>

#include <bedrock/bedrock.h>

/* ---- The platform hooks (bedrock/bedrock.h). One thread, no page frame allocator. ---- */

static void print_line(void* context, const char* line) {
    fprintf((FILE*)context, "%s\n", line);
}

void* bedrock_platform_phys_to_virt(bedrock_phys_addr phys) {
    return (void*)(uintptr_t)phys; /* only a page frame allocator asks; there is none here */
}

void bedrock_platform_report_error(const bedrock_error_report* report) {
    bedrock_write_error_report(report, print_line, stderr);
}

void bedrock_platform_panic(const char* message) {
    fprintf(stderr, "panic: %s\n", message);
    abort();
}

bool bedrock_platform_set_page_access(void* page, bool accessible) {
    (void)page;
    (void)accessible;
    return false; /* no guard pages */
}

void bedrock_platform_assertion_failed(const char* expression, const char* file, int line) {
    fprintf(stderr, "assertion failed: %s at %s:%d\n", expression, file, line);
    abort();
}

unsigned bedrock_platform_current_cpu(void) {
    return 0;
}

uintptr_t bedrock_platform_disable_interrupts(void) {
    return 0;
}

void bedrock_platform_restore_interrupts(uintptr_t previous) {
    (void)previous;
}

/* One thread here, so no lock is ever held by another; a threaded process would sched_yield(). */
void bedrock_platform_lock_wait(void) {}

/* Free pages whose contents the page frame allocator no longer needs: this example's memory is
 * one static buffer, so there is nothing to give back (a process could madvise them). */
void bedrock_platform_pages_unused(void* start, size_t bytes) {
    (void)start;
    (void)bytes;
}

/* ---- The program ---- */

/* Reports the heap raises while checked mode's hook is set are counted here, not printed. */
static void count_report(void* context, const bedrock_error_report* report) {
    printf("caught: %s\n", bedrock_error_kind_name(report->kind));
    ++*(unsigned*)context;
}

static _Alignas(16) unsigned char g_region[1 << 20];

int main(void) {
    printf("Bedrock %s\n", BEDROCK_VERSION_STRING);
    bedrock_heap* heap = bedrock_heap_create_in_region(g_region, sizeof g_region);
    if (heap == NULL) {
        return 1;
    }
    bedrock_set_default_heap(heap);

    char* text = bedrock_malloc(32);
    int* numbers = bedrock_calloc(1000, sizeof *numbers);
    if (text == NULL || numbers == NULL || numbers[999] != 0) {
        return 1;
    }
    snprintf(text, 32, "%s", "hello from the heap");
    text = bedrock_realloc(text, 100000); /* a medium block now; the text moves along */
    printf("%s\n", text);

    unsigned reports = 0;
    const bedrock_error_hook hook = {count_report, &reports};
    bedrock_heap_set_error_hook(heap, &hook);
    bedrock_heap_set_check_level(heap, BEDROCK_CHECK_REPORT);
    char* checked = bedrock_malloc(24);
    bedrock_free(checked);
    bedrock_free(checked); /* a double free: reported, and nothing changes */
    bedrock_heap_set_check_level(heap, BEDROCK_CHECK_OFF);
    bedrock_heap_flush_quarantine(heap);

    bedrock_heap_statistics statistics;
    bedrock_heap_statistics_of(heap, &statistics);
    printf("in use: %llu blocks, %llu bytes\n", (unsigned long long)statistics.blocks_in_use,
           (unsigned long long)statistics.bytes_in_use);

    bedrock_free(text);
    bedrock_free(numbers);
    bedrock_set_default_heap(NULL);
    const bool ok = reports == 1 && bedrock_heap_check(heap) && bedrock_heap_destroy(heap);
    printf("host example: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
