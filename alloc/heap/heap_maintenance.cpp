// SPDX-License-Identifier: MIT
// The heap's maintenance calls (bedrock/heap.h): a CPU's cache set up ahead or drained, idle
// memory given back (heap_trim(), the page frame allocator's reclaim hook, the tells of unused
// memory), the invariants checked (heap_check()), the check level and the error hook. Each takes
// the locks of the parts it visits in heap_state.h's order, one part at a time; a CPU's cache is
// drained by its own CPU with interrupts masked, or by another while that CPU runs no Bedrock
// code (offline or parked).
#include "bedrock/heap.h"
#include "bedrock/heap_checks.h"
#include "bedrock/platform.h"
#include "heap/heap_entry.h"
#include "heap/heap_state.h"
#include "heap/slow_paths.h"
#include "report/heap_error_reports.h"

namespace bedrock {
namespace heap {

void drain_calling_cpu(Heap& heap, CacheStorage storage, Caller caller) {
    const platform::InterruptState previous = platform::disable_interrupts();
    const unsigned cpu = platform::current_cpu();
    FlushFailures failures;
    if (cpu < platform::kMaxCpus) {
        heap.cpus.drain(cpu, heap.classes, heap.arenas, heap.secret, failures);
        if (storage == CacheStorage::GiveBack) {
            heap.cpus.release(cpu, heap.classes, heap.arenas);
        }
    }
    finish_small(heap, previous, nullptr, failures, caller);
}

bool reclaim_without_waiting(Heap& heap) {
    const uint64_t held = heap.held.pages();
    for (ClassCache& cache : heap.classes) {
        static_cast<void>(cache.trim_without_waiting(heap.arenas));
    }
    static_cast<void>(heap.arenas.give_idle_without_waiting());
    return heap.held.pages() < held;
}

bool pads_hold(Heap& heap, Caller caller) {
    bool held = true;
    if (!heap.pad.holds(heap.secret)) {
        heap.errors.raise(heap::metadata_damage_report(
            reinterpret_cast<uintptr_t>(&heap), 0,
            "the 16 bytes in front of the heap's state were overwritten (a write past the end of "
            "the memory before it)",
            caller.call_site()));
        heap.pad.write(heap.secret);
        held = false;
    }
    const heap::Arenas::Repaired repaired = heap.arenas.repair_pads();
    if (repaired.count != 0) {
        heap.errors.raise(heap::metadata_damage_report(
            repaired.first, repaired.count, heap::Arenas::kOverwrittenPad, caller.call_site()));
        held = false;
    }
    return held;
}

} // namespace heap

namespace {

using heap::CacheStorage;
using heap::Caller;
using heap::drain_calling_cpu;
using heap::FlushFailures;
using heap::report_flush;

// heap_check()'s report of a core invariant that does not hold (`what`: which), at its caller.
[[gnu::cold]] void report_failed_check(Heap& heap, const char* what, Caller caller) {
    heap.errors.raise(heap::metadata_damage_report(0, 0, what, caller.call_site()));
}

} // namespace

bool heap_prepare_cpu(Heap& heap) {
    const platform::InterruptState previous = platform::disable_interrupts();
    const unsigned cpu = platform::current_cpu();
    const bool prepared = cpu < platform::kMaxCpus && heap.cpus.make(cpu, heap.arenas) != nullptr;
    platform::restore_interrupts(previous);
    return prepared;
}

void heap_drain_cpu(Heap& heap, unsigned cpu) {
    if (cpu == platform::current_cpu()) {
        drain_calling_cpu(heap, CacheStorage::GiveBack, BEDROCK_HEAP_CALLER());
        return;
    }
    FlushFailures failures;
    heap.cpus.drain(cpu, heap.classes, heap.arenas, heap.secret, failures);
    heap.cpus.release(cpu, heap.classes, heap.arenas);
    if (failures.count != 0) {
        report_flush(heap, failures, BEDROCK_HEAP_CALLER());
    }
}

void heap_trim(Heap& heap) {
    drain_calling_cpu(heap, CacheStorage::GiveBack, BEDROCK_HEAP_CALLER());
    for (heap::ClassCache& cache : heap.classes) {
        cache.trim(heap.arenas);
    }
    heap.arenas.trim();
    heap.arenas.report_damage(heap.errors);
}

bool heap_set_unused_interval(Heap& heap, size_t bytes) {
    return heap.arenas.set_unused_interval(bytes);
}

bool heap_tell_unused(Heap& heap) {
    return heap.arenas.tell_unused();
}

// Every part is checked even after one fails: checked mode's check, last, names the block
// whose overflow damaged the core's metadata.
bool heap_check(Heap& heap) {
    if (heap.magic != Heap::kMagic) {
        return false;
    }
    const Caller caller = BEDROCK_HEAP_CALLER();
    bool intact = heap::pads_hold(heap, caller);
    for (heap::ClassCache& cache : heap.classes) {
        if (!cache.check(heap.secret)) {
            report_failed_check(heap, "a size class's slabs or counts are damaged", caller);
            intact = false;
            break;
        }
    }
    bool cache_intact = true;
    {
        InterruptsOff stay_on_cpu;
        cache_intact =
            heap.cpus.check(platform::current_cpu(), heap.classes, heap.secret, heap.arenas);
    }
    if (!cache_intact) {
        report_failed_check(heap, "the calling CPU's cache is damaged", caller);
        intact = false;
    }
    const char* failure = nullptr;
    if (!heap.arenas.check(&failure)) {
        report_failed_check(heap, failure, caller); // every failed check names its invariant
        intact = false;
    }
    if constexpr (kHeapChecksCompiled) {
        intact = heap.checked.check(heap) && intact;
    }
    return intact;
}

bool heap_set_check_level(Heap& heap, CheckLevel level) {
    if (level != CheckLevel::Off && level != CheckLevel::Report && level != CheckLevel::Abort) {
        return false; // no level at all (from C, any number converts to the enum)
    }
    if (!kHeapChecksCompiled && level != CheckLevel::Off) {
        return false;
    }
    heap.errors.set_level(level);
    return true;
}

CheckLevel heap_check_level(Heap& heap) {
    return heap.errors.level();
}

void heap_set_error_hook(Heap& heap, HeapErrorHook hook, void* context) {
    heap.errors.set_hook(hook, context);
}

} // namespace bedrock
