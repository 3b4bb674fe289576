/* SPDX-License-Identifier: MIT */
/* Threads on libbedrock-malloc.so: kThreads threads (16 more than its 1024 CPU slots, so some take
 * the shared path) each allocate, fill and check blocks of many sizes, and hand half of
 * them to the next thread to free (frees from another CPU slot than the allocating one). Prints
 * "ok" and exits 0 when every block kept its contents. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { kThreads = 1040, kRounds = 30, kBlocks = 64 };

struct Mailbox {
    pthread_mutex_t lock;
    void* blocks[kBlocks];
    int count;
};

static struct Mailbox g_mailboxes[kThreads];
static int g_failed;

static void* worker(void* argument) {
    const int index = (int)(intptr_t)argument;
    struct Mailbox* next = &g_mailboxes[(index + 1) % kThreads];
    struct Mailbox* mine = &g_mailboxes[index];
    unsigned seed = (unsigned)index * 2654435761u;
    for (int round = 0; round < kRounds; ++round) {
        unsigned char* blocks[kBlocks];
        size_t sizes[kBlocks];
        for (int i = 0; i < kBlocks; ++i) {
            seed = seed * 1103515245u + 12345u;
            sizes[i] = (seed >> 8) % (i % 8 == 0 ? 70000 : 600) + 1;
            blocks[i] = malloc(sizes[i]);
            if (blocks[i] == NULL) {
                g_failed = 1;
                return NULL;
            }
            memset(blocks[i], index, sizes[i]);
        }
        for (int i = 0; i < kBlocks; ++i) {
            if (blocks[i][0] != (unsigned char)index ||
                blocks[i][sizes[i] - 1] != (unsigned char)index) {
                g_failed = 1;
            }
        }
        pthread_mutex_lock(&next->lock);
        for (int i = 0; i < kBlocks; i += 2) {
            if (next->count < kBlocks) {
                next->blocks[next->count++] = blocks[i];
            } else {
                free(blocks[i]);
            }
        }
        pthread_mutex_unlock(&next->lock);
        for (int i = 1; i < kBlocks; i += 2) {
            free(blocks[i]);
        }
        pthread_mutex_lock(&mine->lock);
        while (mine->count > 0) {
            free(mine->blocks[--mine->count]);
        }
        pthread_mutex_unlock(&mine->lock);
    }
    return NULL;
}

int main(void) {
    pthread_t threads[kThreads];
    for (int i = 0; i < kThreads; ++i) {
        pthread_mutex_init(&g_mailboxes[i].lock, NULL);
    }
    for (int i = 0; i < kThreads; ++i) {
        if (pthread_create(&threads[i], NULL, worker, (void*)(intptr_t)i) != 0) {
            printf("FAIL: pthread_create\n");
            return 1;
        }
    }
    for (int i = 0; i < kThreads; ++i) {
        pthread_join(threads[i], NULL);
    }
    for (int i = 0; i < kThreads; ++i) {
        while (g_mailboxes[i].count > 0) {
            free(g_mailboxes[i].blocks[--g_mailboxes[i].count]);
        }
    }
    printf(g_failed ? "FAIL: a block lost its contents\n" : "ok\n");
    return g_failed;
}
