// SPDX-License-Identifier: MIT
// C++ runtime bring-up for the kernel (see cxx_runtime.cpp).
#pragma once

namespace bedrock::kernel {

// Calls every constructor in .init_array, in order. Called once by kernel_main, before
// anything that might rely on a constructed static.
void run_static_constructors();

} // namespace bedrock::kernel
