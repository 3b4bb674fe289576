# SPDX-License-Identifier: MIT
set(BEDROCK_ARCH x86_64)
set(BEDROCK_TRIPLE x86_64-unknown-none-elf)
include(${CMAKE_CURRENT_LIST_DIR}/toolchain-freestanding.cmake)
