/* SPDX-License-Identifier: MIT */
/* The hosted memory source under the preload: the page frame allocator grows into its
 * reservation as allocations need it, refuses what lies beyond it, and gives freed pages back
 * (pages_unused: madvise), so the resident set drops after a large free.
 *   memory give_back   256 MiB in one block and in 64 blocks of 4 MiB, touched, then freed:
 *                      the resident set must drop by at least 3/4 of what they added
 *   memory grow        2 GiB in 32 MiB blocks (untouched): the allocator grows chunk by chunk
 *   memory limit       with BEDROCK_MEMORY=64: a 128 MiB block fails with ENOMEM, and small
 *                      ones still succeed
 *   memory address_space  under an address-space limit of 1,000,000 KiB (ulimit -v: the test
 *                      sets it): one block of 200 MiB, freed, then 800 MiB in blocks of 4,000
 *                      bytes, freed, then 600 MiB in blocks of 3,000,000 bytes must be served
 *                      (the reservation is its fair share of the limit, 8 MiB here, and growth
 *                      extends it as requests need: 961 and 692 MiB; glibc serves 970 and
 *                      972 MiB; with a 512 MiB reservation that growth did not extend, 505 and
 *                      366 MiB)
 *   memory large_under_limit  under an address-space limit of 1,000,000 KiB (ulimit -v: the
 *                      test sets it): one block of 600 MiB, written at both ends and freed, then
 *                      another, must be served, as glibc serves them (growth asked for twice the
 *                      buddy block the run would be cut from, 2 GiB: nothing over 256 MiB was
 *                      had; it now asks for the run's own pages once the buddy block fails)
 *   memory data_limit  under a data limit of 102,400 KiB (ulimit -d: the test sets it): 94 MiB
 *                      in blocks of 4,000 bytes must be served (glibc serves 99 MiB; 90 MiB
 *                      when a chunk the limit refused made growth fail instead of trying half
 *                      of it, and so on down to what the request needed; now 98 MiB)
 *   memory lowered_limit, lowered_data_limit  the program lowers its own address-space
 *                      (data) limit, setrlimit(RLIMIT_AS) (RLIMIT_DATA), to 2 GiB after the heap
 *                      started: a thread, a 1 MiB mmap and a 64 MiB block must still be had, and
 *                      a 3 GiB block refused with ENOMEM, as under glibc (the reservation counted
 *                      against both, so every later mapping failed, a stack's growth too: the
 *                      part of it not grown into is now given back to fit the address-space
 *                      limit, and is PROT_NONE, which the data limit does not count)
 *   memory lowered_to_headroom  the program mallocs 100 bytes, then lowers its address-space
 *                      limit to its own address space (without the 64 GiB reservation) + 258 MiB:
 *                      16 threads with 8 MiB stacks must start together, and then a 64 MiB mmap
 *                      and a 32 MiB block be had, as under glibc (the reservation kept the largest
 *                      half, quarter, ... of itself that fit, 256 MiB: no thread started; it now
 *                      keeps what it has grown into and its fair share ahead: the next chunk less
 *                      its free pages, no more than half of what the limit leaves)
 *   memory limited_start  under an address-space limit of 200,000 KiB (ulimit -v: the test sets
 *                      it): after a 1,000-byte malloc, 16 threads with 8 MiB stacks must start
 *                      together, and then a 96 MiB mmap be had (glibc: 20 threads, then 160 MiB;
 *                      now 20 and 152 MiB; the reservation took the largest half, quarter, ... of
 *                      64 GiB that mmap granted, 128 MiB: 8 threads, then 32 MiB)
 *   memory mlockall    with BEDROCK_MEMORY=2048: mlockall(MCL_CURRENT) (which makes every
 *                      accessible page of the process resident) adds under 256 MiB to the
 *                      resident set, not the whole reservation (it made all 2 GiB resident, all
 *                      64 GiB by default); where mlockall is refused (no CAP_IPC_LOCK and a small
 *                      RLIMIT_MEMLOCK), there is nothing to check
 *   memory calloc      a 1 GiB calloc adds little to the resident set (its pages are not
 *                      written); callocs over memory just written with 0xab, at page-aligned and
 *                      unaligned starts and ends, read as zeroes to the byte, and the bytes
 *                      around them in their page stay as written
 *   memory trim        8 threads each allocate and write 100,000 blocks of 64 bytes, wait for
 *                      one another (one measures the resident set), and free them;
 *                      malloc_trim(0) must then take at least 3/4 of what they added off the
 *                      resident set (the free pages inside the heap's arenas)
 *   memory thread_exit 8 rounds of 32 threads that each allocate and write 5,000 blocks of
 *                      16-2,015 bytes, free them and exit: what a finished thread cached goes
 *                      back (Bedrock::hosted drains its CPU slot as it exits), so malloc_trim(0)
 *                      then leaves under 8 MiB more resident than before the rounds
 *   memory rounds      4 rounds of 8 threads that each keep a window of 20,000 blocks of
 *                      16-2,015 bytes (about 20 MiB) live while allocating 48 MiB, then free
 *                      them and exit: without a malloc_trim(0), under 64 MiB more stays
 *                      resident than before the rounds (the heap tells its free pages unused
 *                      as its use drops: heap_set_unused_interval)
 * Prints the figures, then "ok"; exits 1 on the first failed expectation. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#define MIB ((size_t)1 << 20)

/* /proc/self/statm's field `field` (0: the address space, 1: the resident set), in KiB. */
static long statm_kib(int field) {
    long values[2] = {0, 0};
    FILE* statm = fopen("/proc/self/statm", "r");
    if (statm == NULL || fscanf(statm, "%ld %ld", &values[0], &values[1]) != 2) {
        exit(1);
    }
    fclose(statm);
    /* statm counts the kernel's pages: AT_PAGESZ is their size (what sysconf says may be a
     * pretended one: page_size_shim.c). */
    return values[field] * (long)(getauxval(AT_PAGESZ) / 1024);
}

static long resident_kib(void) {
    return statm_kib(1);
}

static int expect(int condition, const char* what) {
    if (!condition) {
        printf("FAIL: %s\n", what);
        exit(1);
    }
    return 1;
}

static void give_back(void) {
    const long before = resident_kib();
    char* big = malloc(256 * MIB);
    expect(big != NULL, "256 MiB");
    memset(big, 1, 256 * MIB);
    const long touched = resident_kib();
    free(big);
    const long after = resident_kib();
    printf("one block: %ld KiB, touched %ld KiB, freed %ld KiB\n", before, touched, after);
    expect(touched - before >= 250 * 1024, "the block was touched");
    expect(touched - after >= 3 * (touched - before) / 4, "freeing gave the pages back");

    char* blocks[64];
    for (int i = 0; i < 64; ++i) {
        blocks[i] = malloc(4 * MIB);
        expect(blocks[i] != NULL, "4 MiB");
        memset(blocks[i], 1, 4 * MIB);
    }
    const long many = resident_kib();
    for (int i = 0; i < 64; ++i) {
        free(blocks[i]);
    }
    const long many_after = resident_kib();
    printf("64 blocks: touched %ld KiB, freed %ld KiB\n", many, many_after);
    expect(many - many_after >= 3 * 256 * 1024 / 4, "freeing 64 blocks gave the pages back");
}

static void grow(void) {
    char* blocks[64];
    for (int i = 0; i < 64; ++i) {
        blocks[i] = malloc(32 * MIB);
        expect(blocks[i] != NULL, "32 MiB blocks up to 2 GiB");
        blocks[i][0] = (char)i;
        blocks[i][32 * MIB - 1] = (char)i;
    }
    for (int i = 0; i < 64; ++i) {
        expect(blocks[i][0] == (char)i && blocks[i][32 * MIB - 1] == (char)i, "contents kept");
        free(blocks[i]);
    }
    printf("2 GiB in 32 MiB blocks\n");
}

static void limit(void) {
    errno = 0;
    void* too_big = malloc(128 * MIB);
    expect(too_big == NULL && errno == ENOMEM, "128 MiB beyond a 64 MiB reservation fails");
    for (int i = 0; i < 1000; ++i) {
        void* small = malloc(100);
        expect(small != NULL, "small blocks after the failure");
        free(small);
    }
    printf("128 MiB refused\n");
}

/* `total` bytes in blocks of `size`, each allocated (failing the test where one is refused, with
 * `what`), then all freed. */
static void serve_in_blocks(size_t total, size_t size, const char* what) {
    void* chain = NULL;
    for (size_t served = 0; served < total; served += size) {
        void** block = malloc(size);
        expect(block != NULL, what);
        *block = chain;
        chain = block;
    }
    while (chain != NULL) {
        void* next = *(void**)chain;
        free(chain);
        chain = next;
    }
}

static void address_space(void) {
    void* large = malloc(200 * MIB);
    expect(large != NULL, "a 200 MiB block under the limit");
    free(large);
    serve_in_blocks(800 * MIB, 4000, "800 MiB in blocks of 4,000 bytes under the limit");
    serve_in_blocks(600 * MIB, 3000000, "600 MiB in blocks of 3,000,000 bytes under the limit");
    printf("200 MiB in one block, then 800 MiB in blocks of 4,000 bytes and 600 MiB in blocks "
           "of 3,000,000\n");
}

static void data_limit(void) {
    serve_in_blocks(94 * MIB, 4000, "94 MiB in blocks of 4,000 bytes under a 100 MiB data limit");
    printf("94 MiB in blocks of 4,000 bytes under the data limit\n");
}

static void large_under_limit(void) {
    for (int round = 0; round < 2; ++round) {
        char* block = malloc(600 * MIB);
        expect(block != NULL, "a 600 MiB block under a 1,000,000 KiB limit");
        memset(block, 1, MIB);
        memset(block + 599 * MIB, 2, MIB);
        expect(block[0] == 1 && block[600 * MIB - 1] == 2,
               "the block's ends keep what was written");
        free(block);
    }
    printf("600 MiB in one block, twice, under the limit\n");
}

static void* return_argument(void* argument) {
    return argument;
}

static void lowered_limit(int resource) {
    void* volatile first = malloc(64); /* the heap starts here, before the limit */
    free(first);
    const struct rlimit limit = {(rlim_t)2 << 30, (rlim_t)2 << 30};
    expect(setrlimit(resource, &limit) == 0, "setrlimit");
    pthread_t thread;
    expect(pthread_create(&thread, NULL, return_argument, NULL) == 0, "a thread");
    pthread_join(thread, NULL);
    void* mapping = mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    expect(mapping != MAP_FAILED, "a 1 MiB mmap");
    munmap(mapping, MIB);
    char* block = malloc(64 * MIB);
    expect(block != NULL, "64 MiB");
    memset(block, 1, 64 * MIB);
    free(block);
    errno = 0;
    void* volatile too_large = malloc(3072 * MIB);
    expect(too_large == NULL && errno == ENOMEM, "3 GiB over a 2 GiB limit: ENOMEM");
    printf("under a 2 GiB limit: a thread, a mapping and 64 MiB, and 3 GiB refused\n");
}

static long address_space_kib(void) {
    return statm_kib(0);
}

/* Starts `count` threads with 8 MiB stacks, all alive together, then joins them. Returns how
 * many started. */
static int start_threads(int count) {
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setstacksize(&attributes, 8 * MIB);
    pthread_t threads[16];
    int started = 0;
    while (started < count &&
           pthread_create(&threads[started], &attributes, return_argument, NULL) == 0) {
        ++started;
    }
    pthread_attr_destroy(&attributes);
    for (int i = 0; i < started; ++i) {
        pthread_join(threads[i], NULL);
    }
    return started;
}

/* Whether a mapping of `bytes` can be had (it is given back at once). */
static int mapping_fits(size_t bytes) {
    void* mapping = mmap(NULL, bytes, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapping == MAP_FAILED) {
        return 0;
    }
    munmap(mapping, bytes);
    return 1;
}

static void lowered_to_headroom(void) {
    void* volatile first = malloc(100); /* the heap starts here, before the limit */
    /* The program's own mappings: all but the preload's default reservation (64 GiB, all of it
     * counted), if there is one. */
    long others_kib = address_space_kib();
    others_kib -= others_kib > (64L << 20) ? 64L << 20 : 0;
    const rlim_t bytes = ((rlim_t)others_kib << 10) + 258 * MIB;
    const struct rlimit limit = {bytes, RLIM_INFINITY};
    expect(setrlimit(RLIMIT_AS, &limit) == 0, "setrlimit");
    const int started = start_threads(16);
    printf("limit %ld KiB (others %ld KiB + 258 MiB): address space %ld KiB, %d threads of 16\n",
           (long)(bytes >> 10), others_kib, address_space_kib(), started);
    expect(started == 16, "16 threads under the lowered limit");
    expect(mapping_fits(64 * MIB), "a 64 MiB mmap under the lowered limit");
    void* block = malloc(32 * MIB);
    expect(block != NULL, "32 MiB under the lowered limit");
    free(block);
    free(first);
}

static void limited_start(void) {
    void* volatile first = malloc(1000); /* the heap starts here, under the limit */
    const int started = start_threads(16);
    printf("address space %ld KiB, %d threads of 16\n", address_space_kib(), started);
    expect(started == 16, "16 threads under the limit");
    expect(mapping_fits(96 * MIB), "a 96 MiB mmap under the limit");
    free(first);
}

static void lock_all(void) {
    void* volatile first = malloc(64); /* the heap starts here */
    free(first);
    const long before = resident_kib();
    if (mlockall(MCL_CURRENT) != 0) {
        printf("mlockall refused (%s): nothing to check\n", strerror(errno));
        return;
    }
    const long after = resident_kib();
    munlockall();
    printf("mlockall: resident %ld KiB before, %ld KiB after\n", before, after);
    expect(after - before < 256 * 1024, "mlockall made the reservation resident");
}

static void expect_zeroes(const unsigned char* block, size_t bytes, const char* what) {
    for (size_t i = 0; i < bytes; ++i) {
        if (block[i] != 0) {
            printf("byte %zu of %zu is 0x%02x\n", i, bytes, block[i]);
            expect(0, what);
        }
    }
}

static void calloc_lazy(void) {
    const long before = resident_kib();
    unsigned char* table = calloc(1024, MIB);
    expect(table != NULL, "1 GiB calloc");
    const long after = resident_kib();
    printf("1 GiB calloc: resident %ld KiB, then %ld KiB\n", before, after);
    expect(after - before < 64 * 1024, "a calloc does not write its pages");
    expect(table[0] == 0 && table[512 * MIB + 7] == 0 && table[1024 * MIB - 1] == 0, "zeroes");
    free(table);

    /* Dirty memory, then callocs that reuse it: a large run (page-aligned) and medium blocks
     * (16-byte aligned) of sizes that end inside a page. */
    const size_t sizes[] = {64 * MIB, 64 * MIB + 123, MIB, MIB + 4000, 3 * MIB + 16};
    for (size_t n = 0; n < sizeof(sizes) / sizeof(sizes[0]); ++n) {
        /* A neighbour on each side of the block in the same arena, kept written with 0xcd. */
        unsigned char* below = malloc(100);
        unsigned char* dirty = malloc(sizes[n]);
        unsigned char* above = malloc(100);
        expect(below != NULL && dirty != NULL && above != NULL, "blocks");
        memset(below, 0xcd, 100);
        memset(above, 0xcd, 100);
        memset(dirty, 0xab, sizes[n]);
        free(dirty);
        unsigned char* zeroed = calloc(1, sizes[n]);
        expect(zeroed != NULL, "calloc over dirty memory");
        expect_zeroes(zeroed, sizes[n], "calloc over dirty memory reads as zeroes");
        for (int i = 0; i < 100; ++i) {
            expect(below[i] == 0xcd && above[i] == 0xcd, "the neighbours are untouched");
        }
        printf("calloc of %zu bytes at offset %zu in its page: zeroes\n", sizes[n],
               (size_t)zeroed % (size_t)sysconf(_SC_PAGESIZE));
        free(zeroed);
        free(below);
        free(above);
    }
}

enum { kTrimThreads = 8, kTrimBlocks = 100000 };

/* Every thread holds its blocks until all have allocated theirs: they are resident at once,
 * however the threads are scheduled, and one of them measures that before any frees. */
static pthread_barrier_t g_all_allocated;
static pthread_barrier_t g_measured;
static long g_all_allocated_kib;

static void* churn(void* unused) {
    (void)unused;
    void** blocks = malloc(kTrimBlocks * sizeof(void*));
    expect(blocks != NULL, "the block table");
    for (int i = 0; i < kTrimBlocks; ++i) {
        blocks[i] = malloc(64);
        expect(blocks[i] != NULL, "64 bytes");
        memset(blocks[i], 1, 64);
    }
    if (pthread_barrier_wait(&g_all_allocated) == PTHREAD_BARRIER_SERIAL_THREAD) {
        g_all_allocated_kib = resident_kib();
    }
    pthread_barrier_wait(&g_measured);
    for (int i = 0; i < kTrimBlocks; ++i) {
        free(blocks[i]);
    }
    free(blocks);
    return NULL;
}

static void trim(void) {
    const long before = resident_kib();
    expect(pthread_barrier_init(&g_all_allocated, NULL, kTrimThreads) == 0 &&
               pthread_barrier_init(&g_measured, NULL, kTrimThreads) == 0,
           "the barriers");
    pthread_t threads[kTrimThreads];
    for (int i = 0; i < kTrimThreads; ++i) {
        expect(pthread_create(&threads[i], NULL, churn, NULL) == 0, "a thread");
    }
    for (int i = 0; i < kTrimThreads; ++i) {
        pthread_join(threads[i], NULL);
    }
    const long peak = g_all_allocated_kib;
    const long freed = resident_kib();
    malloc_trim(0);
    const long trimmed = resident_kib();
    printf("8 threads: resident %ld KiB, all allocated %ld KiB, all freed %ld KiB, trimmed %ld "
           "KiB\n",
           before, peak, freed, trimmed);
    expect(peak - before >= 32 * 1024, "the threads' blocks were resident");
    expect(peak - trimmed >= 3 * (peak - before) / 4, "malloc_trim gave the free pages back");
}

enum { kExitRounds = 8, kExitThreads = 32, kExitBlocks = 5000 };

static void* allocate_and_exit(void* seed_pointer) {
    unsigned seed = (unsigned)(size_t)seed_pointer;
    void** blocks = malloc(kExitBlocks * sizeof(void*));
    expect(blocks != NULL, "the block table");
    for (int i = 0; i < kExitBlocks; ++i) {
        const size_t size = 16 + (size_t)(rand_r(&seed) % 2000);
        blocks[i] = malloc(size);
        expect(blocks[i] != NULL, "a small block");
        memset(blocks[i], 1, size);
    }
    for (int i = 0; i < kExitBlocks; ++i) {
        free(blocks[i]);
    }
    free(blocks);
    return NULL;
}

static void thread_exit(void) {
    const long before = resident_kib();
    for (int round = 0; round < kExitRounds; ++round) {
        pthread_t threads[kExitThreads];
        for (int i = 0; i < kExitThreads; ++i) {
            void* seed = (void*)(size_t)(round * kExitThreads + i + 1);
            expect(pthread_create(&threads[i], NULL, allocate_and_exit, seed) == 0, "a thread");
        }
        for (int i = 0; i < kExitThreads; ++i) {
            pthread_join(threads[i], NULL);
        }
    }
    malloc_trim(0);
    const long trimmed = resident_kib();
    printf("%d rounds of %d threads: resident %ld KiB before, %ld KiB trimmed\n", kExitRounds,
           kExitThreads, before, trimmed);
    expect(trimmed - before < 8 * 1024, "the finished threads' cached blocks went back");
}

enum { kRounds = 4, kRoundThreads = 8, kRoundWindow = 20000 };
#define ROUND_BYTES (48 * MIB)

static void* allocate_in_a_window(void* seed_pointer) {
    unsigned seed = (unsigned)(size_t)seed_pointer;
    void** window = calloc(kRoundWindow, sizeof(void*));
    expect(window != NULL, "the window");
    for (size_t allocated = 0; allocated < ROUND_BYTES;) {
        const size_t size = 16 + (size_t)(rand_r(&seed) % 2000);
        const int slot = rand_r(&seed) % kRoundWindow;
        free(window[slot]);
        window[slot] = malloc(size);
        expect(window[slot] != NULL, "a small block");
        memset(window[slot], 1, size);
        allocated += size;
    }
    for (int i = 0; i < kRoundWindow; ++i) {
        free(window[i]);
    }
    free(window);
    return NULL;
}

static void rounds(void) {
    const long before = resident_kib();
    long peak = 0;
    for (int round = 0; round < kRounds; ++round) {
        pthread_t threads[kRoundThreads];
        for (int i = 0; i < kRoundThreads; ++i) {
            void* seed = (void*)(size_t)(round * kRoundThreads + i + 1);
            expect(pthread_create(&threads[i], NULL, allocate_in_a_window, seed) == 0, "a thread");
        }
        for (int i = 0; i < kRoundThreads; ++i) {
            pthread_join(threads[i], NULL);
        }
        const long after = resident_kib();
        peak = after > peak ? after : peak;
    }
    const long after = resident_kib();
    printf("%d rounds of %d threads: resident %ld KiB before, %ld KiB after (at most %ld KiB "
           "between rounds)\n",
           kRounds, kRoundThreads, before, after, peak);
    expect(after - before < 64 * 1024, "the heap's free pages left the resident set");
}

int main(int argc, char** argv) {
    if (argc != 2) {
        return 2;
    }
    if (strcmp(argv[1], "give_back") == 0) {
        give_back();
    } else if (strcmp(argv[1], "grow") == 0) {
        grow();
    } else if (strcmp(argv[1], "limit") == 0) {
        limit();
    } else if (strcmp(argv[1], "address_space") == 0) {
        address_space();
    } else if (strcmp(argv[1], "data_limit") == 0) {
        data_limit();
    } else if (strcmp(argv[1], "large_under_limit") == 0) {
        large_under_limit();
    } else if (strcmp(argv[1], "lowered_limit") == 0) {
        lowered_limit(RLIMIT_AS);
    } else if (strcmp(argv[1], "lowered_data_limit") == 0) {
        lowered_limit(RLIMIT_DATA);
    } else if (strcmp(argv[1], "lowered_to_headroom") == 0) {
        lowered_to_headroom();
    } else if (strcmp(argv[1], "limited_start") == 0) {
        limited_start();
    } else if (strcmp(argv[1], "mlockall") == 0) {
        lock_all();
    } else if (strcmp(argv[1], "calloc") == 0) {
        calloc_lazy();
    } else if (strcmp(argv[1], "trim") == 0) {
        trim();
    } else if (strcmp(argv[1], "thread_exit") == 0) {
        thread_exit();
    } else if (strcmp(argv[1], "rounds") == 0) {
        rounds();
    } else {
        return 2;
    }
    printf("ok\n");
    return 0;
}
