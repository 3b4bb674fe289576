// SPDX-License-Identifier: MIT
// The frame-pointer walk (see call_trace.h for the rules it follows).
#include "report/call_trace.h"

#include "bedrock/platform.h"

namespace bedrock::heap {

namespace {

// Whether the frame record at `record` (two words: the caller's record, the return address)
// lies inside `stack` and is 8-byte aligned.
bool record_is_readable(uintptr_t record, platform::StackExtent stack) {
    constexpr uintptr_t kRecordBytes = 2 * sizeof(uintptr_t);
    return record % 8 == 0 && record >= stack.low && stack.high >= kRecordBytes &&
           record <= stack.high - kRecordBytes;
}

} // namespace

__attribute__((no_sanitize("address"))) CallTrace capture_call_trace(Caller caller) {
    CallTrace trace = {};
    trace.frames[0] = caller.call_site();
    auto record = reinterpret_cast<uintptr_t>(caller.frame());
    const platform::StackExtent stack = platform::stack_extent(caller.frame());
    for (unsigned depth = 1; depth < kCallTraceDepth && record_is_readable(record, stack);
         ++depth) {
        const uintptr_t next = reinterpret_cast<const uintptr_t*>(record)[0];
        if (next <= record || next - record > kMaxFrameBytes || !record_is_readable(next, stack)) {
            break;
        }
        const auto return_address =
            reinterpret_cast<const void*>(reinterpret_cast<const uintptr_t*>(next)[1]);
        if (return_address == nullptr) {
            break;
        }
        trace.frames[depth] = call_site_of(return_address);
        record = next;
    }
    return trace;
}

} // namespace bedrock::heap
