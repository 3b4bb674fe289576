// SPDX-License-Identifier: MIT
// The default of platform::page_granularity() (bedrock/platform.h): a platform whose pages are
// kPageSize, as a kernel's are, leaves it alone; one with larger pages (a hosted process on a
// 16 KiB or 64 KiB page kernel) defines its own, which the linker takes over this weak one.
#include "bedrock/phys_range.h"
#include "bedrock/platform.h"

namespace bedrock::platform {

[[gnu::weak]] size_t page_granularity() {
    return kPageSize;
}

} // namespace bedrock::platform
