// The parts of <new> that operator new/delete need, for freestanding targets that have no C++
// library headers (the test kernels). Include this or <new>, never both. Hosted builds use
// <new>; Bedrock defines the operators themselves only with BEDROCK_STANDARD_NAMES.
#pragma once

#include <stddef.h>

namespace std {
struct nothrow_t {
    explicit nothrow_t() = default;
};
extern const nothrow_t nothrow;
enum class align_val_t : size_t {};
} // namespace std
