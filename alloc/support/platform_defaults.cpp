// SPDX-License-Identifier: MIT
// The defaults of the optional platform hooks (bedrock/platform.h), each weak so that a
// platform's own definition takes over:
//   - page_granularity(): kPageSize, as a kernel's pages are; a hosted process on a 16 KiB or
//     64 KiB page kernel defines its own;
//   - stack_extent(): not known, so checked mode's call traces hold the call site only; a
//     platform that knows its stacks defines it for deeper traces.
#include "bedrock/phys_range.h"
#include "bedrock/platform.h"

namespace bedrock::platform {

[[gnu::weak]] size_t page_granularity() {
    return kPageSize;
}

[[gnu::weak]] StackExtent stack_extent(const void*) {
    return StackExtent{0, 0};
}

} // namespace bedrock::platform
