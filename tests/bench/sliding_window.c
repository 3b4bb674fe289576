/* SPDX-License-Identifier: MIT */
/* A window of blocks of one medium size, for real_programs.sh: `sliding_window [ROUNDS]` fills
 * 4,096 blocks of 40,000 bytes, then each round (default 30) frees every other one and
 * allocates it again, writing every block it allocates; every tenth round then frees them all
 * and allocates them again (a burst). Exits 0, printing nothing. A heap that reuses the blocks
 * freed at a size faults no page in a round; one that splits fresh memory instead grows, gives
 * memory back and faults it in again. */
#include <stdlib.h>
#include <string.h>

enum { kBlocks = 4096, kBlockBytes = 40000 };

static char* g_blocks[kBlocks];

static void allocate(int first, int step, int fill) {
    for (int i = first; i < kBlocks; i += step) {
        g_blocks[i] = malloc(kBlockBytes);
        if (g_blocks[i] == NULL) {
            exit(1);
        }
        memset(g_blocks[i], fill, kBlockBytes);
    }
}

static void release(int first, int step) {
    for (int i = first; i < kBlocks; i += step) {
        free(g_blocks[i]);
    }
}

int main(int argc, char** argv) {
    const int rounds = argc > 1 ? atoi(argv[1]) : 30;
    allocate(0, 1, 1);
    for (int round = 0; round < rounds; ++round) {
        release(round & 1, 2);
        allocate(round & 1, 2, 2 + round % 200);
        if (round % 10 == 9) {
            release(0, 1);
            allocate(0, 1, 3);
        }
    }
    release(0, 1);
    return 0;
}
