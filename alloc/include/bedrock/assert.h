// SPDX-License-Identifier: MIT
// Assertions for the portable core.
//
// BEDROCK_ASSERT is always on: it guards conditions whose violation would corrupt memory.
// BEDROCK_DEBUG_ASSERT is compiled only with BEDROCK_DEBUG_ASSERTS=1 (debug builds, host
// tests): it guards internal invariants that are expensive or on hot paths.
// Macros, because they capture the expression text, __FILE__ and __LINE__.
#pragma once

#include "bedrock/platform.h"

#define BEDROCK_ASSERT(expression)                                                                 \
    ((expression) ? static_cast<void>(0)                                                           \
                  : ::bedrock::platform::assertion_failed(#expression, __FILE__, __LINE__))

#if defined(BEDROCK_DEBUG_ASSERTS) && BEDROCK_DEBUG_ASSERTS
#define BEDROCK_DEBUG_ASSERT(expression) BEDROCK_ASSERT(expression)
#else
#define BEDROCK_DEBUG_ASSERT(expression) static_cast<void>(0)
#endif
