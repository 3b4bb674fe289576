// The kernel command line's heap options (see heap_boot_options.h).
#include "kernel/heap_boot_options.h"

#include <stddef.h>

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

} // namespace

HeapBootOptions parse_heap_boot_options(const char* command_line) {
    HeapBootOptions options;
    const char* p = command_line;
    while (p != nullptr && *p != '\0') {
        while (*p == ' ') {
            ++p;
        }
        const char* word = p;
        while (*p != '\0' && *p != ' ') {
            ++p;
        }
        const char* value = nullptr;
        bool understood = true;
        if (has_prefix(word, p, "bedrock.check=", value)) {
            if (equals(value, p, "off")) {
                options.level = CheckLevel::Off;
            } else if (equals(value, p, "report")) {
                options.level = CheckLevel::Report;
            } else if (equals(value, p, "abort")) {
                options.level = CheckLevel::Abort;
            } else {
                understood = false;
            }
        } else if (has_prefix(word, p, "bedrock.guard=", value)) {
            understood = parse_count(value, p, options.guard_sample_interval);
        }
        if (!understood && options.error == nullptr) {
            options.error = word;
            options.error_length = static_cast<int>(p - word);
        }
    }
    return options;
}

} // namespace bedrock::kernel
