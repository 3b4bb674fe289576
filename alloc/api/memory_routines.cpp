// SPDX-License-Identifier: MIT
// The freestanding memory routines: byte loops at the edges, machine words in the middle.
//
// Words are accessed through may_alias types so the compiler neither assumes a type nor turns
// the loops back into calls to memcpy/memset (this file is compiled with -fno-builtin, see
// alloc/CMakeLists.txt). Unaligned word loads use an aligned(1) type; both supported
// architectures allow them once the MMU maps RAM as Normal memory.
#include "bedrock/memory_routines.h"

#include <stdint.h>

namespace {

// The attributes go after the alias's name: written after the type (`= Word
// __attribute__((...))`), clang drops them from an alias declaration without a word, and the
// loads were 8-byte-aligned `long` accesses (UndefinedBehaviorSanitizer: misaligned load).
using Word = uint64_t;
using AlignedWord [[gnu::may_alias]] = Word;
using UnalignedWord [[gnu::may_alias, gnu::aligned(1)]] = Word;
static_assert(alignof(UnalignedWord) == 1);
constexpr size_t kWordSize = sizeof(Word);

bool is_word_aligned(const void* pointer) {
    return (reinterpret_cast<uintptr_t>(pointer) & (kWordSize - 1)) == 0;
}

// Copies forward; correct when destination precedes source or they do not overlap.
void copy_forward(unsigned char* destination, const unsigned char* source, size_t length) {
    while (length > 0 && !is_word_aligned(destination)) {
        *destination++ = *source++;
        --length;
    }
    while (length >= kWordSize) {
        *reinterpret_cast<AlignedWord*>(destination) =
            *reinterpret_cast<const UnalignedWord*>(source);
        destination += kWordSize;
        source += kWordSize;
        length -= kWordSize;
    }
    while (length > 0) {
        *destination++ = *source++;
        --length;
    }
}

// Copies backward from the ends; correct when source precedes destination.
void copy_backward(unsigned char* destination, const unsigned char* source, size_t length) {
    destination += length;
    source += length;
    while (length > 0 && !is_word_aligned(destination)) {
        *--destination = *--source;
        --length;
    }
    while (length >= kWordSize) {
        destination -= kWordSize;
        source -= kWordSize;
        length -= kWordSize;
        *reinterpret_cast<AlignedWord*>(destination) =
            *reinterpret_cast<const UnalignedWord*>(source);
    }
    while (length > 0) {
        *--destination = *--source;
        --length;
    }
}

} // namespace

extern "C" {

void* bedrock_memcpy(void* __restrict destination, const void* __restrict source, size_t length) {
    copy_forward(static_cast<unsigned char*>(destination),
                 static_cast<const unsigned char*>(source), length);
    return destination;
}

void* bedrock_memmove(void* destination, const void* source, size_t length) {
    auto* to = static_cast<unsigned char*>(destination);
    const auto* from = static_cast<const unsigned char*>(source);
    // Unsigned distance: if the destination starts inside [source, source + length), a forward
    // copy would overwrite bytes before reading them.
    if (static_cast<size_t>(to - from) < length) {
        copy_backward(to, from, length);
    } else {
        copy_forward(to, from, length);
    }
    return destination;
}

void* bedrock_memset(void* destination, int value, size_t length) {
    auto* to = static_cast<unsigned char*>(destination);
    const auto byte = static_cast<unsigned char>(value);
    while (length > 0 && !is_word_aligned(to)) {
        *to++ = byte;
        --length;
    }
    const Word pattern = Word{byte} * 0x0101010101010101ULL;
    while (length >= kWordSize) {
        *reinterpret_cast<AlignedWord*>(to) = pattern;
        to += kWordSize;
        length -= kWordSize;
    }
    while (length > 0) {
        *to++ = byte;
        --length;
    }
    return destination;
}

int bedrock_memcmp(const void* left, const void* right, size_t length) {
    const auto* a = static_cast<const unsigned char*>(left);
    const auto* b = static_cast<const unsigned char*>(right);
    // Skip equal words quickly; the first differing word is resolved byte by byte.
    while (length >= kWordSize && *reinterpret_cast<const UnalignedWord*>(a) ==
                                      *reinterpret_cast<const UnalignedWord*>(b)) {
        a += kWordSize;
        b += kWordSize;
        length -= kWordSize;
    }
    for (; length > 0; ++a, ++b, --length) {
        if (*a != *b) {
            return *a < *b ? -1 : 1;
        }
    }
    return 0;
}

size_t bedrock_strlen(const char* text) {
    const char* end = text;
    while (*end != '\0') {
        ++end;
    }
    return static_cast<size_t>(end - text);
}

} // extern "C"

#if defined(BEDROCK_STANDARD_NAMES) && BEDROCK_STANDARD_NAMES
// The standard names, for targets without a libc. Aliases rather than wrappers: no extra call,
// and a wrapper's body could be turned back into a call to itself. An alias must name a symbol
// of the same translation unit, hence here and behind the build option.
extern "C" {
void* memcpy(void* __restrict destination, const void* __restrict source, size_t length)
    __attribute__((alias("bedrock_memcpy")));
void* memmove(void* destination, const void* source, size_t length)
    __attribute__((alias("bedrock_memmove")));
void* memset(void* destination, int value, size_t length) __attribute__((alias("bedrock_memset")));
int memcmp(const void* left, const void* right, size_t length)
    __attribute__((alias("bedrock_memcmp")));
size_t strlen(const char* text) __attribute__((alias("bedrock_strlen")));
}
#endif
