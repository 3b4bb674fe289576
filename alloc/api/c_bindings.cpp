// SPDX-License-Identifier: MIT
// The C interface of bedrock/bedrock.h over the C++ API: page frame allocators, heaps, checked
// mode, statistics and error reports. Routing only: no state, no lock. C handles are the C++
// objects themselves (a bedrock_heap* is a bedrock::Heap*; a bedrock_page_frame_allocator is
// storage that holds a PageFrameAllocator), and C structs are filled field by field, so the two
// layouts may differ. The heap's allocation entry points pass their caller (heap_entry.h), so
// checked mode's call traces start at the C program's call.
#include "api/c_report.h"
#include "bedrock/bedrock.h"
#include "bedrock/error_report.h"
#include "bedrock/heap.h"
#include "bedrock/heap_checks.h"
#include "bedrock/page_frame_allocator.h"
#include "heap/heap_entry.h"

namespace {

struct InPlace {};

} // namespace

// Placement in the caller's storage, under a tag of this file's own: freestanding builds have
// no <new> to declare the standard form.
void* operator new(size_t size, void* storage, InPlace) noexcept;
void* operator new(size_t, void* storage, InPlace) noexcept {
    return storage;
}

namespace {

using bedrock::ErrorKind;
using bedrock::ErrorReport;
using bedrock::Heap;
using bedrock::PageFrameAllocator;
using bedrock::PhysRange;

// A bedrock_page_frame_allocator's storage: the allocator from its first byte, and in its last
// eight bytes a mark that says the allocator was constructed there (zeroed storage has none).
constexpr size_t kConstructedMarkOffset = BEDROCK_PAGE_FRAME_ALLOCATOR_BYTES - sizeof(uint64_t);
constexpr uint64_t kConstructedMark = 0x6265647270666131; // "bedrpfa1"
static_assert(sizeof(PageFrameAllocator) <= kConstructedMarkOffset,
              "bedrock.h: BEDROCK_PAGE_FRAME_ALLOCATOR_BYTES must hold a PageFrameAllocator");
static_assert(alignof(PageFrameAllocator) <= alignof(bedrock_page_frame_allocator));
static_assert(BEDROCK_PAGE_SIZE == bedrock::kPageSize);
static_assert(BEDROCK_MAX_ORDER == bedrock::kMaxOrder);
static_assert(BEDROCK_NO_PAGE == bedrock::kNoPage && BEDROCK_NO_LIMIT == bedrock::kNoLimit);
static_assert(BEDROCK_ZONE_DMA_LIMIT == bedrock::kZoneDmaLimit);
static_assert(BEDROCK_ZONE_DMA32_LIMIT == bedrock::kZoneDma32Limit);
static_assert(BEDROCK_HEAP_MIN_ALIGNMENT == bedrock::kHeapMinAlignment);
static_assert(BEDROCK_HEAP_SIZE_CLASS_COUNT == bedrock::kHeapSizeClassCount);
static_assert(static_cast<int>(BEDROCK_CHECK_ABORT) ==
              static_cast<int>(bedrock::CheckLevel::Abort));
static_assert(static_cast<int>(BEDROCK_ACCESS_EXECUTE) ==
              static_cast<int>(bedrock::MemoryAccess::Execute));
// A bedrock_phys_range array is handed to init() as it is.
static_assert(sizeof(bedrock_phys_range) == sizeof(PhysRange));
static_assert(offsetof(bedrock_phys_range, base) == offsetof(PhysRange, base));
static_assert(offsetof(bedrock_phys_range, size) == offsetof(PhysRange, size));

// The C handles: a PageFrameAllocator in its storage from bedrock_pages_init() on.
PageFrameAllocator& frames_of(bedrock_page_frame_allocator* frames) {
    return *reinterpret_cast<PageFrameAllocator*>(frames->opaque.bytes);
}
const PageFrameAllocator& frames_of(const bedrock_page_frame_allocator* frames) {
    return *reinterpret_cast<const PageFrameAllocator*>(frames->opaque.bytes);
}
Heap& heap_of(bedrock_heap* heap) {
    return *reinterpret_cast<Heap*>(heap);
}
bedrock_heap* handle_of(Heap* heap) {
    return reinterpret_cast<bedrock_heap*>(heap);
}

// The C++ error hook that forwards to a bedrock_error_hook (its context).
void forward_to_c_hook(void* context, const ErrorReport& report) {
    const auto* hook = static_cast<const bedrock_error_hook*>(context);
    const bedrock_error_report converted = bedrock::c_interface::to_c(report);
    hook->report(hook->context, &converted);
}

bedrock_leak_summary leaks_to_c(const bedrock::LeakSummary& summary) {
    static_assert(bedrock::kLeakSitesListed == 32, "bedrock.h's bedrock_leak_summary says 32");
    return bedrock_leak_summary{summary.blocks, summary.bytes, summary.sites};
}

// A null handle given to C function `function`: reported null-handle (component, detail: the
// function, call site: the C program's call) through platform::report_error - there is no heap
// to route it to. Out of line: only misuse comes here.
[[gnu::noinline, gnu::cold]] void report_null_handle(const char* component, const char* function,
                                                     const void* return_address) {
    ErrorReport report{};
    report.kind = ErrorKind::NullHandle;
    report.component = component;
    report.call_site = bedrock::call_site_of(return_address);
    report.detail = function;
    bedrock::platform::report_error(report);
}

// Whether a C call's `handle` is null (then reported): the caller returns at once with its
// failure value, changing nothing. Inline in each C function, so the return address is the C
// program's call.
[[gnu::always_inline]] inline bool is_null(const void* handle, const char* component,
                                           const char* function) {
    if (handle != nullptr) [[likely]] {
        return false;
    }
    report_null_handle(component, function, __builtin_return_address(0));
    return true;
}

} // namespace

extern "C" {

bool bedrock_pages_init(bedrock_page_frame_allocator* frames, const bedrock_phys_range* usable,
                        size_t count) {
    if (is_null(frames, "pfa", __func__)) [[unlikely]] {
        return false;
    }
    unsigned char* mark = frames->opaque.bytes + kConstructedMarkOffset;
    uint64_t found = 0;
    bedrock_memcpy(&found, mark, sizeof(found));
    if (found != kConstructedMark) {
        new (frames->opaque.bytes, InPlace{}) PageFrameAllocator();
        bedrock_memcpy(mark, &kConstructedMark, sizeof(kConstructedMark));
    }
    return frames_of(frames).init(reinterpret_cast<const PhysRange*>(usable), count);
}

bedrock_phys_addr bedrock_pages_allocate(bedrock_page_frame_allocator* frames, unsigned order) {
    if (is_null(frames, "pfa", __func__)) [[unlikely]] {
        return BEDROCK_NO_PAGE;
    }
    return frames_of(frames).allocate(order);
}

bedrock_phys_addr bedrock_pages_allocate_below(bedrock_page_frame_allocator* frames, unsigned order,
                                               bedrock_phys_addr limit) {
    if (is_null(frames, "pfa", __func__)) [[unlikely]] {
        return BEDROCK_NO_PAGE;
    }
    return frames_of(frames).allocate_below(order, limit);
}

bedrock_phys_addr bedrock_pages_allocate_run(bedrock_page_frame_allocator* frames, size_t count,
                                             uint64_t alignment, bedrock_phys_addr limit) {
    if (is_null(frames, "pfa", __func__)) [[unlikely]] {
        return BEDROCK_NO_PAGE;
    }
    return frames_of(frames).allocate_pages(count, alignment, limit);
}

void bedrock_pages_free(bedrock_page_frame_allocator* frames, bedrock_phys_addr address,
                        unsigned order) {
    if (is_null(frames, "pfa", __func__)) [[unlikely]] {
        return;
    }
    frames_of(frames).free(address, order);
}

void bedrock_pages_free_run(bedrock_page_frame_allocator* frames, bedrock_phys_addr address,
                            size_t count) {
    if (is_null(frames, "pfa", __func__)) [[unlikely]] {
        return;
    }
    frames_of(frames).free_pages(address, count);
}

bool bedrock_pages_extend_run(bedrock_page_frame_allocator* frames, bedrock_phys_addr address,
                              size_t count, size_t new_count) {
    if (is_null(frames, "pfa", __func__)) [[unlikely]] {
        return false;
    }
    return frames_of(frames).extend_pages(address, count, new_count);
}

bool bedrock_pages_shrink_run(bedrock_page_frame_allocator* frames, bedrock_phys_addr address,
                              size_t count, size_t new_count) {
    if (is_null(frames, "pfa", __func__)) [[unlikely]] {
        return false;
    }
    return frames_of(frames).shrink_pages(address, count, new_count);
}

bool bedrock_pages_reserve(bedrock_page_frame_allocator* frames, bedrock_phys_range range) {
    if (is_null(frames, "pfa", __func__)) [[unlikely]] {
        return false;
    }
    return frames_of(frames).reserve_range(PhysRange{range.base, range.size});
}

void bedrock_pages_tell_unused(bedrock_page_frame_allocator* frames) {
    if (is_null(frames, "pfa", __func__)) [[unlikely]] {
        return;
    }
    frames_of(frames).tell_unused_pages();
}

uint64_t bedrock_pages_managed(const bedrock_page_frame_allocator* frames) {
    if (is_null(frames, "pfa", __func__)) [[unlikely]] {
        return 0;
    }
    return frames_of(frames).managed_pages();
}

uint64_t bedrock_pages_free_count(const bedrock_page_frame_allocator* frames) {
    if (is_null(frames, "pfa", __func__)) [[unlikely]] {
        return 0;
    }
    return frames_of(frames).free_pages();
}

uint64_t bedrock_pages_metadata_bytes(const bedrock_page_frame_allocator* frames) {
    if (is_null(frames, "pfa", __func__)) [[unlikely]] {
        return 0;
    }
    return frames_of(frames).metadata_bytes();
}

bool bedrock_pages_check(const bedrock_page_frame_allocator* frames, const char** failure) {
    if (is_null(frames, "pfa", __func__)) [[unlikely]] {
        if (failure != nullptr) {
            *failure = "null handle";
        }
        return false;
    }
    const bedrock::PageFrameCheck result = frames_of(frames).check();
    if (failure != nullptr) {
        *failure = result.failure;
    }
    return result.ok;
}

const char* bedrock_error_kind_name(bedrock_error_kind kind) {
    return bedrock::to_string(static_cast<ErrorKind>(kind));
}

void bedrock_write_error_report(const bedrock_error_report* report, bedrock_line_writer write,
                                void* context) {
    bedrock::write_error_report(bedrock::c_interface::from_c(*report), write, context);
}

bedrock_heap* bedrock_heap_create(bedrock_page_frame_allocator* frames) {
    if (is_null(frames, "pfa", __func__)) [[unlikely]] {
        return nullptr;
    }
    return handle_of(bedrock::heap_create(frames_of(frames)));
}

bedrock_heap* bedrock_heap_create_in_region(void* region, size_t bytes) {
    return handle_of(bedrock::heap_create_in_region(region, bytes));
}

bool bedrock_heap_destroy(bedrock_heap* heap) {
    if (is_null(heap, "heap", __func__)) [[unlikely]] {
        return false;
    }
    return bedrock::heap_destroy(heap_of(heap));
}

void* bedrock_heap_allocate(bedrock_heap* heap, size_t size, size_t alignment) {
    if (is_null(heap, "heap", __func__)) [[unlikely]] {
        return nullptr;
    }
    return bedrock::heap::allocate(heap_of(heap), size, alignment, BEDROCK_HEAP_CALLER());
}

void bedrock_heap_free(bedrock_heap* heap, void* block) {
    if (is_null(heap, "heap", __func__)) [[unlikely]] {
        return;
    }
    bedrock::heap::free(heap_of(heap), block, BEDROCK_HEAP_CALLER());
}

void* bedrock_heap_reallocate(bedrock_heap* heap, void* block, size_t size) {
    if (is_null(heap, "heap", __func__)) [[unlikely]] {
        return nullptr;
    }
    return bedrock::heap::reallocate(heap_of(heap), block, size, BEDROCK_HEAP_CALLER());
}

size_t bedrock_heap_usable_size(bedrock_heap* heap, const void* block) {
    if (is_null(heap, "heap", __func__)) [[unlikely]] {
        return 0;
    }
    return bedrock::heap::usable_size(heap_of(heap), block, BEDROCK_HEAP_CALLER());
}

void bedrock_heap_trim(bedrock_heap* heap) {
    if (is_null(heap, "heap", __func__)) [[unlikely]] {
        return;
    }
    bedrock::heap_trim(heap_of(heap));
}

bool bedrock_heap_tell_unused(bedrock_heap* heap) {
    if (is_null(heap, "heap", __func__)) [[unlikely]] {
        return false;
    }
    return bedrock::heap_tell_unused(heap_of(heap));
}

bool bedrock_heap_set_unused_interval(bedrock_heap* heap, size_t bytes) {
    if (is_null(heap, "heap", __func__)) [[unlikely]] {
        return false;
    }
    return bedrock::heap_set_unused_interval(heap_of(heap), bytes);
}

bool bedrock_heap_check(bedrock_heap* heap) {
    if (is_null(heap, "heap", __func__)) [[unlikely]] {
        return false;
    }
    return bedrock::heap_check(heap_of(heap));
}

void bedrock_set_default_heap(bedrock_heap* heap) {
    bedrock::set_default_heap(heap != nullptr ? &heap_of(heap) : nullptr);
}

bedrock_heap* bedrock_default_heap(void) {
    return handle_of(bedrock::default_heap());
}

void bedrock_heap_statistics_of(bedrock_heap* heap, bedrock_heap_statistics* out) {
    if (is_null(heap, "heap", __func__)) [[unlikely]] {
        if (out != nullptr) {
            *out = bedrock_heap_statistics{};
        }
        return;
    }
    if (out == nullptr) {
        return;
    }
    const bedrock::HeapStatistics statistics = bedrock::heap_statistics(heap_of(heap));
    out->bytes_requested = statistics.bytes_requested;
    out->bytes_in_use = statistics.bytes_in_use;
    out->blocks_in_use = statistics.blocks_in_use;
    out->quarantined_blocks = statistics.quarantined_blocks;
    out->quarantined_bytes = statistics.quarantined_bytes;
    out->pages_held = statistics.pages_held;
    out->peak_pages_held = statistics.peak_pages_held;
    out->medium_blocks = statistics.medium_blocks;
    out->medium_bytes = statistics.medium_bytes;
    out->medium_allocations = statistics.medium_allocations;
    out->large_blocks = statistics.large_blocks;
    out->large_pages = statistics.large_pages;
    out->large_allocations = statistics.large_allocations;
    out->reclaims = statistics.reclaims;
    for (unsigned i = 0; i < bedrock::kHeapSizeClassCount; ++i) {
        const bedrock::SizeClassStatistics& from = statistics.classes[i];
        out->classes[i] = bedrock_size_class_statistics{
            from.block_size,         from.blocks_per_slab, from.slabs,          from.blocks_in_use,
            from.peak_blocks_in_use, from.allocations,     from.bytes_requested};
    }
}

void bedrock_heap_report(bedrock_heap* heap, bedrock_line_writer write, void* context) {
    if (is_null(heap, "heap", __func__)) [[unlikely]] {
        return;
    }
    bedrock::heap_report(heap_of(heap), write, context);
}

bool bedrock_heap_set_check_level(bedrock_heap* heap, bedrock_check_level level) {
    if (is_null(heap, "heap", __func__)) [[unlikely]] {
        return false;
    }
    // The caller's integer, read as such: C passes any int value of the enum (256 would wrap to
    // Off in CheckLevel's byte), which C++ may not load as the enum (its values end at 3).
    unsigned value = 0;
    static_assert(sizeof value == sizeof level);
    bedrock_memcpy(&value, &level, sizeof value);
    if (value > BEDROCK_CHECK_ABORT) {
        return false;
    }
    return bedrock::heap_set_check_level(heap_of(heap), static_cast<bedrock::CheckLevel>(value));
}

bedrock_check_level bedrock_heap_check_level(bedrock_heap* heap) {
    if (is_null(heap, "heap", __func__)) [[unlikely]] {
        return BEDROCK_CHECK_OFF;
    }
    return static_cast<bedrock_check_level>(bedrock::heap_check_level(heap_of(heap)));
}

void bedrock_heap_set_error_hook(bedrock_heap* heap, const bedrock_error_hook* hook) {
    if (is_null(heap, "heap", __func__)) [[unlikely]] {
        return;
    }
    if (hook == nullptr || hook->report == nullptr) {
        bedrock::heap_set_error_hook(heap_of(heap), nullptr, nullptr);
        return;
    }
    bedrock::heap_set_error_hook(heap_of(heap), forward_to_c_hook,
                                 const_cast<bedrock_error_hook*>(hook));
}

void bedrock_heap_set_quarantine_limit(bedrock_heap* heap, size_t bytes) {
    if (is_null(heap, "heap", __func__)) [[unlikely]] {
        return;
    }
    bedrock::heap_set_quarantine_limit(heap_of(heap), bytes);
}

void bedrock_heap_flush_quarantine(bedrock_heap* heap) {
    if (is_null(heap, "heap", __func__)) [[unlikely]] {
        return;
    }
    bedrock::heap_flush_quarantine(heap_of(heap));
}

uint64_t bedrock_heap_checkpoint(bedrock_heap* heap) {
    if (is_null(heap, "heap", __func__)) [[unlikely]] {
        return 0;
    }
    return bedrock::heap_checkpoint(heap_of(heap));
}

bedrock_leak_summary bedrock_heap_leaks_since(bedrock_heap* heap, uint64_t checkpoint) {
    if (is_null(heap, "heap", __func__)) [[unlikely]] {
        return bedrock_leak_summary{};
    }
    return leaks_to_c(bedrock::heap_leaks_since(heap_of(heap), checkpoint));
}

bedrock_leak_summary bedrock_heap_report_leaks(bedrock_heap* heap, bedrock_line_writer write,
                                               void* context, uint64_t checkpoint) {
    if (is_null(heap, "heap", __func__)) [[unlikely]] {
        return bedrock_leak_summary{};
    }
    return leaks_to_c(bedrock::heap_report_leaks(heap_of(heap), write, context, checkpoint));
}

bool bedrock_heap_enable_guard_pages(bedrock_heap* heap, uint32_t slots, uint32_t sample_interval) {
    if (is_null(heap, "heap", __func__)) [[unlikely]] {
        return false;
    }
    return bedrock::heap_enable_guard_pages(heap_of(heap),
                                            bedrock::GuardPageOptions{slots, sample_interval});
}

void* bedrock_heap_allocate_guarded(bedrock_heap* heap, size_t size, size_t alignment) {
    if (is_null(heap, "heap", __func__)) [[unlikely]] {
        return nullptr;
    }
    return bedrock::heap_allocate_guarded(heap_of(heap), size, alignment);
}

bool bedrock_heap_explain_fault(uintptr_t address, bedrock_memory_access access, const void* pc) {
    return bedrock::heap_explain_fault(address, static_cast<bedrock::MemoryAccess>(access), pc);
}

} // extern "C"
