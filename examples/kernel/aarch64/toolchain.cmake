# SPDX-License-Identifier: MIT
# An adopter's toolchain file for a freestanding AArch64 kernel: clang for the
# aarch64-unknown-none-elf target, ld.lld called directly. Bedrock is built with it too, so the
# library and the kernel share these flags: no libc headers, ARMv8.0 (cortex-a57 has no LSE
# atomics), no FP/SIMD registers (they trap until enabled), and -mstrict-align because this
# kernel leaves the MMU off, where memory is Device memory and unaligned accesses fault.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(triple aarch64-unknown-none-elf)

set(CMAKE_C_COMPILER clang)
set(CMAKE_CXX_COMPILER clang++)
set(CMAKE_ASM_COMPILER clang)
set(CMAKE_C_COMPILER_TARGET ${triple})
set(CMAKE_CXX_COMPILER_TARGET ${triple})
set(CMAKE_ASM_COMPILER_TARGET ${triple})

set(flags "-ffreestanding -nostdlibinc -fno-stack-protector -fno-pic -fno-pie -march=armv8-a \
-mgeneral-regs-only -mstrict-align")
set(CMAKE_C_FLAGS_INIT "${flags}")
set(CMAKE_CXX_FLAGS_INIT "${flags} -fno-exceptions -fno-rtti")
set(CMAKE_ASM_FLAGS_INIT "${flags}")

# Nothing links without the kernel's linker script: compiler checks build static libraries.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
find_program(LLD NAMES ld.lld ld.lld-14 REQUIRED)
set(CMAKE_C_LINK_EXECUTABLE "${LLD} <LINK_FLAGS> <OBJECTS> -o <TARGET> <LINK_LIBRARIES>")
set(CMAKE_CXX_LINK_EXECUTABLE "${CMAKE_C_LINK_EXECUTABLE}")
