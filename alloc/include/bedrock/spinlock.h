// SPDX-License-Identifier: MIT
// SpinLock: the lock that guards each allocator, built once on compiler atomics, and safe to take
// in interrupt handlers.
//
// Invariant: m_locked is 1 exactly while one CPU is between lock() and unlock().
// Interrupts: lock() masks interrupts on the calling CPU (platform::disable_interrupts()) before
// it spins and returns the mask it found; unlock(previous) releases the lock and then puts that
// mask back. So no interrupt handler can run on a CPU that holds an allocator lock, and a handler
// that calls Bedrock cannot spin on a lock its own CPU holds. Pairs nest (each lock carries its
// own saved mask), and locks are released in the reverse order they were taken (LockGuard).
#pragma once

#include <stdint.h>

#include "bedrock/platform.h"

namespace bedrock {

// Looks at a held lock between two platform::lock_wait() calls: 64 pause instructions (some
// hundreds to a few thousand cycles, as the CPU's pause is short or long), more than most of
// Bedrock's lock holds take.
inline constexpr unsigned kLockSpinsBeforeWait = 64;

class SpinLock {
public:
    constexpr SpinLock() = default;
    SpinLock(const SpinLock&) = delete;
    SpinLock& operator=(const SpinLock&) = delete;

    // Masks interrupts, takes the lock, and returns the interrupt mask to give to unlock().
    [[nodiscard]] platform::InterruptState lock() {
        const platform::InterruptState previous = platform::disable_interrupts();
        while (__atomic_exchange_n(&m_locked, uint8_t{1}, __ATOMIC_ACQUIRE) != 0) {
            // Spin on a plain load so the cache line stays shared until the holder releases;
            // the platform may give the CPU up every kLockSpinsBeforeWait looks.
            unsigned spins = 0;
            while (__atomic_load_n(&m_locked, __ATOMIC_RELAXED) != 0) {
                relax();
                if (++spins == kLockSpinsBeforeWait) {
                    platform::lock_wait();
                    spins = 0;
                }
            }
        }
        return previous;
    }
    // Takes the lock only if it is free now, masking interrupts: true with `previous` set (the
    // mask to give to unlock()), or false with interrupts as they were - for a caller that must
    // not wait (it may hold a lock the holder waits for).
    [[nodiscard]] bool try_lock(platform::InterruptState& previous) {
        const platform::InterruptState before = platform::disable_interrupts();
        if (__atomic_exchange_n(&m_locked, uint8_t{1}, __ATOMIC_ACQUIRE) == 0) {
            previous = before;
            return true;
        }
        platform::restore_interrupts(before);
        return false;
    }
    // Releases the lock, then restores the interrupt mask lock() returned.
    void unlock(platform::InterruptState previous) {
        __atomic_store_n(&m_locked, uint8_t{0}, __ATOMIC_RELEASE);
        platform::restore_interrupts(previous);
    }
    [[nodiscard]] bool is_locked() const { return __atomic_load_n(&m_locked, __ATOMIC_RELAXED); }

    // The CPU's spin-wait hint, where the compiler offers one as a builtin (for any spin loop).
    static void relax() {
#if __has_builtin(__builtin_ia32_pause)
        __builtin_ia32_pause();
#elif __has_builtin(__builtin_arm_yield)
        __builtin_arm_yield();
#endif
    }

private:
    uint8_t m_locked = 0;
};

// Holds a SpinLock (and so masks interrupts) for the lifetime of a scope.
class LockGuard {
public:
    explicit LockGuard(SpinLock& lock) : m_lock(lock), m_previous(m_lock.lock()) {}
    ~LockGuard() { m_lock.unlock(m_previous); }
    LockGuard(const LockGuard&) = delete;
    LockGuard& operator=(const LockGuard&) = delete;

private:
    SpinLock& m_lock;
    platform::InterruptState m_previous;
};

// Masks interrupts on the calling CPU for the lifetime of a scope: what keeps a caller on its CPU
// (platform::current_cpu() stays valid) and keeps that CPU's interrupt handlers out.
class InterruptsOff {
public:
    InterruptsOff() : m_previous(platform::disable_interrupts()) {}
    ~InterruptsOff() { platform::restore_interrupts(m_previous); }
    InterruptsOff(const InterruptsOff&) = delete;
    InterruptsOff& operator=(const InterruptsOff&) = delete;

private:
    platform::InterruptState m_previous;
};

} // namespace bedrock
