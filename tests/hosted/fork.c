/* SPDX-License-Identifier: MIT */
/* fork() under libbedrock-malloc.so.
 *   single    a single-threaded program forks 50 times; each child allocates and frees, then
 *             exits 0
 *   threaded  the same while two threads allocate and free without pause: the preload's fork
 *             handlers take every heap lock and the page frame allocator's before fork() and
 *             release them in both processes, so no child inherits a lock another thread held.
 *             A child still running after 5 s counts as hung.
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

int main(int argc, char** argv) {
    if (argc != 2) {
        return 2;
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
