/* SPDX-License-Identifier: MIT */
/* Checked mode's call traces under libbedrock-malloc.so (BEDROCK_CHECK=report): the walk of
 * frame records stays inside the stack Bedrock::hosted's stack_extent() names, and goes deep
 * there (CMakeLists.txt checks the leak report's frames).
 *   wild_frame       (x86-64) a thread on a stack of its own, with an inaccessible page right
 *                    above it, calls malloc with RBP pointing at a stack object whose first word
 *                    points into that page, as code built without frame pointers may leave it:
 *                    the walk must stop there, not fault
 *   nested           leaks a block allocated three calls deep: the leak report's trace must
 *                    hold the call site and its callers
 *   alternate_stack  the same (a 78-byte block) from a signal handler on an alternate stack
 *                    (sigaltstack), then (77 bytes) from the main stack again: the extent is
 *                    looked up again for each
 * Prints "done" when it gets to the end. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static void* volatile g_keep[2];

/* 77 bytes for block 0, 78 for block 1. */
__attribute__((noinline)) static void allocate_here(int which) {
    g_keep[which] = malloc((size_t)(77 + which));
}
__attribute__((noinline)) static void one_call_up(int which) {
    allocate_here(which);
    __asm__ volatile("" ::: "memory"); /* not a tail call */
}
__attribute__((noinline)) static void two_calls_up(int which) {
    one_call_up(which);
    __asm__ volatile("" ::: "memory");
}

#if defined(__x86_64__)
enum { kStackBytes = 256 * 1024 };
static char* g_stack_end; /* the first byte past the thread's stack: an inaccessible page */

__attribute__((noinline)) static void* malloc_with_frame(uintptr_t* record) {
    void* result;
    __asm__ volatile("push %%rbp\n\t"
                     "mov %1, %%rbp\n\t"
                     "mov $100, %%edi\n\t"
                     "call malloc@PLT\n\t"
                     "pop %%rbp\n\t"
                     : "=a"(result)
                     : "r"(record)
                     : "rdi", "rsi", "rdx", "rcx", "r8", "r9", "r10", "r11", "memory");
    return result;
}

static void* wild_frame_thread(void* unused) {
    (void)unused;
    uintptr_t object[2];
    object[0] = (uintptr_t)g_stack_end + 64;
    object[1] = 0x1234;
    void* block = malloc_with_frame(object);
    free(block);
    return block;
}

static int wild_frame(void) {
    char* stack =
        mmap(NULL, kStackBytes + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (stack == MAP_FAILED) {
        return 0;
    }
    g_stack_end = stack + kStackBytes;
    mprotect(g_stack_end, 4096, PROT_NONE);
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setstack(&attributes, stack, kStackBytes);
    pthread_t thread;
    void* block = NULL;
    if (pthread_create(&thread, &attributes, wild_frame_thread, NULL) != 0) {
        return 0;
    }
    pthread_join(thread, &block);
    return block != NULL;
}
#endif

static void on_signal(int signal) {
    (void)signal;
    two_calls_up(1);
}

static int alternate_stack(void) {
    static char stack[64 * 1024];
    stack_t alternate;
    memset(&alternate, 0, sizeof(alternate));
    alternate.ss_sp = stack;
    alternate.ss_size = sizeof(stack);
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = on_signal;
    action.sa_flags = SA_ONSTACK;
    if (sigaltstack(&alternate, NULL) != 0 || sigaction(SIGUSR1, &action, NULL) != 0) {
        return 0;
    }
    raise(SIGUSR1);
    two_calls_up(0);
    return g_keep[0] != NULL && g_keep[1] != NULL;
}

int main(int argc, char** argv) {
    if (argc != 2) {
        return 2;
    }
    int passed = 0;
    if (strcmp(argv[1], "nested") == 0) {
        two_calls_up(0);
        passed = g_keep[0] != NULL;
    } else if (strcmp(argv[1], "alternate_stack") == 0) {
        passed = alternate_stack();
#if defined(__x86_64__)
    } else if (strcmp(argv[1], "wild_frame") == 0) {
        passed = wild_frame();
#endif
    } else {
        return 2;
    }
    if (!passed) {
        return 1;
    }
    printf("done\n");
    return 0;
}
