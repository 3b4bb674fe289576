// SPDX-License-Identifier: MIT
/* The freestanding memory routines. Bedrock defines them under its own prefix; with the build
 * option BEDROCK_STANDARD_NAMES (on for kernels) memory_routines.cpp also exports them as
 * memcpy, memmove, memset, memcmp and strlen, which the compiler emits calls to. C and C++.
 *
 * All are correct for every length, alignment and (memmove) overlap, and never call the
 * standard names themselves. Time: O(n), a machine word per step once aligned. */
#ifndef BEDROCK_MEMORY_ROUTINES_H
#define BEDROCK_MEMORY_ROUTINES_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif
void* bedrock_memcpy(void* __restrict destination, const void* __restrict source, size_t length);
void* bedrock_memmove(void* destination, const void* source, size_t length);
void* bedrock_memset(void* destination, int value, size_t length);
int bedrock_memcmp(const void* left, const void* right, size_t length);
size_t bedrock_strlen(const char* text);
#ifdef __cplusplus
}
#endif

#endif /* BEDROCK_MEMORY_ROUTINES_H */
