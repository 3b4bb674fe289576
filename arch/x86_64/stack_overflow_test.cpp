// SPDX-License-Identifier: MIT
// Built only into bedrock-kernel-stack-overflow (x86-64): a test that recurses until the boot
// stack runs into its guard page. The expected outcome is a double fault reported on its own
// stack as a stack overflow and a failing exit, never a hang, a pass, or silent corruption of
// what lies below the stack.
#include <stdint.h>

#include "kernel/test_registry.h"

namespace {

// Far more frames than the boot stack holds: each frame is at least kFrameBytes.
constexpr uint64_t kDepth = uint64_t{1} << 20;
constexpr uint64_t kFrameBytes = 256;

// Each frame passes its own buffer to the next one and writes to the caller's buffer after the
// call returns, so every frame stays live and the compiler cannot turn the recursion into a loop.
[[gnu::noinline]] uint64_t descend(volatile uint8_t* caller, uint64_t depth) {
    volatile uint8_t frame[kFrameBytes];
    frame[0] = static_cast<uint8_t>(depth);
    const uint64_t below = depth == 0 ? 0 : descend(frame, depth - 1);
    caller[0] = static_cast<uint8_t>(caller[0] + frame[0]);
    return below + frame[0];
}

} // namespace

BEDROCK_TEST(stack_overflow_reaches_the_guard_page) {
    volatile uint8_t root[1] = {0};
    const uint64_t total = descend(root, kDepth);
    BEDROCK_EXPECT(total != total); // not reached: the recursion overflows the stack
}
