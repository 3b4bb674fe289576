/* SPDX-License-Identifier: MIT */
/* Every function of bedrock/bedrock.h called from C11 against a built Bedrock, with the
 * platform hooks in C: the page frame allocator over an aligned static buffer (its "physical"
 * addresses are the buffer's own), heaps over it and over a region, the default heap's malloc
 * API, checked mode through an error hook (levels, quarantine, leaks, guard pages made with
 * mprotect and a fault explained), statistics and the reports' C form. Prints each failed
 * check, then "c interface: ok" and exits 0 when none failed. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <bedrock/bedrock.h>

static unsigned g_failures;

/* A macro for the line of the failed check. */
#define CHECK(condition)                                                                           \
    ((condition) ? (void)0                                                                         \
                 : (void)(printf("%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition),     \
                          ++g_failures))

/* ---- Platform hooks: reports are recorded, not printed ---- */

static bedrock_error_report g_last_report;
static unsigned g_platform_reports;

void* bedrock_platform_phys_to_virt(bedrock_phys_addr phys) {
    return (void*)(uintptr_t)phys;
}

void bedrock_platform_report_error(const bedrock_error_report* report) {
    g_last_report = *report;
    ++g_platform_reports;
}

void bedrock_platform_panic(const char* message) {
    fprintf(stderr, "panic: %s\n", message);
    abort();
}

bool bedrock_platform_set_page_access(void* page, bool accessible) {
    return mprotect(page, BEDROCK_PAGE_SIZE, accessible ? PROT_READ | PROT_WRITE : PROT_NONE) == 0;
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

void bedrock_platform_lock_wait(void) {}

static uint64_t g_unused_bytes;

void bedrock_platform_pages_unused(void* start, size_t bytes) {
    (void)start;
    g_unused_bytes += bytes;
}

/* ---- Helpers ---- */

static unsigned g_hook_reports;
static bedrock_error_kind g_hook_kind;

static void record_hook_report(void* context, const bedrock_error_report* report) {
    CHECK(context == &g_hook_reports);
    g_hook_kind = report->kind;
    ++g_hook_reports;
}

static unsigned g_lines;

static void count_line(void* context, const char* line) {
    (void)context;
    CHECK(strncmp(line, "bedrock: ", 9) == 0 || strncmp(line, "heap", 4) == 0 ||
          strncmp(line, "leaks", 5) == 0);
    ++g_lines;
}

enum { kMemoryBytes = 8 << 20 };
static _Alignas(4096) unsigned char g_memory[kMemoryBytes];
static _Alignas(4096) unsigned char g_region[1u << 20];
static bedrock_page_frame_allocator g_frames;

static void page_frame_allocator(void) {
    const bedrock_phys_range usable = {(uintptr_t)g_memory, kMemoryBytes};
    CHECK(bedrock_pages_init(&g_frames, &usable, 1));
    CHECK(!bedrock_pages_init(&g_frames, &usable, 1)); /* a second call: refused, reported */
    CHECK(g_platform_reports == 1 && g_last_report.kind == BEDROCK_ERROR_RANGE_REFUSED);
    CHECK(strcmp(bedrock_error_kind_name(g_last_report.kind), "range-refused") == 0);
    g_platform_reports = 0;
    CHECK(bedrock_pages_managed(&g_frames) > 0);
    CHECK(bedrock_pages_metadata_bytes(&g_frames) > 0);
    const uint64_t free_pages = bedrock_pages_free_count(&g_frames);

    const bedrock_phys_addr block = bedrock_pages_allocate(&g_frames, 2);
    CHECK(block != BEDROCK_NO_PAGE && block % (4 * BEDROCK_PAGE_SIZE) == 0);
    const bedrock_phys_addr below = bedrock_pages_allocate_below(&g_frames, 0, BEDROCK_NO_LIMIT);
    const bedrock_phys_addr run = bedrock_pages_allocate_run(&g_frames, 3, 65536, BEDROCK_NO_LIMIT);
    CHECK(below != BEDROCK_NO_PAGE && run != BEDROCK_NO_PAGE && run % 65536 == 0);
    CHECK(bedrock_pages_allocate(&g_frames, BEDROCK_MAX_ORDER + 1) == BEDROCK_NO_PAGE);
    CHECK(bedrock_pages_free_count(&g_frames) == free_pages - 8);
    CHECK(bedrock_pages_extend_run(&g_frames, run, 3, 5));  /* the rest of its 64 KiB block */
    CHECK(!bedrock_pages_extend_run(&g_frames, run, 3, 6)); /* its count is 5 now */
    CHECK(bedrock_pages_free_count(&g_frames) == free_pages - 10);
    CHECK(bedrock_pages_shrink_run(&g_frames, run, 5, 2));  /* its last 3 pages freed */
    CHECK(!bedrock_pages_shrink_run(&g_frames, run, 5, 1)); /* its count is 2 now */
    CHECK(bedrock_pages_free_count(&g_frames) == free_pages - 7);
    bedrock_pages_free(&g_frames, block, 2);
    bedrock_pages_free(&g_frames, below, 0);
    bedrock_pages_free_run(&g_frames, run, 2);

    bedrock_pages_free(&g_frames, block, 2); /* a double free: reported, nothing changes */
    CHECK(g_platform_reports == 1 && g_last_report.kind == BEDROCK_ERROR_DOUBLE_FREE);
    CHECK(strcmp(g_last_report.component, "pfa") == 0 && g_last_report.address == block);
    CHECK(strcmp(bedrock_error_kind_name(g_last_report.kind), "double-free") == 0);
    g_lines = 0;
    bedrock_write_error_report(&g_last_report, count_line, NULL);
    CHECK(g_lines >= 2);

    const bedrock_phys_range reserved = {bedrock_pages_allocate(&g_frames, 0), BEDROCK_PAGE_SIZE};
    bedrock_pages_free(&g_frames, reserved.base, 0);
    CHECK(bedrock_pages_reserve(&g_frames, reserved));
    CHECK(bedrock_pages_free_count(&g_frames) == free_pages - 1);
    const char* failure = "not set";
    CHECK(bedrock_pages_check(&g_frames, &failure) && failure == NULL);

    /* A freed 1 MiB block is retained (not told) until a trim tells of it. */
    const bedrock_phys_addr large = bedrock_pages_allocate(&g_frames, 8);
    CHECK(large != BEDROCK_NO_PAGE);
    bedrock_pages_free(&g_frames, large, 8);
    CHECK(g_unused_bytes == 0);
    bedrock_pages_tell_unused(&g_frames);
    CHECK(g_unused_bytes >= (1u << 20) && g_unused_bytes <= kMemoryBytes);
}

static void heaps(void) {
    bedrock_heap* heap = bedrock_heap_create(&g_frames);
    bedrock_heap* region = bedrock_heap_create_in_region(g_region, sizeof g_region);
    CHECK(heap != NULL && region != NULL);

    void* aligned = bedrock_heap_allocate(heap, 5000, 4096);
    CHECK(aligned != NULL && (uintptr_t)aligned % 4096 == 0);
    CHECK(bedrock_heap_usable_size(heap, aligned) >= 5000);
    unsigned char* moved = bedrock_heap_reallocate(region, NULL, 10);
    CHECK(moved != NULL);
    moved[9] = 42;
    moved = bedrock_heap_reallocate(region, moved, 100000);
    CHECK(moved != NULL && moved[9] == 42);

    bedrock_heap_free(heap, moved); /* another heap's block: reported, ignored */
    CHECK(g_last_report.kind == BEDROCK_ERROR_FOREIGN_HEAP);
    CHECK(!bedrock_heap_destroy(heap)); /* blocks live */
    CHECK(g_last_report.kind == BEDROCK_ERROR_HEAP_IN_USE);

    bedrock_heap_statistics statistics;
    bedrock_heap_statistics_of(heap, &statistics);
    CHECK(statistics.blocks_in_use == 1 && statistics.medium_blocks == 1);
    CHECK(statistics.classes[0].block_size == 16);
    g_lines = 0;
    bedrock_heap_report(heap, count_line, NULL);
    CHECK(g_lines > 0);

    bedrock_heap_free(heap, aligned);
    bedrock_heap_free(region, moved);
    bedrock_heap_trim(heap);
    CHECK(bedrock_heap_check(heap) && bedrock_heap_check(region));
    CHECK(bedrock_heap_destroy(heap) && bedrock_heap_destroy(region));
}

static void default_heap(void) {
    CHECK(bedrock_default_heap() == NULL && bedrock_malloc(8) == NULL);
    bedrock_heap* heap = bedrock_heap_create(&g_frames);
    bedrock_set_default_heap(heap);
    CHECK(bedrock_default_heap() == heap);

    char* text = bedrock_malloc(6);
    int* zeroes = bedrock_calloc(100, sizeof *zeroes);
    void* memaligned = bedrock_memalign(256, 10);
    void* aligned = bedrock_aligned_alloc(64, 10);
    void* posix = NULL;
    void* page = bedrock_valloc(10);
    void* pages = bedrock_pvalloc(5000);
    CHECK(text != NULL && zeroes != NULL && zeroes[99] == 0);
    CHECK(memaligned != NULL && (uintptr_t)memaligned % 256 == 0 && aligned != NULL);
    CHECK(bedrock_posix_memalign(&posix, 3, 8) == BEDROCK_EINVAL && posix == NULL);
    CHECK(bedrock_posix_memalign(&posix, 32, 8) == 0 && posix != NULL);
    CHECK(page != NULL && (uintptr_t)page % BEDROCK_PAGE_SIZE == 0);
    CHECK(pages != NULL && bedrock_malloc_usable_size(pages) >= 2 * BEDROCK_PAGE_SIZE);
    bedrock_memcpy(text, "bedro", 6);
    bedrock_memmove(text + 1, text, 4);
    bedrock_memset(text + 5, 0, 1);
    CHECK(bedrock_memcmp(text, "bbedr", 6) == 0 && bedrock_strlen(text) == 5);
    text = bedrock_realloc(text, 3000);
    CHECK(text != NULL && text[0] == 'b');

    bedrock_free(text);
    bedrock_free(zeroes);
    bedrock_free(memaligned);
    bedrock_free(aligned);
    bedrock_free(posix);
    bedrock_free(page);
    bedrock_free(pages);
    bedrock_set_default_heap(NULL);
    CHECK(bedrock_heap_destroy(heap));
}

static void checked_mode(void) {
    bedrock_heap* heap = bedrock_heap_create_in_region(g_region, sizeof g_region);
    const bedrock_error_hook hook = {record_hook_report, &g_hook_reports};
    bedrock_heap_set_error_hook(heap, &hook);
    CHECK(bedrock_heap_check_level(heap) == BEDROCK_CHECK_OFF);
    CHECK(bedrock_heap_set_check_level(heap, BEDROCK_CHECK_REPORT));
    CHECK(bedrock_heap_check_level(heap) == BEDROCK_CHECK_REPORT);
    /* Values that are no level, as C may pass them: refused, the level kept (256 and 258 once
     * wrapped to OFF and ABORT). */
    CHECK(!bedrock_heap_set_check_level(heap, (bedrock_check_level)256));
    CHECK(!bedrock_heap_set_check_level(heap, (bedrock_check_level)258));
    CHECK(!bedrock_heap_set_check_level(heap, (bedrock_check_level)-1));
    CHECK(bedrock_heap_check_level(heap) == BEDROCK_CHECK_REPORT);
    bedrock_heap_set_quarantine_limit(heap, 4096);
    const uint64_t checkpoint = bedrock_heap_checkpoint(heap);

    unsigned char* block = bedrock_heap_allocate(heap, 24, 0);
    CHECK(block != NULL && bedrock_heap_usable_size(heap, block) == 24);
    block[24] = 1; /* past the end: the red zone */
    bedrock_heap_free(heap, block);
    CHECK(g_hook_reports == 1 && g_hook_kind == BEDROCK_ERROR_BUFFER_OVERFLOW);

    void* leaked = bedrock_heap_allocate(heap, 40, 0);
    const bedrock_leak_summary leaks = bedrock_heap_leaks_since(heap, checkpoint);
    CHECK(leaks.blocks == 1 && leaks.bytes == 40 && leaks.sites == 1);
    g_lines = 0;
    CHECK(bedrock_heap_report_leaks(heap, count_line, NULL, checkpoint).blocks == 1);
    CHECK(g_lines >= 2);
    bedrock_heap_free(heap, leaked);

    /* Guard pages: a freed guarded block's page is inaccessible; a fault there is explained. */
    CHECK(bedrock_heap_enable_guard_pages(heap, 4, 0));
    void* guarded = bedrock_heap_allocate_guarded(heap, 64, 0);
    CHECK(guarded != NULL);
    bedrock_heap_free(heap, guarded);
    CHECK(bedrock_heap_explain_fault((uintptr_t)guarded, BEDROCK_ACCESS_READ, NULL));
    CHECK(g_hook_reports == 2 && g_hook_kind == BEDROCK_ERROR_USE_AFTER_FREE);
    CHECK(!bedrock_heap_explain_fault((uintptr_t)&g_failures, BEDROCK_ACCESS_WRITE, NULL));

    bedrock_heap_flush_quarantine(heap);
    bedrock_heap_set_error_hook(heap, NULL);
    CHECK(bedrock_heap_set_check_level(heap, BEDROCK_CHECK_OFF));
    CHECK(bedrock_heap_check(heap) && bedrock_heap_destroy(heap));
}

/* Every function given a null handle reports BEDROCK_ERROR_NULL_HANDLE naming itself, returns
 * its failure value and changes nothing (the allocator's free count and check stay as they
 * were). */
static unsigned g_null_reports;

static bool null_reported(const char* function) {
    const bool reported = g_platform_reports == g_null_reports + 1 &&
                          g_last_report.kind == BEDROCK_ERROR_NULL_HANDLE &&
                          strcmp(g_last_report.detail, function) == 0;
    g_null_reports = g_platform_reports;
    return reported;
}

static void null_handles(void) {
    const uint64_t free_pages = bedrock_pages_free_count(&g_frames);
    g_platform_reports = 0;
    g_null_reports = 0;
    bedrock_phys_range range = {(uintptr_t)g_memory, kMemoryBytes};
    CHECK(!bedrock_pages_init(NULL, &range, 1) && null_reported("bedrock_pages_init"));
    CHECK(bedrock_pages_allocate(NULL, 0) == BEDROCK_NO_PAGE &&
          null_reported("bedrock_pages_allocate"));
    CHECK(bedrock_pages_allocate_below(NULL, 0, BEDROCK_NO_LIMIT) == BEDROCK_NO_PAGE &&
          null_reported("bedrock_pages_allocate_below"));
    CHECK(bedrock_pages_allocate_run(NULL, 3, 0, BEDROCK_NO_LIMIT) == BEDROCK_NO_PAGE &&
          null_reported("bedrock_pages_allocate_run"));
    bedrock_pages_free(NULL, (uintptr_t)g_memory, 0);
    CHECK(null_reported("bedrock_pages_free"));
    bedrock_pages_free_run(NULL, (uintptr_t)g_memory, 3);
    CHECK(null_reported("bedrock_pages_free_run"));
    CHECK(!bedrock_pages_extend_run(NULL, (uintptr_t)g_memory, 1, 2) &&
          null_reported("bedrock_pages_extend_run"));
    CHECK(!bedrock_pages_shrink_run(NULL, (uintptr_t)g_memory, 2, 1) &&
          null_reported("bedrock_pages_shrink_run"));
    CHECK(!bedrock_pages_reserve(NULL, range) && null_reported("bedrock_pages_reserve"));
    bedrock_pages_tell_unused(NULL);
    CHECK(null_reported("bedrock_pages_tell_unused"));
    CHECK(bedrock_pages_managed(NULL) == 0 && null_reported("bedrock_pages_managed"));
    CHECK(bedrock_pages_free_count(NULL) == 0 && null_reported("bedrock_pages_free_count"));
    CHECK(bedrock_pages_metadata_bytes(NULL) == 0 && null_reported("bedrock_pages_metadata_bytes"));
    const char* failure = NULL;
    CHECK(!bedrock_pages_check(NULL, &failure) && failure != NULL &&
          null_reported("bedrock_pages_check"));
    CHECK(bedrock_heap_create(NULL) == NULL && null_reported("bedrock_heap_create"));

    CHECK(!bedrock_heap_destroy(NULL) && null_reported("bedrock_heap_destroy"));
    CHECK(bedrock_heap_allocate(NULL, 64, 0) == NULL && null_reported("bedrock_heap_allocate"));
    bedrock_heap_free(NULL, g_region);
    CHECK(null_reported("bedrock_heap_free"));
    CHECK(bedrock_heap_reallocate(NULL, NULL, 64) == NULL &&
          null_reported("bedrock_heap_reallocate"));
    CHECK(bedrock_heap_usable_size(NULL, g_region) == 0 &&
          null_reported("bedrock_heap_usable_size"));
    bedrock_heap_trim(NULL);
    CHECK(null_reported("bedrock_heap_trim"));
    CHECK(!bedrock_heap_tell_unused(NULL) && null_reported("bedrock_heap_tell_unused"));
    CHECK(!bedrock_heap_set_unused_interval(NULL, 4096) &&
          null_reported("bedrock_heap_set_unused_interval"));
    CHECK(!bedrock_heap_check(NULL) && null_reported("bedrock_heap_check"));
    bedrock_heap_statistics statistics;
    memset(&statistics, 0xff, sizeof(statistics));
    bedrock_heap_statistics_of(NULL, &statistics);
    CHECK(statistics.blocks_in_use == 0 && statistics.pages_held == 0 &&
          null_reported("bedrock_heap_statistics_of"));
    bedrock_heap_report(NULL, count_line, NULL);
    CHECK(null_reported("bedrock_heap_report"));
    CHECK(!bedrock_heap_set_check_level(NULL, BEDROCK_CHECK_REPORT) &&
          null_reported("bedrock_heap_set_check_level"));
    CHECK(bedrock_heap_check_level(NULL) == BEDROCK_CHECK_OFF &&
          null_reported("bedrock_heap_check_level"));
    bedrock_heap_set_error_hook(NULL, NULL);
    CHECK(null_reported("bedrock_heap_set_error_hook"));
    bedrock_heap_set_quarantine_limit(NULL, 4096);
    CHECK(null_reported("bedrock_heap_set_quarantine_limit"));
    bedrock_heap_flush_quarantine(NULL);
    CHECK(null_reported("bedrock_heap_flush_quarantine"));
    CHECK(bedrock_heap_checkpoint(NULL) == 0 && null_reported("bedrock_heap_checkpoint"));
    CHECK(bedrock_heap_leaks_since(NULL, 0).blocks == 0 &&
          null_reported("bedrock_heap_leaks_since"));
    CHECK(bedrock_heap_report_leaks(NULL, count_line, NULL, 0).blocks == 0 &&
          null_reported("bedrock_heap_report_leaks"));
    CHECK(!bedrock_heap_enable_guard_pages(NULL, 4, 1) &&
          null_reported("bedrock_heap_enable_guard_pages"));
    CHECK(bedrock_heap_allocate_guarded(NULL, 64, 0) == NULL &&
          null_reported("bedrock_heap_allocate_guarded"));
    CHECK(strcmp(bedrock_error_kind_name(BEDROCK_ERROR_NULL_HANDLE), "null-handle") == 0);

    CHECK(g_platform_reports == 36);
    CHECK(bedrock_pages_free_count(&g_frames) == free_pages &&
          bedrock_pages_check(&g_frames, NULL));
    g_platform_reports = 0;
}

int main(void) {
    printf("Bedrock %s (%d.%d.%d)\n", BEDROCK_VERSION_STRING, BEDROCK_VERSION_MAJOR,
           BEDROCK_VERSION_MINOR, BEDROCK_VERSION_PATCH);
    page_frame_allocator();
    heaps();
    default_heap();
    checked_mode();
    null_handles();
    CHECK(bedrock_pages_check(&g_frames, NULL));
    printf("c interface: %s\n", g_failures == 0 ? "ok" : "FAILED");
    return g_failures == 0 ? 0 : 1;
}
