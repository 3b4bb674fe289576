// SPDX-License-Identifier: MIT
// Owner ids: a small number per live heap over a page frame allocator, written in the tags of
// its large runs (page_tags.h), since heaps over one page frame allocator share its tags.
//
// Owns the set of ids in use (a bitmap under s_lock). Invariant: an id is in the set exactly
// while the heap holding it lives; ids are 1..kMaxOwnerIds (0 means none).
// Lock order: s_lock is a leaf (heap_lock_all() takes it last of a heap's locks).
#pragma once

#include <stdint.h>

#include "bedrock/platform.h"

namespace bedrock::heap {

inline constexpr uint16_t kMaxOwnerIds = 8191;

// A free id, or 0 if kMaxOwnerIds heaps over page frame allocators live. O(kMaxOwnerIds / 64).
[[nodiscard]] uint16_t acquire_owner_id();
// Gives `id` (from acquire_owner_id) back. O(1).
void release_owner_id(uint16_t id);

// heap_lock_all()'s hold on s_lock, for fork() (bedrock/heap.h): returns the mask for unlock.
[[nodiscard]] platform::InterruptState lock_owner_ids();
void unlock_owner_ids(platform::InterruptState previous);

} // namespace bedrock::heap
