// SPDX-License-Identifier: MIT
// The reporting hooks of bedrock/platform.h for a host process: reports go to stderr in
// Bedrock's format (write_error_report), panics and failed assertions add one line and abort().
// Everything is written with write(2) from stack buffers: no stdio, no allocation, so a report
// raised inside malloc (libbedrock-malloc.so) cannot recurse into the heap. A write into a pipe
// whose reader is gone fails with EPIPE and leaves the program alive, as glibc's malloc does
// (which writes nothing there): SIGPIPE is blocked for the writing thread around the write, and
// the SIGPIPE the failed write raised is taken before the thread's mask is restored (one the
// thread already had pending is left alone); errno is kept. No state, no lock: lines of reports
// from two threads at once may interleave, each line stays whole.
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bedrock/error_report.h"
#include "bedrock/hosted.h"
#include "bedrock/platform.h"

namespace bedrock {
namespace {

// write(2) until all of `bytes` is out or the descriptor fails (stderr closed or a broken pipe:
// nothing to do), with SIGPIPE blocked (the file comment). Four system calls more than the
// writes: reports are rare.
void write_all(const char* text, size_t bytes) {
    const int saved_errno = errno;
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    sigset_t previous;
    const bool blocked = pthread_sigmask(SIG_BLOCK, &pipe_only, &previous) == 0;
    sigset_t pending;
    const bool was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
    while (bytes > 0) {
        const ssize_t written = write(STDERR_FILENO, text, bytes);
        if (written <= 0) {
            if (written < 0 && errno == EPIPE && blocked && !was_pending) {
                const timespec no_wait{};
                static_cast<void>(sigtimedwait(&pipe_only, nullptr, &no_wait));
            }
            break;
        }
        text += written;
        bytes -= static_cast<size_t>(written);
    }
    if (blocked) {
        pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    }
    errno = saved_errno;
}

// One report line with its newline, in one write(2) so that lines stay whole.
void write_line(void*, const char* line) {
    char buffer[512];
    size_t length = strnlen(line, sizeof(buffer) - 1);
    memcpy(buffer, line, length);
    buffer[length++] = '\n';
    write_all(buffer, length);
}

// "bedrock: <what>: <first>[ at <file>:<line>]" and the newline.
void write_last_words(const char* what, const char* first, const char* file, int line) {
    char number[16];
    size_t digits = 0;
    for (unsigned value = static_cast<unsigned>(line < 0 ? 0 : line); digits == 0 || value != 0;
         value /= 10) {
        number[sizeof(number) - 1 - digits++] = static_cast<char>('0' + value % 10);
    }
    write_all("bedrock: ", 9);
    write_all(what, strlen(what));
    write_all(": ", 2);
    write_all(first, strlen(first));
    if (file != nullptr) {
        write_all(" at ", 4);
        write_all(file, strlen(file));
        write_all(":", 1);
        write_all(number + sizeof(number) - digits, digits);
    }
    write_all("\n", 1);
}

} // namespace

namespace hosted {

void write_to_stderr(const char* text) {
    write_all(text, strlen(text));
}

} // namespace hosted

namespace platform {

void report_error(const ErrorReport& report) {
    write_error_report(report, write_line, nullptr);
}

void panic(const char* message) {
    write_last_words("panic", message, nullptr, 0);
    abort();
}

void assertion_failed(const char* expression, const char* file, int line) {
    write_last_words("assertion failed", expression, file, line);
    abort();
}

} // namespace platform
} // namespace bedrock
