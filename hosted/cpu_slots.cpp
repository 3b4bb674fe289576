// SPDX-License-Identifier: MIT
// The CPU hooks of bedrock/platform.h for a host process (Bedrock::hosted, and the unit tests,
// fuzzing and benchmarks): each thread is a CPU. A thread takes the lowest free slot on its
// first current_cpu() and gives it back when it exits, so no two live threads share a slot; a
// thread that finds every slot taken, or that calls Bedrock after its slot was given back (a
// later thread-exit destructor freeing memory), gets kNoCpuSlot (Bedrock's shared, locked path).
// Invariant: g_slot_taken[i] <=> the CpuSlot of exactly one live thread holds index i.
// After fork() only the forking thread lives on: release_cpu_slots_after_fork() restores the
// invariant in the child.
// Host threads are never interrupted inside Bedrock (signal handlers must not allocate) and
// keep their slot for life, so the interrupt hooks have nothing to do.
#include <atomic>

#include "bedrock/hosted.h"
#include "bedrock/platform.h"

namespace bedrock::platform {
namespace {

std::atomic<bool> g_slot_taken[kMaxCpus];

class CpuSlot {
public:
    CpuSlot() {
        for (unsigned i = 0; i < kMaxCpus; ++i) {
            bool expected = false;
            if (g_slot_taken[i].compare_exchange_strong(expected, true)) {
                m_index = i;
                return;
            }
        }
    }
    ~CpuSlot() {
        if (m_index != kNoCpuSlot) {
            g_slot_taken[m_index].store(false);
            m_index = kNoCpuSlot;
        }
    }
    CpuSlot(const CpuSlot&) = delete;
    CpuSlot& operator=(const CpuSlot&) = delete;
    [[nodiscard]] unsigned index() const { return m_index; }

private:
    unsigned m_index = kNoCpuSlot;
};

thread_local CpuSlot g_cpu_slot;

} // namespace

unsigned current_cpu() {
    return g_cpu_slot.index();
}

InterruptState disable_interrupts() {
    return 0;
}

void restore_interrupts(InterruptState) {}

} // namespace bedrock::platform

namespace bedrock::hosted {

void release_cpu_slots_after_fork() {
    const unsigned mine = platform::current_cpu();
    for (unsigned i = 0; i < platform::kMaxCpus; ++i) {
        if (i != mine) {
            platform::g_slot_taken[i].store(false);
        }
    }
}

} // namespace bedrock::hosted
