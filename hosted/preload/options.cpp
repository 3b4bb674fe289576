// SPDX-License-Identifier: MIT
// Reading BEDROCK_* from the environment without libc's help (options.h): from `environ` when
// libc has set it, else streamed from /proc/self/environ through a small stack buffer. Entries
// that are not BEDROCK_* variables are skipped whatever their length.
#include "preload/options.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "bedrock/hosted.h"

extern char** environ;

namespace bedrock::preload {
namespace {

constexpr size_t kMaxEntry = 64; // longer BEDROCK_* entries are ignored

// The decimal number that is all of `text`, or `fallback`.
uint64_t parse_number(const char* text, uint64_t fallback) {
    if (*text == '\0') {
        return fallback;
    }
    uint64_t value = 0;
    for (; *text != '\0'; ++text) {
        if (*text < '0' || *text > '9' || value > (uint64_t{1} << 40)) {
            return fallback;
        }
        value = value * 10 + static_cast<uint64_t>(*text - '0');
    }
    return value;
}

// "bedrock: ignoring <entry><why>" on stderr, in one write(2) (a long entry is cut short).
void complain(const char* entry, const char* why = "") {
    char line[256];
    size_t length = 0;
    const auto append = [&](const char* text, size_t end) {
        const size_t bytes = strnlen(text, end - length);
        memcpy(line + length, text, bytes);
        length += bytes;
    };
    append("bedrock: ignoring ", sizeof(line) - 2);
    append(entry, sizeof(line) - 2);
    append(why, sizeof(line) - 2);
    append("\n", sizeof(line) - 1);
    line[length] = '\0';
    hosted::write_to_stderr(line);
}

constexpr const char* kNeedsCheckedMode = ": it needs checked mode (BEDROCK_CHECK=report or abort)";

struct Reader {
    Options options;
    bool check_given = false;
    char guard_entry[kMaxEntry + 1] = {}; // the BEDROCK_GUARD entry taken, for complain()

    void take(const char* entry) {
        if (strncmp(entry, "BEDROCK_", 8) != 0) {
            return;
        }
        const char* value = strchr(entry, '=');
        if (value == nullptr) {
            return;
        }
        const auto name_length = static_cast<size_t>(value - entry);
        const auto name_is = [&](const char* name) {
            return strlen(name) == name_length && strncmp(entry, name, name_length) == 0;
        };
        ++value;
        if (name_is("BEDROCK_CHECK")) {
            check_given = true;
            if (strcmp(value, "off") == 0) {
                options.check = CheckLevel::Off;
            } else if (strcmp(value, "report") == 0) {
                options.check = CheckLevel::Report;
            } else if (strcmp(value, "abort") == 0) {
                options.check = CheckLevel::Abort;
            } else {
                check_given = false;
                complain(entry);
            }
        } else if (name_is("BEDROCK_GUARD")) {
            const uint64_t interval = parse_number(value, ~uint64_t{0});
            if (interval > UINT32_MAX) {
                complain(entry);
            } else {
                options.guard_interval = static_cast<uint32_t>(interval);
                strncpy(guard_entry, entry, kMaxEntry); // cut at kMaxEntry, NUL-terminated
            }
        } else if (name_is("BEDROCK_STATS")) {
            options.statistics = strcmp(value, "1") == 0;
        } else if (name_is("BEDROCK_LEAKS")) {
            options.leaks = strcmp(value, "1") == 0;
        } else if (name_is("BEDROCK_MEMORY")) {
            const uint64_t mebibytes = parse_number(value, 0);
            if (mebibytes == 0 || mebibytes > (uint64_t{1} << 26)) {
                complain(entry);
            } else {
                options.reservation_bytes = mebibytes << 20;
            }
        }
    }

    void read_proc_environ() {
        const int fd = open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            return;
        }
        char chunk[512];
        char entry[kMaxEntry + 1];
        size_t length = 0;
        bool too_long = false;
        ssize_t got;
        while ((got = read(fd, chunk, sizeof(chunk))) > 0) {
            for (ssize_t i = 0; i < got; ++i) {
                if (chunk[i] == '\0') {
                    entry[length] = '\0';
                    if (!too_long) {
                        take(entry);
                    }
                    length = 0;
                    too_long = false;
                } else if (length < kMaxEntry) {
                    entry[length++] = chunk[i];
                } else {
                    too_long = true;
                }
            }
        }
        close(fd);
    }
};

} // namespace

Options read_options() {
    Reader reader;
    if (environ != nullptr) {
        for (char** entry = environ; *entry != nullptr; ++entry) {
            reader.take(*entry);
        }
    } else {
        reader.read_proc_environ();
    }
    Options& options = reader.options;
    if (options.leaks && !reader.check_given) {
        options.check = CheckLevel::Report;
    }
    // Leaks are tracked, and guard pages given, for checked blocks only: without checked mode
    // both would do nothing, so they are dropped, and said so.
    if (options.check == CheckLevel::Off && options.leaks) {
        complain("BEDROCK_LEAKS=1", kNeedsCheckedMode);
        options.leaks = false;
    }
    if (options.check == CheckLevel::Off && options.guard_interval != 0) {
        complain(reader.guard_entry, kNeedsCheckedMode);
        options.guard_interval = 0;
    }
    return options;
}

} // namespace bedrock::preload
