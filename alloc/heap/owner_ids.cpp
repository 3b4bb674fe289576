// SPDX-License-Identifier: MIT
// Owner ids (see owner_ids.h).
#include "heap/owner_ids.h"

#include "bedrock/assert.h"
#include "bedrock/spinlock.h"

namespace bedrock::heap {
namespace {

constexpr unsigned kWords = (kMaxOwnerIds + 1 + 63) / 64;
constinit uint64_t s_in_use[kWords] = {1}; // id 0 is never handed out
constinit SpinLock s_lock;

} // namespace

uint16_t acquire_owner_id() {
    LockGuard guard(s_lock);
    for (unsigned word = 0; word < kWords; ++word) {
        const uint64_t free_bits = ~s_in_use[word];
        if (free_bits == 0) {
            continue;
        }
        const auto bit = static_cast<unsigned>(__builtin_ctzll(free_bits));
        const unsigned id = word * 64 + bit;
        if (id > kMaxOwnerIds) {
            return 0;
        }
        s_in_use[word] |= uint64_t{1} << bit;
        return static_cast<uint16_t>(id);
    }
    return 0;
}

platform::InterruptState lock_owner_ids() {
    return s_lock.lock();
}

void unlock_owner_ids(platform::InterruptState previous) {
    s_lock.unlock(previous);
}

void release_owner_id(uint16_t id) {
    BEDROCK_ASSERT(id != 0 && id <= kMaxOwnerIds);
    LockGuard guard(s_lock);
    s_in_use[id / 64] &= ~(uint64_t{1} << (id % 64));
}

} // namespace bedrock::heap
