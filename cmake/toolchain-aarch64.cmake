# SPDX-License-Identifier: MIT
set(BEDROCK_ARCH aarch64)
set(BEDROCK_TRIPLE aarch64-unknown-none-elf)
include(${CMAKE_CURRENT_LIST_DIR}/toolchain-freestanding.cmake)
