/* SPDX-License-Identifier: MIT */
/* A host with larger pages than this one's 4 KiB, pretended for the page_size.* tests: preloaded
 * ahead of libbedrock-malloc.so (or of a program linked with Bedrock::hosted), it makes the
 * calls that go through the dynamic linker (the library's and the program's, not libc's own
 * internal ones) behave as on a kernel whose pages are PRETENDED_PAGE bytes (a compile
 * definition: 16 KiB or 64 KiB):
 *   sysconf(_SC_PAGESIZE), getpagesize()  PRETENDED_PAGE
 *   mmap (anonymous, no address given)    aligned to PRETENDED_PAGE, the length rounded up to it
 *   mprotect, madvise, munmap             a start not aligned to PRETENDED_PAGE: EINVAL; a length
 *                                         not a multiple of it: rounded up, as such a kernel
 *                                         does (so the rest of the last page really is
 *                                         protected, dropped or unmapped)
 * Every refused or rounded call is also reported on stderr, one line starting "page-size shim:",
 * which the tests forbid: Bedrock must give such a kernel whole pages only. The shim calls the
 * kernel with syscall() and formats its lines by hand: no allocation, no libc state, safe before
 * libc is up (the preload's first malloc may come that early). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef PRETENDED_PAGE
#error "PRETENDED_PAGE (the pretended page size in bytes) must be defined"
#endif
#define PAGE ((uintptr_t)PRETENDED_PAGE)
#define REAL_PAGE ((uintptr_t)4096)

long __sysconf(int name); /* glibc's own sysconf, exported under this name */

static void put(char* line, size_t* used, const char* text) {
    while (*text != '\0' && *used < 160) {
        line[(*used)++] = *text++;
    }
}

static void put_hex(char* line, size_t* used, uintptr_t value) {
    char digits[2 + 16];
    int count = 0;
    do {
        digits[count++] = "0123456789abcdef"[value & 15];
        value >>= 4;
    } while (value != 0);
    put(line, used, "0x");
    while (count > 0 && *used < 160) {
        line[(*used)++] = digits[--count];
    }
}

/* "page-size shim: NAME(START, LENGTH): WHY" on stderr. */
static void complain(const char* name, uintptr_t start, size_t length, const char* why) {
    char line[168];
    size_t used = 0;
    put(line, &used, "page-size shim: ");
    put(line, &used, name);
    put(line, &used, "(");
    put_hex(line, &used, start);
    put(line, &used, ", ");
    put_hex(line, &used, length);
    put(line, &used, "): ");
    put(line, &used, why);
    line[used++] = '\n';
    const int saved = errno;
    (void)syscall(SYS_write, 2, line, used);
    errno = saved;
}

/* Holds a call to such a kernel's rules: false (errno EINVAL) for a start it refuses, else
 * true with `length` rounded up to whole pages. */
static int held_to_pages(const char* name, void* start, size_t* length) {
    const uintptr_t address = (uintptr_t)start;
    if (address % PAGE != 0) {
        complain(name, address, *length, "start not aligned to the page (EINVAL)");
        errno = EINVAL;
        return 0;
    }
    if (*length % PAGE != 0) {
        complain(name, address, *length, "length not whole pages (rounded up)");
        *length = (*length + PAGE - 1) & ~(PAGE - 1);
    }
    return 1;
}

long sysconf(int name) {
    return name == _SC_PAGESIZE ? (long)PAGE : __sysconf(name);
}

int getpagesize(void) {
    return (int)PAGE;
}

void* mmap(void* address, size_t length, int protection, int flags, int fd, off_t offset) {
    if (address != NULL || (flags & MAP_ANONYMOUS) == 0 || length == 0) {
        return (void*)syscall(SYS_mmap, address, length, protection, flags, fd, offset);
    }
    const size_t rounded = (length + PAGE - 1) & ~(PAGE - 1);
    const long mapped =
        syscall(SYS_mmap, NULL, rounded + PAGE - REAL_PAGE, protection, flags, fd, offset);
    if (mapped == -1) {
        return MAP_FAILED;
    }
    const uintptr_t start = (uintptr_t)mapped;
    const uintptr_t aligned = (start + PAGE - 1) & ~(PAGE - 1);
    const uintptr_t end = start + rounded + PAGE - REAL_PAGE;
    if (aligned > start) {
        (void)syscall(SYS_munmap, start, aligned - start);
    }
    if (end > aligned + rounded) {
        (void)syscall(SYS_munmap, aligned + rounded, end - (aligned + rounded));
    }
    return (void*)aligned;
}

int munmap(void* start, size_t length) {
    return held_to_pages("munmap", start, &length) ? (int)syscall(SYS_munmap, start, length) : -1;
}

int mprotect(void* start, size_t length, int protection) {
    return held_to_pages("mprotect", start, &length)
               ? (int)syscall(SYS_mprotect, start, length, protection)
               : -1;
}

int madvise(void* start, size_t length, int advice) {
    return held_to_pages("madvise", start, &length)
               ? (int)syscall(SYS_madvise, start, length, advice)
               : -1;
}
