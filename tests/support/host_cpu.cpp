// The CPU hooks of bedrock/platform.h for every host build (unit tests, fuzzing, benchmarks):
// each thread is a CPU. A thread takes the lowest free slot on its first current_cpu() and
// gives it back when it exits, so no two live threads share a slot; a thread that finds every
// slot taken gets kNoCpuSlot (Bedrock's shared, locked path).
// Invariant: g_slot_taken[i] <=> the CpuSlot of exactly one live thread holds index i.
// Host threads are never interrupted inside Bedrock and keep their slot for life, so the
// interrupt hooks have nothing to do.
#include <atomic>

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
