/* SPDX-License-Identifier: MIT */
/* The malloc interface's edge behaviour a program relies on, one case per argument, checked the
 * same way with glibc's malloc and with libbedrock-malloc.so preloaded (CMakeLists.txt runs each
 * case both ways; the cases marked "C17" are glibc 2.38's behaviour, checked under the preload
 * only, since the glibc here predates it). Prints "ok" and exits 0 when the case holds. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define EXPECT(condition)                                                                          \
    do {                                                                                           \
        if (!(condition)) {                                                                        \
            printf("FAIL: %s (line %d)\n", #condition, __LINE__);                                  \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

/* The compiler must not fold away calls whose results it thinks it knows. */
static void* volatile g_sink;
static size_t volatile g_huge = SIZE_MAX - 4096;

/* `value`, unknown to the compiler (which warns of invalid alignments it can see). */
static size_t opaque(size_t value) {
    size_t volatile copy = value;
    return copy;
}

static int malloc_basics(void) {
    char* block = malloc(100);
    EXPECT(block != NULL && (uintptr_t)block % 16 == 0);
    memset(block, 1, 100);
    EXPECT(malloc_usable_size(block) >= 100);
    free(block);
    void* empty = malloc(0);
    EXPECT(empty != NULL);
    free(empty);
    free(NULL);
    EXPECT(malloc_usable_size(NULL) == 0);
    return 0;
}

static int malloc_enomem(void) {
    errno = 0;
    g_sink = malloc(g_huge);
    EXPECT(g_sink == NULL && errno == ENOMEM);
    return 0;
}

static int calloc_zeroes_and_overflows(void) {
    for (size_t size = 8; size <= (size_t)4 << 20; size *= 4) {
        unsigned char* block = malloc(size);
        memset(block, 0xab, size);
        free(block);
        block = calloc(1, size);
        EXPECT(block != NULL);
        for (size_t i = 0; i < size; ++i) {
            EXPECT(block[i] == 0);
        }
        free(block);
    }
    errno = 0;
    g_sink = calloc(SIZE_MAX / 2, 3);
    EXPECT(g_sink == NULL && errno == ENOMEM);
    return 0;
}

static int realloc_edges(void) {
    char* block = realloc(NULL, 10);
    EXPECT(block != NULL);
    strcpy(block, "bedrock");
    block = realloc(block, 100000);
    EXPECT(block != NULL && strcmp(block, "bedrock") == 0);
    block = realloc(block, 20);
    EXPECT(block != NULL && strcmp(block, "bedrock") == 0);
    errno = 0;
    g_sink = realloc(block, g_huge);
    EXPECT(g_sink == NULL && errno == ENOMEM && strcmp(block, "bedrock") == 0);
    errno = 0;
    EXPECT(realloc(block, 0) == NULL); /* glibc: frees */
    EXPECT(errno == 0);
    block = realloc(NULL, 0);
    EXPECT(block != NULL);
    free(block);
    return 0;
}

/* Sizes within a page of SIZE_MAX, whose rounding would wrap, for blocks of each kind (small,
 * medium with free memory right after it, large): NULL with ENOMEM, the block intact. */
static int realloc_refuses_sizes_near_size_max(void) {
    static const size_t kSizes[] = {100, 5000, (size_t)4 << 20};
    for (size_t i = 0; i < sizeof(kSizes) / sizeof(kSizes[0]); ++i) {
        for (size_t below = 0; below <= 4096; below += below < 32 ? 1 : 1024) {
            unsigned char* block = malloc(kSizes[i]);
            EXPECT(block != NULL);
            memset(block, 0x5a, kSizes[i]);
            errno = 0;
            g_sink = realloc(block, opaque(SIZE_MAX - below));
            EXPECT(g_sink == NULL && errno == ENOMEM);
            EXPECT(block[0] == 0x5a && block[kSizes[i] - 1] == 0x5a);
            free(block);
        }
    }
    return 0;
}

static int reallocarray_overflows(void) {
    int* array = reallocarray(NULL, 10, sizeof(int));
    EXPECT(array != NULL);
    array[9] = 9;
    errno = 0;
    g_sink = reallocarray(array, SIZE_MAX / 2, 4);
    EXPECT(g_sink == NULL && errno == ENOMEM && array[9] == 9);
    free(array);
    return 0;
}

static int memalign_rounds_up(void) {
    for (size_t alignment = 1; alignment <= (size_t)1 << 22; alignment *= 2) {
        void* block = memalign(opaque(alignment), 100);
        EXPECT(block != NULL && (uintptr_t)block % alignment == 0);
        free(block);
    }
    void* block = memalign(opaque(48), 10); /* not a power of two: rounded up to 64 */
    EXPECT(block != NULL && (uintptr_t)block % 64 == 0);
    free(block);
    errno = 0;
    g_sink = memalign(opaque(SIZE_MAX / 2 + 2), 10);
    EXPECT(g_sink == NULL && errno == EINVAL);
    return 0;
}

static int aligned_alloc_valid(void) {
    void* block = aligned_alloc(4096, 100); /* size need not be a multiple */
    EXPECT(block != NULL && (uintptr_t)block % 4096 == 0);
    free(block);
    return 0;
}

static int aligned_alloc_invalid(void) { /* C17 */
    errno = 0;
    g_sink = aligned_alloc(opaque(0), 16);
    EXPECT(g_sink == NULL && errno == EINVAL);
    errno = 0;
    g_sink = aligned_alloc(opaque(24), 48);
    EXPECT(g_sink == NULL && errno == EINVAL);
    return 0;
}

static int posix_memalign_codes(void) {
    void* block = (void*)1;
    EXPECT(posix_memalign(&block, opaque(4), 16) == EINVAL && block == (void*)1);
    EXPECT(posix_memalign(&block, opaque(24), 16) == EINVAL && block == (void*)1);
    EXPECT(posix_memalign(&block, opaque(0), 16) == EINVAL && block == (void*)1);
    EXPECT(posix_memalign(&block, 64, g_huge) == ENOMEM && block == (void*)1);
    EXPECT(posix_memalign(&block, 256, 1000) == 0 && (uintptr_t)block % 256 == 0);
    free(block);
    return 0;
}

static int page_aligned(void) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char* block = valloc(10);
    EXPECT(block != NULL && (uintptr_t)block % page == 0);
    free(block);
    block = pvalloc(page + 1);
    EXPECT(block != NULL && (uintptr_t)block % page == 0 && malloc_usable_size(block) >= 2 * page);
    memset(block, 1, 2 * page);
    free(block);
    errno = 0;
    g_sink = pvalloc(SIZE_MAX - 10);
    EXPECT(g_sink == NULL && errno == ENOMEM);
    return 0;
}

static int many_blocks(void) {
    enum { kCount = 20000 };
    static char* blocks[kCount];
    for (int round = 0; round < 3; ++round) {
        for (int i = 0; i < kCount; ++i) {
            const size_t size = (size_t)(i * 37 % 5000) + 1;
            blocks[i] = malloc(size);
            EXPECT(blocks[i] != NULL);
            memset(blocks[i], i & 0xff, size);
        }
        for (int i = 0; i < kCount; ++i) {
            EXPECT(blocks[i][0] == (char)(i & 0xff));
            free(blocks[i]);
        }
    }
    return 0;
}

static int trim_and_usable(void) {
    char* block = malloc(3 << 20);
    EXPECT(block != NULL && malloc_usable_size(block) >= (size_t)3 << 20);
    free(block);
    const int trimmed = malloc_trim(0);
    EXPECT(trimmed == 0 || trimmed == 1);
    return 0;
}

/* mallinfo2 counts live blocks: 1,000 blocks of 10,000 bytes add at least their bytes to the
 * bytes in use (uordblks), an 8 MiB block adds itself to the mmap'd (large) bytes (hblkhd), and
 * freeing them takes both back; malloc_info writes XML and refuses options. */
static int mallinfo_counts(void) {
    enum { kCount = 1000, kBytes = 10000 };
    static void* blocks[kCount];
    const struct mallinfo2 before = mallinfo2();
    for (int i = 0; i < kCount; ++i) {
        blocks[i] = malloc(kBytes);
        EXPECT(blocks[i] != NULL);
    }
    char* large = malloc(8 << 20);
    EXPECT(large != NULL);
    const struct mallinfo2 during = mallinfo2();
    EXPECT(during.uordblks >= before.uordblks + (size_t)kCount * kBytes);
    EXPECT(during.hblkhd >= before.hblkhd + ((size_t)8 << 20));
    EXPECT(during.hblks >= before.hblks + 1);
    EXPECT(during.arena >= during.uordblks);
    for (int i = 0; i < kCount; ++i) {
        free(blocks[i]);
    }
    free(large);
    const struct mallinfo2 after = mallinfo2();
    EXPECT(after.uordblks + (size_t)kCount * kBytes / 2 <= during.uordblks);
    EXPECT(after.hblkhd + ((size_t)8 << 20) <= during.hblkhd);
    char* text = NULL;
    size_t length = 0;
    FILE* stream = open_memstream(&text, &length);
    EXPECT(stream != NULL);
    EXPECT(malloc_info(0, stream) == 0);
    EXPECT(malloc_info(1, stream) == EINVAL);
    fclose(stream);
    EXPECT(text != NULL && strncmp(text, "<malloc version=", 16) == 0);
    free(text);
    return 0;
}

/* free() keeps errno (glibc 2.33, POSIX.1-2024), also when what it does inside fails: with the
 * process's memory locked (mlockall, where it is allowed), giving freed pages back to the kernel
 * (madvise) fails with EINVAL. Large blocks, so that their pages are given back. */
static int free_keeps_errno(void) {
    if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0) {
        printf("mlockall refused (%s): errno checked with nothing locked\n", strerror(errno));
    }
    for (int round = 0; round < 4; ++round) {
        char* block = malloc((size_t)40 << 20);
        EXPECT(block != NULL);
        memset(block, 1, 4096);
        errno = 1234;
        free(block);
        EXPECT(errno == 1234);
    }
    munlockall();
    return 0;
}

/* glibc's internal names for the same calls (__libc_malloc, ...), which some programs and
 * libraries call directly: one heap behind both, so a block from either kind of call is freed by
 * the other (under the preload, a standard free of a __libc_malloc block was reported and leaked,
 * and __libc_free of a malloc block aborted). */
void* __libc_malloc(size_t size);
void* __libc_calloc(size_t count, size_t size);
void* __libc_realloc(void* block, size_t size);
void* __libc_memalign(size_t alignment, size_t size);
void* __libc_valloc(size_t size);
void* __libc_pvalloc(size_t size);
void __libc_free(void* block);

static int libc_names(void) {
    void* blocks[] = {__libc_malloc(100),        __libc_calloc(10, 10), __libc_realloc(NULL, 100),
                      __libc_memalign(256, 100), __libc_valloc(100),    __libc_pvalloc(100)};
    const size_t count = sizeof(blocks) / sizeof(blocks[0]);
    for (size_t i = 0; i < count; ++i) {
        EXPECT(blocks[i] != NULL && malloc_usable_size(blocks[i]) >= 100);
    }
    EXPECT((uintptr_t)blocks[3] % 256 == 0);
    blocks[0] = realloc(blocks[0], 5000);
    EXPECT(blocks[0] != NULL);
    for (size_t i = 0; i < count; ++i) {
        free(blocks[i]);
    }
    void* block = malloc(100);
    block = __libc_realloc(block, 3000);
    EXPECT(block != NULL);
    __libc_free(block);
    return 0;
}

struct Case {
    const char* name;
    int (*run)(void);
};

static const struct Case kCases[] = {
    {"malloc_basics", malloc_basics},
    {"libc_names", libc_names},
    {"malloc_enomem", malloc_enomem},
    {"calloc_zeroes_and_overflows", calloc_zeroes_and_overflows},
    {"realloc_edges", realloc_edges},
    {"realloc_refuses_sizes_near_size_max", realloc_refuses_sizes_near_size_max},
    {"reallocarray_overflows", reallocarray_overflows},
    {"memalign_rounds_up", memalign_rounds_up},
    {"aligned_alloc_valid", aligned_alloc_valid},
    {"aligned_alloc_invalid", aligned_alloc_invalid},
    {"posix_memalign_codes", posix_memalign_codes},
    {"page_aligned", page_aligned},
    {"many_blocks", many_blocks},
    {"trim_and_usable", trim_and_usable},
    {"mallinfo_counts", mallinfo_counts},
    {"free_keeps_errno", free_keeps_errno},
};

int main(int argc, char** argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s CASE\n", argv[0]);
        return 2;
    }
    for (size_t i = 0; i < sizeof(kCases) / sizeof(kCases[0]); ++i) {
        if (strcmp(argv[1], kCases[i].name) == 0) {
            if (kCases[i].run() != 0) {
                return 1;
            }
            printf("ok\n");
            return 0;
        }
    }
    fprintf(stderr, "unknown case %s\n", argv[1]);
    return 2;
}
