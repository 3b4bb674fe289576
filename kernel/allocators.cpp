// Allocator bring-up for the test kernel.
#include "kernel/allocators.h"

namespace bedrock::kernel {

void bring_up_allocators(const PhysRange*, size_t) {}

} // namespace bedrock::kernel
