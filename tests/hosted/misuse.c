/* SPDX-License-Identifier: MIT */
/* Misuse for libbedrock-malloc.so's environment variables to catch (CMakeLists.txt runs each
 * case under BEDROCK_CHECK / BEDROCK_GUARD / BEDROCK_LEAKS and checks stderr and the status):
 *   double_free  frees a block twice
 *   overflow     writes one byte past a 100-byte block, then frees it
 *   guarded      writes past a 100-byte block up to the next page (a guard page with
 *                BEDROCK_GUARD=1: the store faults)
 *   leak         leaves one 4242-byte block allocated at exit
 *   late_write   frees a 64-byte block and writes into it, then exits: no later allocation
 *                pushes it out of the quarantine, so only the exit-time check can find it
 *   realloc_site writes one byte past a 100-byte block, then reallocates it: the report's
 *                "detected at" must be an address of this program's code (realloc's caller),
 *                not of the library; exits 1 if it is not
 *   broken_stderr points stderr at a pipe whose reader is gone, then frees a stack address (a
 *                bad free: reported and ignored): the report's write fails with EPIPE, and the
 *                program must neither die of SIGPIPE (then, nor from a report at exit) nor find
 *                a SIGPIPE pending, nor errno changed; a SIGPIPE the program itself left pending
 *                (blocked) must still be pending after the next report. Exits 1 otherwise
 *   closed_stderr leaves one 4242-byte block allocated and closes stderr in an exit handler that
 *                runs before the heap's (as coreutils' close_stdout does): the exit-time reports
 *                must still reach the file stderr was
 *   reused_stderr as closed_stderr, but the exit handler first puts a pipe at every other open
 *                descriptor (where the preload keeps its copy of stderr), then forks: the child
 *                exits on (the heap's exit reports run), the parent waits for it and exits 1 if
 *                anything reached the pipe (a report written into a file the program put there)
 * Prints "done" when it gets to the end. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void* volatile g_keep;

extern const char __executable_start[];
extern const char etext[];

/* Runs the realloc with stderr going to a file, then copies the report to stderr and checks the
 * address after "detected at". */
static int realloc_reports_its_caller(char* block) {
    FILE* report = tmpfile();
    const int saved = dup(2);
    if (report == NULL || saved < 0 || dup2(fileno(report), 2) < 0) {
        return 0;
    }
    block[100] = 1;
    block = realloc(block, 200);
    dup2(saved, 2);
    free(block);
    char text[4096] = {0};
    rewind(report);
    const size_t length = fread(text, 1, sizeof(text) - 1, report);
    fwrite(text, 1, length, stderr);
    const char* at = strstr(text, "detected at 0x");
    if (at == NULL) {
        return 0;
    }
    const uintptr_t site = (uintptr_t)strtoull(at + strlen("detected at "), NULL, 16);
    return site >= (uintptr_t)__executable_start && site < (uintptr_t)etext;
}

static int sigpipe_pending(void) {
    sigset_t pending;
    sigpending(&pending);
    return sigismember(&pending, SIGPIPE);
}

/* The broken_stderr case (see above); 1 when every check holds. */
static int reports_survive_a_broken_pipe(void) {
    int ends[2];
    if (pipe(ends) != 0 || close(ends[0]) != 0 || dup2(ends[1], 2) < 0) {
        return 0;
    }
    int local = 0;
    int* volatile not_a_block = &local;
    errno = 12345;
    free(not_a_block);
    if (errno != 12345 || sigpipe_pending()) {
        printf("misuse: errno %d, SIGPIPE pending %d after the report\n", errno, sigpipe_pending());
        return 0;
    }
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    sigprocmask(SIG_BLOCK, &pipe_only, NULL);
    raise(SIGPIPE);
    free(not_a_block);
    if (!sigpipe_pending()) {
        printf("misuse: the program's own pending SIGPIPE was taken by the report\n");
        return 0;
    }
    int taken = 0;
    sigwait(&pipe_only, &taken);
    sigprocmask(SIG_UNBLOCK, &pipe_only, NULL);
    return 1;
}

static void close_stderr(void) {
    fclose(stderr);
}

/* The reused_stderr exit handler (see above). */
static void reuse_descriptors_then_close_stderr(void) {
    int ends[2];
    if (pipe(ends) != 0 || fcntl(ends[0], F_SETFL, O_NONBLOCK) != 0) {
        _exit(1);
    }
    const int limit = (int)sysconf(_SC_OPEN_MAX);
    for (int descriptor = 3; descriptor < limit && descriptor < 65536; ++descriptor) {
        if (descriptor != ends[0] && descriptor != ends[1] && fcntl(descriptor, F_GETFD) >= 0) {
            dup2(ends[1], descriptor);
        }
    }
    fclose(stderr);
    const pid_t child = fork();
    if (child == 0) {
        close(ends[0]);
        return; /* on to the heap's exit reports */
    }
    int status = 0;
    if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status)) {
        _exit(1);
    }
    char text[256];
    const ssize_t got = read(ends[0], text, sizeof(text) - 1);
    if (got > 0) {
        text[got] = 0;
        printf("misuse: an exit report went into the program's pipe: %s\n", text);
        fflush(stdout);
        _exit(1);
    }
    _exit(WEXITSTATUS(status));
}

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
    } else if (strcmp(argv[1], "late_write") == 0) {
        free(block);
        ((char* volatile)block)[10] = 1;
    } else if (strcmp(argv[1], "realloc_site") == 0) {
        if (!realloc_reports_its_caller(block)) {
            fprintf(stderr, "misuse: the report does not name realloc's caller in the program\n");
            return 1;
        }
    } else if (strcmp(argv[1], "broken_stderr") == 0) {
        free(block);
        if (!reports_survive_a_broken_pipe()) {
            return 1;
        }
    } else if (strcmp(argv[1], "leak") == 0) {
        free(block);
        g_keep = malloc(4242);
    } else if (strcmp(argv[1], "closed_stderr") == 0 || strcmp(argv[1], "reused_stderr") == 0) {
        free(block);
        g_keep = malloc(4242);
        atexit(strcmp(argv[1], "closed_stderr") == 0 ? close_stderr
                                                     : reuse_descriptors_then_close_stderr);
    } else {
        return 2;
    }
    printf("done\n");
    return 0;
}
