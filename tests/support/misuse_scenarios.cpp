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

[[gnu::noinline]] ExpectedReport overflow(MisuseContext& context) {
    unsigned char* block = hold(context, 0, context.heap, heap_allocate(context.heap, 24));
    volatile unsigned char* bytes = block;
    bytes[24] = 'x'; // 1 and 3 bytes past the end: the report says 3
    bytes[26] = 'y';
    context.blocks[0] = nullptr; // the free below frees it whatever it finds
    heap_free(context.heap, block);
    return ExpectedReport{ErrorKind::BufferOverflow,
                          address_of(block + 24),
                          address_of(block),
                          24,
                          3,
                          reinterpret_cast<const void*>(&overflow),
                          false};
}

[[gnu::noinline]] ExpectedReport underflow(MisuseContext& context) {
    unsigned char* block = hold(context, 0, context.heap, heap_allocate(context.heap, 40));
    volatile unsigned char* bytes = block;
    bytes[-2] = 0; // 2 bytes before the start
    context.blocks[0] = nullptr;
    heap_free(context.heap, block);
    return ExpectedReport{ErrorKind::BufferUnderflow,
                          address_of(block - 2),
                          address_of(block),
                          40,
                          2,
                          reinterpret_cast<const void*>(&underflow),
                          false};
}

[[gnu::noinline]] ExpectedReport write_after_free(MisuseContext& context) {
    unsigned char* block = hold(context, 0, context.heap, heap_allocate(context.heap, 64));
    release(context, 0);
    volatile unsigned char* bytes = block;
    bytes[40] = 1; // a dangling pointer's write, 40 bytes in
    heap_flush_quarantine(context.heap);
    return ExpectedReport{ErrorKind::UseAfterFree,
                          address_of(block + 40),
                          address_of(block),
                          64,
                          40,
                          reinterpret_cast<const void*>(&write_after_free),
                          true};
}

[[gnu::noinline]] ExpectedReport double_free(MisuseContext& context) {
    unsigned char* block = hold(context, 0, context.heap, heap_allocate(context.heap, 32));
    release(context, 0);
    heap_free(context.heap, block);
    return ExpectedReport{ErrorKind::DoubleFree,
                          address_of(block),
                          address_of(block),
                          reported_size(context, 32, 32),
                          0,
                          checked(context) ? reinterpret_cast<const void*>(&double_free) : nullptr,
                          checked(context)};
}

[[gnu::noinline]] ExpectedReport never_allocated(MisuseContext& context) {
    unsigned char* global = g_not_heap_memory + 64;
    heap_free(context.heap, global);
    return ExpectedReport{ErrorKind::NotAllocated, address_of(global), 0, 0, 0, nullptr, false};
}

[[gnu::noinline]] ExpectedReport interior_pointer(MisuseContext& context) {
    unsigned char* block = hold(context, 0, context.heap, heap_allocate(context.heap, 48));
    heap_free(context.heap, block + 16);
    return ExpectedReport{ErrorKind::InteriorPointer,
                          address_of(block + 16),
                          address_of(block),
                          reported_size(context, 48, 48),
                          16,
                          checked(context) ? reinterpret_cast<const void*>(&interior_pointer)
                                           : nullptr,
                          false};
}

[[gnu::noinline]] ExpectedReport misaligned_pointer(MisuseContext& context) {
    unsigned char* block = hold(context, 0, context.heap, heap_allocate(context.heap, 32));
    heap_free(context.heap, block + 3);
    return ExpectedReport{
        ErrorKind::MisalignedPointer, address_of(block + 3), 0, 0, 0, nullptr, false};
}

[[gnu::noinline]] ExpectedReport foreign_heap(MisuseContext& context) {
    unsigned char* block = hold(context, 0, context.other, heap_allocate(context.other, 32));
    heap_free(context.heap, block);
    return ExpectedReport{ErrorKind::ForeignHeap, address_of(block), 0, 0, 0, nullptr, false};
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
