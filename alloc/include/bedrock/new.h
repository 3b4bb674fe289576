// SPDX-License-Identifier: MIT
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

// The replaceable forms beyond those the compiler declares implicitly (it declares only the
// plain and aligned ones), with the signatures <new> gives them.
void* operator new(size_t size, const std::nothrow_t&) noexcept;
void* operator new[](size_t size, const std::nothrow_t&) noexcept;
void* operator new(size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept;
void* operator new[](size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept;
void operator delete(void* block, size_t size) noexcept;
void operator delete[](void* block, size_t size) noexcept;
void operator delete(void* block, size_t size, std::align_val_t alignment) noexcept;
void operator delete[](void* block, size_t size, std::align_val_t alignment) noexcept;
void operator delete(void* block, const std::nothrow_t&) noexcept;
void operator delete[](void* block, const std::nothrow_t&) noexcept;
void operator delete(void* block, std::align_val_t alignment, const std::nothrow_t&) noexcept;
void operator delete[](void* block, std::align_val_t alignment, const std::nothrow_t&) noexcept;
