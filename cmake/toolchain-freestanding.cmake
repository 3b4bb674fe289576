# SPDX-License-Identifier: MIT
# Shared part of the freestanding toolchains: clang as the one cross compiler, ld.lld as the
# linker called directly (the clang driver for *-none-elf targets would call the host g++).
# The per-architecture toolchain files set BEDROCK_ARCH and BEDROCK_TRIPLE, then include this.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR ${BEDROCK_ARCH})

set(CMAKE_C_COMPILER clang)
set(CMAKE_CXX_COMPILER clang++)
set(CMAKE_ASM_COMPILER clang)
set(CMAKE_C_COMPILER_TARGET ${BEDROCK_TRIPLE})
set(CMAKE_CXX_COMPILER_TARGET ${BEDROCK_TRIPLE})
set(CMAKE_ASM_COMPILER_TARGET ${BEDROCK_TRIPLE})

# Nothing can be linked without the project's own linker script, so CMake's compiler checks
# build static libraries only.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

find_program(BEDROCK_LLD NAMES ld.lld ld.lld-14 REQUIRED)
set(CMAKE_CXX_LINK_EXECUTABLE
    "${BEDROCK_LLD} <LINK_FLAGS> <OBJECTS> -o <TARGET> <LINK_LIBRARIES>")
set(CMAKE_C_LINK_EXECUTABLE ${CMAKE_CXX_LINK_EXECUTABLE})

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
