/* SPDX-License-Identifier: MIT */
/* fork() under libbedrock-malloc.so.
 *   single    a single-threaded program forks 50 times; each child allocates and frees, then
 *             exits 0
 *   threaded  the same while two threads allocate and free without pause: the preload's fork
 *             handlers take every heap lock and the page frame allocator's before fork() and
 *             release them in both processes, so no child inherits a lock another thread held.
 *             A child still running after 5 s counts as hung.
 *   during_growth  forks while another thread grows the page frame allocator into the
 *             reservation (its 2 GiB malloc needs a new chunk); the child then grows too (a
 *             2 GiB malloc). fork_during_growth.gdb runs it with that thread held inside the
 *             growth (at add_range(), the reservation's lock held), so the fork must wait for
 *             the growth to end, or the child inherits the lock held and spins for ever (5 s:
 *             hung).
 * Prints "ok" and exits 0 when every child exited 0. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int g_stop;

static void* churn(void* unused) {
    (void)unused;
    while (!g_stop) {
        void* blocks[16];
        for (int i = 0; i < 16; ++i) {
            blocks[i] = malloc((size_t)(i * 300 + 1));
        }
        for (int i = 0; i < 16; ++i) {
            free(blocks[i]);
        }
    }
    return NULL;
}

static int child(void) {
    for (int i = 0; i < 100; ++i) {
        char* block = malloc((size_t)(i * 100 + 1));
        if (block == NULL) {
            return 1;
        }
        memset(block, 1, (size_t)(i * 100 + 1));
        free(block);
    }
    return 0;
}

static volatile int g_growing;

static void* grow(void* unused) {
    (void)unused;
    g_growing = 1;
    void* volatile block = malloc((size_t)2 << 30);
    free(block);
    return block != NULL ? NULL : (void*)1;
}

static void* volatile g_handler_block;

static void allocate_in_prepare(void) {
    g_handler_block = malloc(200000);
    memset(g_handler_block, 1, 200000);
}

static void allocate_after(void) {
    free(g_handler_block);
    g_handler_block = malloc(300000);
    free(g_handler_block);
}

/* Runs before main, and before the program allocates anything (glibc passes a constructor of
 * the program its arguments). */
__attribute__((constructor)) static void register_allocating_handlers(int argc, char** argv) {
    if (argc == 2 && strcmp(argv[1], "handler_allocates") == 0) {
        pthread_atfork(allocate_in_prepare, allocate_after, allocate_after);
    }
}

static int fork_with_allocating_handlers(void) {
    void* volatile first = malloc(64); /* the preload's heap starts here */
    free(first);
    alarm(5); /* a fork that hangs ends the test */
    const pid_t pid = fork();
    if (pid == 0) {
        _exit(child());
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        printf("FAIL: the child did not exit 0 (status %#x)\n", (unsigned)status);
        return 1;
    }
    printf("ok\n");
    return 0;
}

static int fork_during_growth(void) {
    void* volatile first = malloc(64);
    free(first);
    pthread_t grower;
    pthread_create(&grower, NULL, grow, NULL);
    while (!g_growing) {
        usleep(1000); /* not sched_yield(): the debugger stops there (fork_during_growth.py) */
    }
    usleep(500000); /* the grower is inside its growth by now (held there by the debugger) */
    const pid_t pid = fork();
    if (pid == 0) {
        alarm(5);
        void* volatile block = malloc((size_t)2 << 30);
        _exit(block != NULL ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    void* failed = NULL;
    pthread_join(grower, &failed);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || failed != NULL) {
        printf("FAIL: the child %s (status %#x); the grower's malloc %s\n",
               WIFSIGNALED(status) ? "hung or crashed" : "failed", (unsigned)status,
               failed != NULL ? "failed" : "succeeded");
        return 1;
    }
    printf("ok\n");
    return 0;
}

int main(int argc, char** argv) {
    if (argc != 2) {
        return 2;
    }
    if (strcmp(argv[1], "during_growth") == 0) {
        return fork_during_growth();
    }
    if (strcmp(argv[1], "handler_allocates") == 0) {
        return fork_with_allocating_handlers();
    }
    const int threaded = strcmp(argv[1], "threaded") == 0;
    pthread_t threads[2];
    if (threaded) {
        for (int i = 0; i < 2; ++i) {
            pthread_create(&threads[i], NULL, churn, NULL);
        }
    }
    int failures = 0;
    for (int round = 0; round < 50; ++round) {
        const pid_t pid = fork();
        if (pid == 0) {
            alarm(5);
            _exit(child());
        }
        int status = 0;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            ++failures;
            break;
        }
    }
    if (threaded) {
        g_stop = 1;
        for (int i = 0; i < 2; ++i) {
            pthread_join(threads[i], NULL);
        }
    }
    if (failures != 0) {
        printf("FAIL: a child did not exit 0 (hung or crashed)\n");
        return 1;
    }
    printf("ok\n");
    return 0;
}
