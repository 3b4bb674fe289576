// SPDX-License-Identifier: MIT
// The reporting hooks of bedrock/platform.h for a host process: reports go to stderr in
// Bedrock's format (write_error_report), panics and failed assertions add one line and abort(),
// and stack_extent() bounds the call traces of checked mode's reports. The last is here because
// every link of Bedrock::hosted takes this file (reserve_memory() and start() write to stderr),
// so a static link takes it over the core's weak default, which a file of its own would lose to.
//
// Writing: everything is written with write(2) from stack buffers: no stdio, no allocation, so a
// report raised inside malloc (libbedrock-malloc.so) cannot recurse into the heap. A write into
// a pipe whose reader is gone fails with EPIPE and leaves the program alive, as glibc's malloc
// does (which writes nothing there): SIGPIPE is blocked for the writing thread around the write,
// and the SIGPIPE the failed write raised is taken before the thread's mask is restored (one the
// thread already had pending is left alone); errno is kept. No lock: lines of reports from two
// threads at once may interleave, each line stays whole.
// A program that closes stderr before it exits (coreutils' close_stdout, xz) would lose the
// reports made at exit; keep_stderr_for_reports() keeps a copy of the descriptor (close-on-exec,
// above the low numbers programs reuse) and the file it names. From then on reports go only to
// that file: to stderr while it still names it, else to the copy while that does (a program may
// have closed either, or put another file at its number: a daemon that closed 0-2 and opened its
// data files there), else nowhere; and nowhere if stderr was closed when the copy was asked for. A
// child of fork() closes its inherited copy (forget_kept_stderr_after_fork(): a daemon must not
// hold its parent's stderr open), and its reports go to its own stderr, whatever that names.
// Invariant: g_kept_stderr >= 0 => g_kept_device and g_kept_inode name the file it was made for
// (stored before it, read after it).
//
// stack_extent(): the readable mapping that holds the frame, found in /proc/self/maps and
// remembered per thread. A trace is captured inside malloc with the heap's checked-mode lock
// held, so nothing here allocates or takes a lock: /proc/self/maps is read with raw system calls
// (not libc's wrappers, which another preloaded library may wrap with code that allocates)
// through a small stack buffer, each line's addresses and permissions parsed as they stream
// past, and errno is kept. State, per thread (initial-exec thread-locals, no constructor): the
// extent last found, used while the frames asked about lie inside it and looked up again when
// one does not (a signal handler on an alternate stack, a coroutine's stack); and a flag that
// makes a nested call (a signal handler that allocates while the lookup runs) answer "not known"
// ({0, 0}). Not known, too, when /proc cannot be read or the frame lies in no readable mapping.
// Limit: a mapping changed under a remembered extent (part of it unmapped or protected) is not
// seen until a frame falls outside it.
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

#include "bedrock/error_report.h"
#include "bedrock/hosted.h"
#include "bedrock/platform.h"

namespace bedrock {
namespace {

std::atomic<int> g_kept_stderr{-1};
dev_t g_kept_device = 0;
ino_t g_kept_inode = 0;
// Whether keep_stderr_for_reports() ran (reports then go only to the file it found), and whether
// it found one (g_kept_device and g_kept_inode name it: stored before, read after).
std::atomic<bool> g_reports_keep_to_stderr_at_start{false};
std::atomic<bool> g_kept_file_known{false};

// Whether `descriptor` names the file keep_stderr_for_reports() found at stderr.
bool names_kept_file(int descriptor) {
    struct stat now {};
    return g_kept_file_known.load(std::memory_order_acquire) && fstat(descriptor, &now) == 0 &&
           now.st_dev == g_kept_device && now.st_ino == g_kept_inode;
}

// The copy of stderr keep_stderr_for_reports() made, if it still names the file it was made
// for; else -1.
int kept_stderr() {
    const int kept = g_kept_stderr.load(std::memory_order_acquire);
    return kept >= 0 && names_kept_file(kept) ? kept : -1;
}

// Where a report goes: stderr, or once keep_stderr_for_reports() ran, the file it found there
// (stderr or the copy, whichever still names it; a child of fork() has no copy), or -1 for
// nowhere.
int report_descriptor() {
    if (!g_reports_keep_to_stderr_at_start.load(std::memory_order_acquire)) {
        return STDERR_FILENO;
    }
    return names_kept_file(STDERR_FILENO) ? STDERR_FILENO : kept_stderr();
}

// write(2) to stderr until all of `bytes` is out or the descriptor fails (a broken pipe, or
// stderr closed with no kept copy: nothing to do), with SIGPIPE blocked (the file comment).
// Four system calls more than the writes: reports are rare.
void write_all(const char* text, size_t bytes) {
    const int saved_errno = errno;
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    sigset_t previous;
    const bool blocked = pthread_sigmask(SIG_BLOCK, &pipe_only, &previous) == 0;
    sigset_t pending;
    const bool was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
    const int descriptor = report_descriptor();
    while (descriptor >= 0 && bytes > 0) {
        const ssize_t written = write(descriptor, text, bytes);
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

// "bedrock: <what>: <first>[ at <file>:<line>]" and the newline, in one write(2) (cut short to
// fit 512 bytes).
void write_last_words(const char* what, const char* first, const char* file, int line) {
    char number[16]; // the digits, then a NUL in its last byte
    char* digits = number + sizeof(number) - 1;
    *digits = '\0';
    for (unsigned value = static_cast<unsigned>(line < 0 ? 0 : line);
         digits == number + sizeof(number) - 1 || value != 0; value /= 10) {
        *--digits = static_cast<char>('0' + value % 10);
    }
    char text[512];
    size_t length = 0;
    const auto append = [&](const char* part) {
        const size_t bytes = strnlen(part, sizeof(text) - 1 - length);
        memcpy(text + length, part, bytes);
        length += bytes;
    };
    append("bedrock: ");
    append(what);
    append(": ");
    append(first);
    if (file != nullptr) {
        append(" at ");
        append(file);
        append(":");
        append(digits);
    }
    text[length++] = '\n';
    write_all(text, length);
}

using platform::StackExtent;

[[gnu::tls_model("initial-exec")]] constinit thread_local StackExtent t_extent{0, 0};
[[gnu::tls_model("initial-exec")]] constinit thread_local bool t_looking_up = false;

// One /proc/self/maps line at a time: "low-high perms ...", both addresses in hex.
class MapsLine {
public:
    // Takes the line's next byte; true at its end (the newline).
    bool take(char byte) {
        if (byte == '\n') {
            return true;
        }
        switch (m_field) {
        case Field::Low:
        case Field::High:
            if (byte == '-' || byte == ' ') {
                m_field = m_field == Field::Low ? Field::High : Field::Permissions;
            } else {
                uintptr_t& value = m_field == Field::Low ? m_low : m_high;
                value = value << 4 | hex_digit(byte);
            }
            break;
        case Field::Permissions:
            m_readable = byte == 'r';
            m_field = Field::Rest;
            break;
        case Field::Rest:
            break;
        }
        return false;
    }

    [[nodiscard]] bool holds(uintptr_t address) const {
        return address >= m_low && address < m_high;
    }
    [[nodiscard]] StackExtent extent() const {
        return m_readable ? StackExtent{m_low, m_high} : StackExtent{0, 0};
    }

private:
    enum class Field { Low, High, Permissions, Rest };

    static uintptr_t hex_digit(char byte) {
        if (byte >= '0' && byte <= '9') {
            return static_cast<uintptr_t>(byte - '0');
        }
        return static_cast<uintptr_t>((byte | 0x20) - 'a' + 10);
    }

    Field m_field = Field::Low;
    uintptr_t m_low = 0;
    uintptr_t m_high = 0;
    bool m_readable = false;
};

// The readable mapping holding `address`, or {0, 0}. O(size of /proc/self/maps).
StackExtent find_mapping(uintptr_t address) {
    const long fd = syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return StackExtent{0, 0};
    }
    StackExtent found{0, 0};
    MapsLine line;
    char buffer[512];
    bool done = false;
    long got;
    while (!done && (got = syscall(SYS_read, fd, buffer, sizeof(buffer))) > 0) {
        for (long i = 0; i < got && !done; ++i) {
            if (!line.take(buffer[i])) {
                continue;
            }
            if (line.holds(address)) {
                found = line.extent();
                done = true;
            }
            line = MapsLine{};
        }
    }
    syscall(SYS_close, fd);
    return found;
}

} // namespace

namespace hosted {

void write_to_stderr(const char* text) {
    write_all(text, strlen(text));
}

void keep_stderr_for_reports() {
    if (g_kept_stderr.load(std::memory_order_relaxed) >= 0) {
        return;
    }
    const int saved_errno = errno;
    // Above the numbers a program opens or dup2()s onto itself, inside its descriptor limit.
    int lowest = 3;
    rlimit files{};
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY &&
        files.rlim_cur >= 8) {
        lowest = static_cast<int>(files.rlim_cur / 2 < 512 ? files.rlim_cur / 2 : 512);
    }
    int kept = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, lowest);
    if (kept < 0) {
        kept = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    }
    struct stat file {};
    if (kept >= 0 && fstat(kept, &file) == 0) {
        g_kept_device = file.st_dev;
        g_kept_inode = file.st_ino;
        g_kept_file_known.store(true, std::memory_order_release);
        g_kept_stderr.store(kept, std::memory_order_release);
    } else if (kept >= 0) {
        close(kept);
    }
    g_reports_keep_to_stderr_at_start.store(true, std::memory_order_release);
    errno = saved_errno;
}

void forget_kept_stderr_after_fork() {
    // The child's reports go to its own stderr, whatever it names.
    g_reports_keep_to_stderr_at_start.store(false, std::memory_order_relaxed);
    const int kept = g_kept_stderr.exchange(-1, std::memory_order_relaxed);
    if (kept >= 0) {
        const int saved_errno = errno;
        close(kept);
        errno = saved_errno;
    }
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

StackExtent stack_extent(const void* frame) {
    const auto address = reinterpret_cast<uintptr_t>(frame);
    const StackExtent known = t_extent;
    if (address >= known.low && address < known.high) {
        return known;
    }
    if (t_looking_up) {
        return StackExtent{0, 0};
    }
    t_looking_up = true;
    const int saved_errno = errno;
    const StackExtent found = find_mapping(address);
    errno = saved_errno;
    if (found.high != 0) {
        t_extent = found;
    }
    t_looking_up = false;
    return found;
}

} // namespace platform
} // namespace bedrock
