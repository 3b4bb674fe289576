# SPDX-License-Identifier: MIT
# The warning set for the project's own code. Third-party code (GoogleTest, Google Benchmark)
# is never compiled with it, nor is Bedrock when another project builds it (add_subdirectory):
# the set applies only when Bedrock is the top-level project. Warnings are errors only with
# clang, the compiler the project's builds use (gcc 12 also warns of a bit-field conversion in
# checked_blocks.cpp and of null dereferences it cannot rule out in pages/region.h).
add_library(bedrock_warnings INTERFACE)
if(NOT PROJECT_IS_TOP_LEVEL)
    return()
endif()
target_compile_options(bedrock_warnings INTERFACE
    -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Wshadow -Wcast-align
    -Wnull-dereference -Wimplicit-fallthrough -Wmissing-declarations
    $<$<COMPILE_LANGUAGE:CXX>:-Wnon-virtual-dtor -Wold-style-cast -Woverloaded-virtual>
    # Zero-length arrays and GNU statement expressions are not used; anonymous structs are
    # not either. Pedantic stays on, but the GNU attribute syntax is legitimate here.
    $<$<CXX_COMPILER_ID:Clang>:-Wno-gnu-zero-variadic-macro-arguments>
    $<$<CXX_COMPILER_ID:Clang>:-Werror>)
