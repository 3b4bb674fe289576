// SPDX-License-Identifier: MIT
// The kernel command line's heap options (see heap_boot_options.h).
#include "kernel/heap_boot_options.h"

#include "kernel/boot_bench.h"
#include "kernel/boot_protocol_support.h"
#include "kernel/format.h"
#include "kernel/gdb_sample.h"

namespace bedrock::kernel {
namespace {

// Whether the word [word, end) starts with `prefix`; `value` is then what follows it.
bool has_prefix(const char* word, const char* end, const char* prefix, const char*& value) {
    const char* p = word;
    for (; *prefix != '\0'; ++prefix, ++p) {
        if (p == end || *p != *prefix) {
            return false;
        }
    }
    value = p;
    return true;
}

bool equals(const char* begin, const char* end, const char* text) {
    for (; begin != end; ++begin, ++text) {
        if (*text == '\0' || *begin != *text) {
            return false;
        }
    }
    return *text == '\0';
}

// A decimal number of at most 9 digits filling [begin, end).
bool parse_count(const char* begin, const char* end, uint32_t& count) {
    if (begin == end || end - begin > 9) {
        return false;
    }
    uint32_t value = 0;
    for (const char* p = begin; p != end; ++p) {
        if (*p < '0' || *p > '9') {
            return false;
        }
        value = value * 10 + static_cast<uint32_t>(*p - '0');
    }
    count = value;
    return true;
}

void add_error(HeapBootOptions& options, const char* word, const char* end, const char* problem) {
    if (options.error_count < HeapBootOptions::kMaxErrors) {
        options.errors[options.error_count] = {word, static_cast<int>(end - word), problem};
    }
    ++options.error_count;
}

} // namespace

HeapBootOptions parse_heap_boot_options(const char* command_line) {
    HeapBootOptions options;
    // The guard word that set the interval last, to name it if checking ends up off.
    const char* guard_word = nullptr;
    const char* guard_end = nullptr;
    const char* p = command_line;
    while (p != nullptr && *p != '\0') {
        while (is_word_separator(*p)) {
            ++p;
        }
        const char* word = p;
        while (*p != '\0' && !is_word_separator(*p)) {
            ++p;
        }
        const char* value = nullptr;
        if (has_prefix(word, p, "bedrock.check=", value)) {
            if (equals(value, p, "off")) {
                options.level = CheckLevel::Off;
            } else if (equals(value, p, "report")) {
                options.level = CheckLevel::Report;
            } else if (equals(value, p, "abort")) {
                options.level = CheckLevel::Abort;
            } else {
                add_error(options, word, p, "not off, report or abort");
            }
        } else if (has_prefix(word, p, "bedrock.guard=", value)) {
            if (parse_count(value, p, options.guard_sample_interval)) {
                guard_word = word;
                guard_end = p;
            } else {
                add_error(options, word, p, "not a count (at most 9 digits)");
            }
        } else if (equals(word, p, kBootBenchOption) || equals(word, p, kGdbSampleOption)) {
            // The test kernel's own options (boot_bench.h, gdb_sample.h), not the heap's.
        } else if (has_prefix(word, p, "bedrock.", value)) {
            add_error(options, word, p, "no such option");
        }
    }
    if (options.guard_sample_interval != 0 && options.level == CheckLevel::Off) {
        add_error(options, guard_word, guard_end, "needs bedrock.check=report or abort");
        options.guard_sample_interval = 0;
    }
    return options;
}

void describe_heap_boot_option_errors(const HeapBootOptions& options, LineWriter write,
                                      void* context) {
    if (options.error_count == 0) {
        return;
    }
    char line[160];
    const size_t kept = options.error_count < HeapBootOptions::kMaxErrors
                            ? options.error_count
                            : HeapBootOptions::kMaxErrors;
    for (size_t i = 0; i < kept; ++i) {
        const HeapBootOptionError& error = options.errors[i];
        char word[64];
        // The word is not NUL-terminated: format copies at most its length (cut to fit).
        const auto length = static_cast<size_t>(error.length);
        format(word, length + 1 < sizeof(word) ? length + 1 : sizeof(word), "%s", error.word);
        format(line, sizeof(line), "heap: command line: %s ignored: %s", word, error.problem);
        write(context, line);
    }
    if (options.error_count > kept) {
        format(line, sizeof(line), "heap: command line: %zu more problems not listed",
               options.error_count - kept);
        write(context, line);
    }
    write(context, "heap: command line: the options are bedrock.check=off|report|abort and "
                   "bedrock.guard=<every Nth checked allocation>");
}

} // namespace bedrock::kernel
