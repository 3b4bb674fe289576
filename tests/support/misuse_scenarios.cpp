// SPDX-License-Identifier: MIT
// The misuse scenarios (see misuse_scenarios.h). Each function is noinline so that the call
// traces of its allocations and frees start inside it.
#include "support/misuse_scenarios.h"

namespace bedrock::test {
namespace {

// Memory no heap owns, 16-byte aligned: a global.
alignas(64) unsigned char g_not_heap_memory[256];

uintptr_t address_of(const void* pointer) {
    return reinterpret_cast<uintptr_t>(pointer);
}

unsigned char* hold(MisuseContext& context, unsigned slot, Heap& heap, void* block) {
    context.blocks[slot] = block;
    context.block_heap[slot] = &heap;
    return static_cast<unsigned char*>(block);
}

void release(MisuseContext& context, unsigned slot) {
    heap_free(*context.block_heap[slot], context.blocks[slot]);
    context.blocks[slot] = nullptr;
}

bool checked(const MisuseContext& context) {
    return context.level != CheckLevel::Off;
}

// The size a report gives for a block of `size` bytes: the size asked for in checked mode,
// the size-class block size otherwise.
uint64_t reported_size(const MisuseContext& context, uint64_t size, uint64_t class_size) {
    return checked(context) ? size : class_size;
}

[[gnu::noinline]] void overflow(MisuseContext& context, ExpectedReport& expected) {
    unsigned char* block = hold(context, 0, context.heap, heap_allocate(context.heap, 24));
    expected = ExpectedReport{ErrorKind::BufferOverflow,
                              address_of(block + 24),
                              address_of(block),
                              24,
                              3,
                              reinterpret_cast<const void*>(&overflow),
                              false};
    volatile unsigned char* bytes = block;
    bytes[24] = 'x'; // 1 and 3 bytes past the end: the report says 3
    bytes[26] = 'y';
    context.blocks[0] = nullptr; // the free below frees it whatever it finds
    heap_free(context.heap, block);
}

[[gnu::noinline]] void underflow(MisuseContext& context, ExpectedReport& expected) {
    unsigned char* block = hold(context, 0, context.heap, heap_allocate(context.heap, 40));
    expected = ExpectedReport{ErrorKind::BufferUnderflow,
                              address_of(block - 2),
                              address_of(block),
                              40,
                              2,
                              reinterpret_cast<const void*>(&underflow),
                              false};
    volatile unsigned char* bytes = block;
    bytes[-2] = 0; // 2 bytes before the start
    context.blocks[0] = nullptr;
    heap_free(context.heap, block);
}

[[gnu::noinline]] void write_after_free(MisuseContext& context, ExpectedReport& expected) {
    unsigned char* block = hold(context, 0, context.heap, heap_allocate(context.heap, 64));
    expected = ExpectedReport{ErrorKind::UseAfterFree,
                              address_of(block + 40),
                              address_of(block),
                              64,
                              40,
                              reinterpret_cast<const void*>(&write_after_free),
                              true};
    release(context, 0);
    volatile unsigned char* bytes = block;
    bytes[40] = 1; // a dangling pointer's write, 40 bytes in
    heap_flush_quarantine(context.heap);
}

[[gnu::noinline]] void double_free(MisuseContext& context, ExpectedReport& expected) {
    unsigned char* block = hold(context, 0, context.heap, heap_allocate(context.heap, 32));
    expected =
        ExpectedReport{ErrorKind::DoubleFree,
                       address_of(block),
                       address_of(block),
                       reported_size(context, 32, 32),
                       0,
                       checked(context) ? reinterpret_cast<const void*>(&double_free) : nullptr,
                       checked(context)};
    release(context, 0);
    heap_free(context.heap, block);
}

[[gnu::noinline]] void never_allocated(MisuseContext& context, ExpectedReport& expected) {
    unsigned char* global = g_not_heap_memory + 64;
    expected = ExpectedReport{ErrorKind::NotAllocated, address_of(global), 0, 0, 0, nullptr, false};
    heap_free(context.heap, global);
}

[[gnu::noinline]] void interior_pointer(MisuseContext& context, ExpectedReport& expected) {
    unsigned char* block = hold(context, 0, context.heap, heap_allocate(context.heap, 48));
    expected = ExpectedReport{ErrorKind::InteriorPointer,
                              address_of(block + 16),
                              address_of(block),
                              reported_size(context, 48, 48),
                              16,
                              checked(context) ? reinterpret_cast<const void*>(&interior_pointer)
                                               : nullptr,
                              false};
    heap_free(context.heap, block + 16);
}

[[gnu::noinline]] void misaligned_pointer(MisuseContext& context, ExpectedReport& expected) {
    unsigned char* block = hold(context, 0, context.heap, heap_allocate(context.heap, 32));
    expected = ExpectedReport{
        ErrorKind::MisalignedPointer, address_of(block + 3), 0, 0, 0, nullptr, false};
    heap_free(context.heap, block + 3);
}

[[gnu::noinline]] void foreign_heap(MisuseContext& context, ExpectedReport& expected) {
    unsigned char* block = hold(context, 0, context.other, heap_allocate(context.other, 32));
    expected = ExpectedReport{ErrorKind::ForeignHeap, address_of(block), 0, 0, 0, nullptr, false};
    heap_free(context.heap, block);
}

} // namespace

const MisuseScenario kMisuseScenarios[] = {
    {"overflow", false, overflow},
    {"underflow", false, underflow},
    {"write_after_free", false, write_after_free},
    {"double_free", true, double_free},
    {"never_allocated", true, never_allocated},
    {"interior_pointer", true, interior_pointer},
    {"misaligned_pointer", true, misaligned_pointer},
    {"foreign_heap", true, foreign_heap},
};
const size_t kMisuseScenarioCount = sizeof(kMisuseScenarios) / sizeof(kMisuseScenarios[0]);

bool frame_is_in(const void* frame, const void* function) {
    const uintptr_t start = address_of(function);
    return address_of(frame) > start && address_of(frame) - start < kMaxFunctionBytes;
}

const char* report_mismatch(const ErrorReport& report, const ExpectedReport& expected) {
    if (report.kind != expected.kind) {
        return "kind";
    }
    if (report.address != expected.address) {
        return "address";
    }
    if (report.block != expected.block) {
        return "block";
    }
    if (expected.block != 0 && report.size != expected.size) {
        return "size";
    }
    if (report.offset != expected.offset) {
        return "offset";
    }
    if (expected.allocated_in != nullptr
            ? !frame_is_in(report.allocated.frames[0], expected.allocated_in)
            : !report.allocated.empty()) {
        return "allocation call trace";
    }
    if (expected.freed_trace == report.freed.empty()) {
        return "free call trace";
    }
    if (report.call_site == nullptr) {
        return "call site";
    }
    return nullptr;
}

void free_leftovers(MisuseContext& context) {
    for (unsigned slot = 0; slot < 2; ++slot) {
        if (context.blocks[slot] != nullptr) {
            release(context, slot);
        }
    }
}

} // namespace bedrock::test
