# SPDX-License-Identifier: MIT
# An adopter's toolchain file for a freestanding x86-64 kernel: clang for the
# x86_64-unknown-none-elf target, ld.lld called directly. Bedrock is built with it too, so the
# library and the kernel share these flags: no libc headers, no red zone (interrupts push onto
# the stack), no SSE/AVX (the kernel saves no vector state), the small code model (below 2 GiB).
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(triple x86_64-unknown-none-elf)

set(CMAKE_C_COMPILER clang)
set(CMAKE_CXX_COMPILER clang++)
set(CMAKE_ASM_COMPILER clang)
set(CMAKE_C_COMPILER_TARGET ${triple})
set(CMAKE_CXX_COMPILER_TARGET ${triple})
set(CMAKE_ASM_COMPILER_TARGET ${triple})

set(flags "-ffreestanding -nostdlibinc -fno-stack-protector -fno-pic -fno-pie -mno-red-zone \
-mno-mmx -mno-sse -mno-sse2 -mno-avx -mcmodel=small")
set(CMAKE_C_FLAGS_INIT "${flags}")
set(CMAKE_CXX_FLAGS_INIT "${flags} -fno-exceptions -fno-rtti")
set(CMAKE_ASM_FLAGS_INIT "${flags}")

# Nothing links without the kernel's linker script: compiler checks build static libraries.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
find_program(LLD NAMES ld.lld ld.lld-14 REQUIRED)
set(CMAKE_C_LINK_EXECUTABLE "${LLD} <LINK_FLAGS> <OBJECTS> -o <TARGET> <LINK_LIBRARIES>")
set(CMAKE_CXX_LINK_EXECUTABLE "${CMAKE_C_LINK_EXECUTABLE}")
