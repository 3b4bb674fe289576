# SPDX-License-Identifier: MIT
# The x86-64 toolchain file with gcc instead of clang (the host's gcc: x86-64 code is what a
# freestanding kernel needs once libc and the host ABI's extras are turned off), ld.lld as the
# linker. gcc may call libgcc for what it does not inline in the kernel's own code (Bedrock
# needs none of it), so the link takes gcc's own libgcc.a, which needs no libc.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(CMAKE_C_COMPILER gcc)
set(CMAKE_CXX_COMPILER g++)
set(CMAKE_ASM_COMPILER gcc)

set(flags "-ffreestanding -fno-stack-protector -fno-pic -fno-pie -mno-red-zone -mno-mmx \
-mno-sse -mno-sse2 -mno-avx -mcmodel=small -fno-asynchronous-unwind-tables")
set(CMAKE_C_FLAGS_INIT "${flags}")
set(CMAKE_CXX_FLAGS_INIT "${flags} -fno-exceptions -fno-rtti")
set(CMAKE_ASM_FLAGS_INIT "${flags}")

# Nothing links without the kernel's linker script: compiler checks build static libraries.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
find_program(LLD NAMES ld.lld ld.lld-14 REQUIRED)
set(CMAKE_C_LINK_EXECUTABLE "${LLD} <LINK_FLAGS> <OBJECTS> -o <TARGET> <LINK_LIBRARIES>")
set(CMAKE_CXX_LINK_EXECUTABLE "${CMAKE_C_LINK_EXECUTABLE}")
execute_process(COMMAND ${CMAKE_C_COMPILER} -print-libgcc-file-name
    OUTPUT_VARIABLE libgcc OUTPUT_STRIP_TRAILING_WHITESPACE)
set(CMAKE_C_STANDARD_LIBRARIES "${libgcc}")
