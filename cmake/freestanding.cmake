# SPDX-License-Identifier: MIT
# Compile and link options for freestanding code (the kernels): no libc, no C++ runtime, no
# exceptions, no RTTI, no FP/SIMD registers, no host headers beyond clang's own freestanding
# ones (-nostdlibinc keeps <stddef.h>, <stdint.h>, <stdarg.h> from clang's resource dir).
add_library(bedrock_freestanding INTERFACE)
target_compile_options(bedrock_freestanding INTERFACE
    $<$<COMPILE_LANGUAGE:CXX>:-std=c++20 -fno-exceptions -fno-rtti>
    -ffreestanding -nostdlibinc -fno-stack-protector -fno-pic -fno-pie
    -fno-omit-frame-pointer -ffunction-sections -fdata-sections -g)

if(BEDROCK_ARCH STREQUAL "x86_64")
    # No red zone: interrupts push onto the current stack. No SSE/AVX: the kernel never saves
    # vector state. The kernel runs identity-mapped below 2 GiB, so the small code model fits.
    target_compile_options(bedrock_freestanding INTERFACE
        -mno-red-zone -mno-mmx -mno-sse -mno-sse2 -mno-avx -mcmodel=small)
elseif(BEDROCK_ARCH STREQUAL "aarch64")
    # cortex-a57 is ARMv8.0: no LSE atomics. No FP/SIMD registers in kernel code.
    target_compile_options(bedrock_freestanding INTERFACE
        -march=armv8-a -mgeneral-regs-only)
endif()

target_link_options(bedrock_freestanding INTERFACE
    -nostdlib -static --gc-sections --no-undefined)
