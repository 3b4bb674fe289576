// SPDX-License-Identifier: MIT
// BootParseResult: the outcome of turning a firmware's boot information into BootInfo.
#pragma once

namespace bedrock::kernel {

struct BootParseResult {
    const char* error = nullptr; // one sentence saying what is wrong; null on success
    const char* node = nullptr;  // the device-tree node the error concerns (its name), if any
    [[nodiscard]] bool ok() const { return error == nullptr; }
};

} // namespace bedrock::kernel
