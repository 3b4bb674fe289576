// SPDX-License-Identifier: MIT
// Call traces for checked mode: the chain of return addresses found by following frame
// pointers, starting at the frame of the outermost Bedrock function that was called.
//
// Frame records have the same layout on x86-64 (RBP) and AArch64 (X29): record[0] is the
// caller's record, record[1] the return address. The walk stops at kCallTraceDepth frames, at a
// null record or return address, and at any record that is not 8-byte aligned, does not lie
// above the previous one within kMaxFrameBytes (a stack grows down, so callers' records are
// higher) or does not lie wholly inside the stack that platform::stack_extent() names for the
// entry point's frame: a value that frame-pointer-less code left in the register may be
// followed into the stack's own memory (a wrong frame in the trace), never outside it (a
// fault). Needs -fno-omit-frame-pointer wherever a trace should go deeper than the first frame
// (the build adds it in checked builds), and a platform that defines stack_extent(); frames[0]
// is exact either way.
#pragma once

#include <stdint.h>

#include "bedrock/assert.h"
#include "bedrock/error_report.h"

namespace bedrock::heap {

// Which calls a block is allocated and freed by: the malloc family (malloc, calloc, realloc,
// memalign, aligned_alloc, posix_memalign, valloc, pvalloc, heap_allocate and the C API's;
// freed by free, realloc or heap_free), operator new and delete, or operator new[] and delete[].
// Checked mode records a block's and reports a free from another (deallocation-mismatch).
enum class CallFamily : uint8_t { Malloc = 0, New = 1, NewArray = 2 };

// What the public entry points pass down (by value: one register): their own frame address
// (__builtin_frame_address(0)), whose frame record holds their return address (record[1]), so
// the call site is read from it only when a report needs it, and their CallFamily in the
// address's low bits (a frame record is two words, 8-byte aligned on both architectures, so
// bits 0-2 are always 0: Malloc leaves the address as it is). The files holding entry points are
// built without sibling-call optimisation in checked builds, so the frame is still live while
// the trace is taken. A null frame: no caller known (checking compiled out).
class Caller {
public:
    [[nodiscard]] static Caller of(const void* frame, CallFamily family) {
        BEDROCK_DEBUG_ASSERT((reinterpret_cast<uintptr_t>(frame) & kFamilyBits) == 0);
        return Caller{reinterpret_cast<uintptr_t>(frame) | static_cast<uintptr_t>(family)};
    }
    [[nodiscard]] static constexpr Caller unknown() { return Caller{0}; }

    [[nodiscard]] const void* frame() const {
        return reinterpret_cast<const void*>(m_word & ~kFamilyBits);
    }
    [[nodiscard]] CallFamily family() const {
        return static_cast<CallFamily>(m_word & kFamilyBits);
    }
    // call_site_of the entry point's return address, or null.
    [[nodiscard]] const void* call_site() const {
        return frame() != nullptr ? call_site_of(static_cast<const void* const*>(frame())[1])
                                  : nullptr;
    }

private:
    static constexpr uintptr_t kFamilyBits = 7;
    constexpr explicit Caller(uintptr_t word) : m_word(word) {}
    uintptr_t m_word;
};
static_assert(sizeof(Caller) == sizeof(void*), "passed in one register");

inline constexpr uintptr_t kMaxFrameBytes = uintptr_t{1} << 20;

[[nodiscard]] CallTrace capture_call_trace(Caller caller);

} // namespace bedrock::heap
