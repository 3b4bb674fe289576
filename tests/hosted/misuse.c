/* SPDX-License-Identifier: MIT */
/* Misuse for libbedrock-malloc.so's environment variables to catch (CMakeLists.txt runs each
 * case under BEDROCK_CHECK / BEDROCK_GUARD / BEDROCK_LEAKS and checks stderr and the status):
 *   double_free  frees a block twice
 *   overflow     writes one byte past a 100-byte block, then frees it
 *   guarded      writes past a 100-byte block up to the next page (a guard page with
 *                BEDROCK_GUARD=1: the store faults)
 *   leak         leaves one 4242-byte block allocated at exit
 * Prints "done" when it gets to the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void* volatile g_keep;

int main(int argc, char** argv) {
    if (argc != 2) {
        return 2;
    }
    char* block = malloc(100);
    if (strcmp(argv[1], "double_free") == 0) {
        free(block);
        free(block);
    } else if (strcmp(argv[1], "overflow") == 0) {
        block[100] = 1;
        free(block);
    } else if (strcmp(argv[1], "guarded") == 0) {
        for (volatile size_t i = 100; i < 8192; ++i) {
            block[i] = 1;
        }
        free(block);
    } else if (strcmp(argv[1], "leak") == 0) {
        free(block);
        g_keep = malloc(4242);
    } else {
        return 2;
    }
    printf("done\n");
    return 0;
}
