// SPDX-License-Identifier: MIT
// The hosted GDB sample: a program run under libbedrock-malloc.so that holds a live 48-byte
// block and a freed one, and calls bedrock_gdb_sample_stop() with both in place, their
// addresses in gdb_sample_live and gdb_sample_freed (heap_inspector_test.py's hosted variant
// runs `bedrock block` on them). Built without malloc builtins, so every call stays.
#include <stdio.h>
#include <stdlib.h>

void* volatile gdb_sample_live;
void* volatile gdb_sample_freed;

// Where the debugger stops: does nothing, never inlined.
__attribute__((noinline)) void bedrock_gdb_sample_stop(void) {
    __asm__ volatile("" ::: "memory");
}

int main(void) {
    gdb_sample_live = malloc(48);
    gdb_sample_freed = malloc(48);
    if (gdb_sample_live == NULL || gdb_sample_freed == NULL) {
        fputs("hosted_sample: out of memory\n", stderr);
        return 1;
    }
    free(gdb_sample_freed);
    printf("gdb-sample: block live %p freed %p\n", gdb_sample_live, gdb_sample_freed);
    fflush(stdout);
    bedrock_gdb_sample_stop();
    free(gdb_sample_live);
    return 0;
}
