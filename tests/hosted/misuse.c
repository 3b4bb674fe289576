/* SPDX-License-Identifier: MIT */
/* Misuse for libbedrock-malloc.so's environment variables to catch (CMakeLists.txt runs each
 * case under BEDROCK_CHECK / BEDROCK_GUARD / BEDROCK_LEAKS and checks stderr and the status):
 *   double_free  frees a block twice
 *   overflow     writes one byte past a 100-byte block, then frees it
 *   header_overflow writes 16 bytes past the usable end of a 5000-byte block, onto the heap's
 *                header of the 5000-byte block after it, frees that block, then goes on
 *                allocating and freeing: the free must be reported, not followed (exits 3 if the
 *                two blocks do not lie side by side, which the case needs)
 *   guarded      writes past a 100-byte block up to the next page (a guard page with
 *                BEDROCK_GUARD=1: the store faults, and the preload's handler reports it)
 *   guarded_read_after_free frees a 100-byte block and reads its first byte (with
 *                BEDROCK_GUARD=1 its page is inaccessible: the load faults)
 *   segv_sent    raises SIGSEGV itself (no fault to explain: the preload's handler must pass it
 *                on to the default disposition)
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
 *   reused_stderr runs this program again as reused_stderr_child, which does as closed_stderr but
 *                whose exit handler first puts a pipe at every other open descriptor (where the
 *                preload keeps its copy of stderr); the parent waits for it and exits 1 if
 *                anything reached the pipe (a report written into a file the program put there)
 *   freed_in_destructor allocates 1234 bytes that an ELF destructor of this program frees: the
 *                leak report (run after it) must not list them
 *   reopened_stderr runs this program again as reopened_stderr_child, which leaves a 4242-byte
 *                block allocated, closes stderr and opens a data file, which takes its number,
 *                and writes to it (as a daemon that closed 0-2 and opened its files does); the
 *                parent exits 1 unless the file holds just what the child wrote (the exit
 *                reports reach the stderr the child started with)
 *   daemon_stderr runs this program again as daemon_child with stderr a pipe: it leaves a
 *                4242-byte block allocated, forks a daemon that points its stdin, stdout and
 *                stderr at /dev/null and waits for the parent's word, and exits. The parent must
 *                see the pipe end (within 10 s) while the daemon lives - no copy of the pipe
 *                kept for reports may survive the fork - and copies what came through it (the
 *                child's leak report) to its stderr; exits 1 if the end did not come
 *   leaking_children forks 16 children, each leaving 300 blocks allocated, with their stderr a
 *                pipe, and lets them all exit at once; reads their leak reports from the pipe,
 *                copies them to stderr and exits 1 unless every line is one whole "leaks: "
 *                line (none empty, none holding a part of another)
 * Prints "done" when it gets to the end. */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void* volatile g_keep;

/* freed_in_destructor (see above). */
static void* volatile g_freed_by_destructor;
__attribute__((destructor)) static void free_at_destruction(void) {
    free(g_freed_by_destructor);
}

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

/* The write end of the parent's pipe that reused_stderr_child puts at every other descriptor. */
static int g_parent_pipe = -1;

/* The reused_stderr_child exit handler (see above); the heap's exit reports run after it. */
static void reuse_descriptors_then_close_stderr(void) {
    const int limit = (int)sysconf(_SC_OPEN_MAX);
    for (int descriptor = 3; descriptor < limit && descriptor < 65536; ++descriptor) {
        if (descriptor != g_parent_pipe && fcntl(descriptor, F_GETFD) >= 0) {
            dup2(g_parent_pipe, descriptor);
        }
    }
    fclose(stderr);
}

/* Runs this program as `child_case` with `argument` (a descriptor number, the child's to keep),
 * stderr `error` (or as it is, if -1); returns its pid, or -1. Every other descriptor the caller
 * made is close-on-exec (pipe2), so that the child holds no end of a pipe it is not given. */
static pid_t run_again(const char* self, const char* child_case, int argument, int error) {
    const pid_t child = fork();
    if (child == 0) {
        char number[16];
        snprintf(number, sizeof(number), "%d", argument);
        if ((error >= 0 && dup2(error, 2) != 2) || fcntl(argument, F_SETFD, 0) != 0) {
            _exit(127);
        }
        execl(self, self, child_case, number, (char*)NULL);
        _exit(127);
    }
    return child;
}

/* reused_stderr (see above). Ends with _exit(): this process's own exit reports are not the
 * ones looked for. */
static void check_no_report_into_reused_descriptors(const char* self) {
    int ends[2];
    if (pipe2(ends, O_CLOEXEC) != 0) {
        _exit(1);
    }
    const pid_t child = run_again(self, "reused_stderr_child", ends[1], -1);
    close(ends[1]);
    int status = 0;
    if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) ||
        fcntl(ends[0], F_SETFL, O_NONBLOCK) != 0) {
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

/* reopened_stderr (see above). Ends with _exit(): this process's own exit reports are not the
 * ones looked for. */
static void check_no_report_into_a_reopened_stderr(const char* self) {
    char path[64];
    snprintf(path, sizeof(path), "/tmp/bedrock-misuse-%d", (int)getpid());
    const pid_t child = fork();
    if (child == 0) {
        execl(self, self, "reopened_stderr_child", path, (char*)NULL);
        _exit(127);
    }
    int status = 0;
    if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        _exit(1);
    }
    char text[256] = {0};
    const int file = open(path, O_RDONLY);
    const ssize_t got = file >= 0 ? read(file, text, sizeof(text) - 1) : -1;
    unlink(path);
    if (got != 8 || memcmp(text, "payload\n", 8) != 0) {
        printf("misuse: the data file at stderr's number holds: %s\n", got > 0 ? text : "");
        fflush(stdout);
        _exit(1);
    }
    _exit(0);
}

/* reopened_stderr_child (see above). */
static void reopen_stderr_as_a_data_file(const char* path) {
    g_keep = malloc(4242);
    close(STDERR_FILENO);
    if (open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600) != STDERR_FILENO ||
        write(STDERR_FILENO, "payload\n", 8) != 8) {
        _exit(2);
    }
}

/* daemon_stderr (see above): 1 if the pipe's end came while the daemon lived. */
static int check_daemon_holds_no_stderr(const char* self) {
    int report[2];
    int release[2];
    if (pipe2(report, O_CLOEXEC) != 0 || pipe2(release, O_CLOEXEC) != 0) {
        return 0;
    }
    const pid_t child = run_again(self, "daemon_child", release[0], report[1]);
    close(report[1]);
    close(release[0]);
    int ended = 0;
    struct pollfd ready = {report[0], POLLIN, 0};
    char text[4096];
    while (child > 0 && !ended && poll(&ready, 1, 10000) == 1) {
        const ssize_t got = read(report[0], text, sizeof(text));
        if (got <= 0) {
            ended = got == 0;
            break;
        }
        fwrite(text, 1, (size_t)got, stderr);
    }
    close(release[1]); /* the daemon's word: it exits */
    waitpid(child, NULL, 0);
    if (!ended) {
        fprintf(stderr, "misuse: the pipe that was the child's stderr did not end while its "
                        "daemon lived\n");
    }
    return ended;
}

/* daemon_child (see above). */
static void start_daemon(int release) {
    const pid_t daemon = fork();
    if (daemon == 0) {
        const int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        char word;
        while (read(release, &word, 1) > 0) {
        }
        _exit(0);
    }
    close(release);
}

enum { kLeakingChildren = 16, kBlocksPerChild = 300 };

/* One line of leaking_children's pipe (without its newline): 1 if it is one whole leak line. */
static int is_whole_leak_line(const char* line) {
    return strncmp(line, "leaks: ", 7) == 0 && strstr(line + 1, "leaks:") == NULL;
}

/* leaking_children (see above): 1 if every line the children wrote was whole. */
static int leak_lines_stay_whole(void) {
    int report[2];
    int release[2];
    if (pipe(report) != 0 || pipe(release) != 0) {
        return 0;
    }
    for (int child = 0; child < kLeakingChildren; ++child) {
        if (fork() == 0) {
            dup2(report[1], 2);
            close(report[0]);
            close(release[1]);
            for (int i = 0; i < kBlocksPerChild; ++i) {
                g_keep = malloc(16 + (size_t)(i % 7) * 8);
            }
            char word;
            while (read(release[0], &word, 1) > 0) {
            }
            exit(0); /* the heap's exit report: the leak lines */
        }
    }
    close(report[1]);
    close(release[0]);
    close(release[1]); /* the children's word: all exit now */
    char line[512];
    size_t length = 0;
    int lines = 0;
    int broken = 0;
    char chunk[4096];
    ssize_t got;
    while ((got = read(report[0], chunk, sizeof(chunk))) > 0) {
        fwrite(chunk, 1, (size_t)got, stderr);
        for (ssize_t i = 0; i < got; ++i) {
            if (chunk[i] != '\n') {
                if (length < sizeof(line) - 1) { /* longer lines are judged by their start */
                    line[length++] = chunk[i];
                }
                continue;
            }
            line[length] = '\0';
            broken += !is_whole_leak_line(line);
            ++lines;
            length = 0;
        }
    }
    while (wait(NULL) > 0) {
    }
    if (broken != 0 || length != 0 || lines < kLeakingChildren * kBlocksPerChild) {
        fprintf(stderr, "misuse: %d of %d leak lines broken, %zu bytes after the last\n", broken,
                lines, length);
        return 0;
    }
    return 1;
}

int main(int argc, char** argv) {
    if (argc != 2 && argc != 3) {
        return 2;
    }
    char* block = malloc(100);
    if (strcmp(argv[1], "double_free") == 0) {
        free(block);
        free(block);
    } else if (strcmp(argv[1], "overflow") == 0) {
        block[100] = 1;
        free(block);
    } else if (strcmp(argv[1], "header_overflow") == 0) {
        char* first = malloc(5000);
        char* second = malloc(5000);
        const size_t usable = malloc_usable_size(first);
        if (second != first + usable + 16) {
            return 3;
        }
        memset(first + usable, 0x42, 16);
        free(second);
        for (int i = 0; i < 1000; ++i) {
            free(malloc(100 + (size_t)i * 37));
        }
        free(first);
        free(block);
    } else if (strcmp(argv[1], "guarded") == 0) {
        for (volatile size_t i = 100; i < 8192; ++i) {
            block[i] = 1;
        }
        free(block);
    } else if (strcmp(argv[1], "guarded_read_after_free") == 0) {
        free(block);
        printf("read %d\n", ((volatile char*)block)[0]);
    } else if (strcmp(argv[1], "segv_sent") == 0) {
        free(block);
        raise(SIGSEGV);
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
    } else if (strcmp(argv[1], "closed_stderr") == 0) {
        free(block);
        g_keep = malloc(4242);
        atexit(close_stderr);
    } else if (strcmp(argv[1], "reused_stderr") == 0) {
        free(block);
        check_no_report_into_reused_descriptors(argv[0]);
    } else if (strcmp(argv[1], "reused_stderr_child") == 0 && argc == 3) {
        free(block);
        g_keep = malloc(4242);
        g_parent_pipe = atoi(argv[2]);
        atexit(reuse_descriptors_then_close_stderr);
    } else if (strcmp(argv[1], "freed_in_destructor") == 0) {
        free(block);
        g_freed_by_destructor = malloc(1234);
    } else if (strcmp(argv[1], "reopened_stderr") == 0) {
        free(block);
        check_no_report_into_a_reopened_stderr(argv[0]);
    } else if (strcmp(argv[1], "reopened_stderr_child") == 0 && argc == 3) {
        free(block);
        reopen_stderr_as_a_data_file(argv[2]);
    } else if (strcmp(argv[1], "daemon_stderr") == 0) {
        free(block);
        if (!check_daemon_holds_no_stderr(argv[0])) {
            return 1;
        }
    } else if (strcmp(argv[1], "leaking_children") == 0) {
        free(block);
        if (!leak_lines_stay_whole()) {
            return 1;
        }
    } else if (strcmp(argv[1], "daemon_child") == 0 && argc == 3) {
        free(block);
        g_keep = malloc(4242);
        start_daemon(atoi(argv[2]));
    } else {
        return 2;
    }
    printf("done\n");
    return 0;
}
