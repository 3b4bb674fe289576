// SpinLock: the lock that guards each allocator, built once on compiler atomics.
//
// Invariant: m_locked is 1 exactly while one CPU is between lock() and unlock().
// It does not touch interrupts: a kernel that calls an allocator from interrupt handlers must
// disable interrupts around every call on that CPU (see README, "Interrupts and locking"),
// otherwise a handler that interrupts a lock holder spins forever.
#pragma once

#include <stdint.h>

namespace bedrock {

class SpinLock {
public:
    constexpr SpinLock() = default;
    SpinLock(const SpinLock&) = delete;
    SpinLock& operator=(const SpinLock&) = delete;

    void lock() {
        while (__atomic_exchange_n(&m_locked, uint8_t{1}, __ATOMIC_ACQUIRE) != 0) {
            // Spin on a plain load so the cache line stays shared until the holder releases.
            while (__atomic_load_n(&m_locked, __ATOMIC_RELAXED) != 0) {
                relax();
            }
        }
    }
    void unlock() { __atomic_store_n(&m_locked, uint8_t{0}, __ATOMIC_RELEASE); }
    [[nodiscard]] bool is_locked() const { return __atomic_load_n(&m_locked, __ATOMIC_RELAXED); }

private:
    // The CPU's spin-wait hint, where the compiler offers one as a builtin.
    static void relax() {
#if __has_builtin(__builtin_ia32_pause)
        __builtin_ia32_pause();
#elif __has_builtin(__builtin_arm_yield)
        __builtin_arm_yield();
#endif
    }
    uint8_t m_locked = 0;
};

// Holds a SpinLock for the lifetime of a scope.
class LockGuard {
public:
    explicit LockGuard(SpinLock& lock) : m_lock(lock) { m_lock.lock(); }
    ~LockGuard() { m_lock.unlock(); }
    LockGuard(const LockGuard&) = delete;
    LockGuard& operator=(const LockGuard&) = delete;

private:
    SpinLock& m_lock;
};

} // namespace bedrock
