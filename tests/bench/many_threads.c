/* SPDX-License-Identifier: MIT */
/* Many threads allocating at once, for real_programs.sh: `many_threads THREADS [STEPS]` starts
 * THREADS threads; each frees a random one of its 64 slots and mallocs 16-527 bytes
 * there, STEPS times (default 200,000), then frees what it holds. Exits 0, printing nothing. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

enum { kSlots = 64, kMaxThreads = 4096 };

static long g_steps = 200000;

static void* churn(void* seed) {
    uint64_t state = (uintptr_t)seed * 2654435761u + 1;
    void* held[kSlots] = {0};
    for (long step = 0; step < g_steps; ++step) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        const unsigned slot = (unsigned)(state % kSlots);
        free(held[slot]);
        held[slot] = malloc(16 + (state >> 20) % 512);
    }
    for (int slot = 0; slot < kSlots; ++slot) {
        free(held[slot]);
    }
    return NULL;
}

int main(int argc, char** argv) {
    const int threads = argc > 1 ? atoi(argv[1]) : 0;
    if (threads < 1 || threads > kMaxThreads) {
        return 2;
    }
    if (argc > 2) {
        g_steps = atol(argv[2]);
    }
    static pthread_t started[kMaxThreads];
    for (int i = 0; i < threads; ++i) {
        if (pthread_create(&started[i], NULL, churn, (void*)(uintptr_t)(i + 1)) != 0) {
            return 1;
        }
    }
    for (int i = 0; i < threads; ++i) {
        pthread_join(started[i], NULL);
    }
    return 0;
}
