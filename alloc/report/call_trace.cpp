// SPDX-License-Identifier: MIT
// The frame-pointer walk (see call_trace.h for the rules it follows).
#include "report/call_trace.h"

namespace bedrock::heap {

__attribute__((no_sanitize("address"))) CallTrace capture_call_trace(Caller caller) {
    CallTrace trace = {};
    trace.frames[0] = caller.call_site();
    auto record = reinterpret_cast<uintptr_t>(caller.frame);
    for (unsigned depth = 1; depth < kCallTraceDepth && record != 0 && record % 8 == 0; ++depth) {
        const uintptr_t next = reinterpret_cast<const uintptr_t*>(record)[0];
        if (next <= record || next - record > kMaxFrameBytes || next % 8 != 0) {
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
