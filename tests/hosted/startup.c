/* SPDX-License-Identifier: MIT */
/* Start-up cost: the time of a process's first malloc (with libbedrock-malloc.so preloaded, the
 * heap starts there: reservation, page frame allocator metadata, heap state) and the resident
 * set after it. Prints "first malloc: N us, resident: N KiB" and "ok". */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    struct timespec before;
    struct timespec after;
    clock_gettime(CLOCK_MONOTONIC, &before);
    void* volatile block = malloc(32);
    clock_gettime(CLOCK_MONOTONIC, &after);
    free(block);
    const long nanoseconds =
        (after.tv_sec - before.tv_sec) * 1000000000L + (after.tv_nsec - before.tv_nsec);
    long pages = 0;
    FILE* statm = fopen("/proc/self/statm", "r");
    if (statm == NULL || fscanf(statm, "%*ld %ld", &pages) != 1) {
        return 1;
    }
    fclose(statm);
    printf("first malloc: %ld us, resident: %ld KiB\n", nanoseconds / 1000,
           pages * sysconf(_SC_PAGESIZE) / 1024);
    printf("ok\n");
    return 0;
}
