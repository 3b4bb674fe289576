// SPDX-License-Identifier: MIT
// Bedrock::hosted on the host's page size, whatever it is (the page_size.* tests run it under
// page_size_shim.c, which pretends 16 KiB or 64 KiB pages; it passes on 4 KiB pages too):
//   page_size aligned   bedrock_valloc() and bedrock_pvalloc() blocks are aligned to
//                       sysconf(_SC_PAGESIZE), pvalloc's rounded up to whole host pages
//   page_size guarded   a full pool of guarded blocks: each block's bytes are usable, the first
//                       byte past it and the last byte before its slot fault (guard pages) and
//                       are explained, a freed one faults while its neighbours stay usable, and
//                       a write at the start of a block's slot page (its front red zone) is
//                       reported when the block is freed
// Prints "ok"; exits 1 after a "FAIL: ..." line on the first failed expectation.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "bedrock/heap.h"
#include "bedrock/heap_checks.h"
#include "bedrock/hosted.h"
#include "bedrock/malloc.h"
#include "support/guard_page_probe.h"

namespace {

using bedrock::ErrorKind;

void expect(bool condition, const char* what) {
    if (!condition) {
        std::printf("FAIL: %s\n", what);
        std::exit(1);
    }
}

uintptr_t host_page() {
    return static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
}

int aligned() {
    const uintptr_t page = host_page();
    void* block = bedrock_valloc(10);
    expect(block != nullptr && reinterpret_cast<uintptr_t>(block) % page == 0,
           "valloc: aligned to the host page");
    bedrock_free(block);
    block = bedrock_pvalloc(page + 1);
    expect(block != nullptr && reinterpret_cast<uintptr_t>(block) % page == 0,
           "pvalloc: aligned to the host page");
    expect(bedrock_malloc_usable_size(block) >= 2 * page, "pvalloc: whole host pages");
    std::memset(block, 1, 2 * page);
    bedrock_free(block);
    return 0;
}

// The reports the heap raised, in order (the error hook records them).
ErrorKind g_reports[16];
unsigned g_report_count = 0;

void record(void*, const bedrock::ErrorReport& report) {
    if (g_report_count < sizeof(g_reports) / sizeof(g_reports[0])) {
        g_reports[g_report_count] = report.kind;
    }
    ++g_report_count;
}

// Whether writing `address` faulted (and whether Bedrock explained it: g_explained).
bool g_explained = false;

bool write_faults(volatile unsigned char* address) {
    const bedrock::test::ProbeResult result =
        bedrock::test::probe(address, bedrock::MemoryAccess::Write);
    g_explained = result.explained;
    return result.faulted;
}

// The last report's kind, if exactly `count` were raised.
bool reported(unsigned count, ErrorKind kind) {
    return g_report_count == count && g_reports[count - 1] == kind;
}

int guarded(bedrock::Heap& heap) {
    constexpr unsigned kBlocks = 7; // one chunk of the pool: its slots are neighbours
    constexpr size_t kSize = 100;
    const uintptr_t page = host_page();
    expect(bedrock::heap_set_check_level(heap, bedrock::CheckLevel::Report), "checked mode");
    bedrock::heap_set_error_hook(heap, record, nullptr);
    expect(bedrock::heap_enable_guard_pages(heap, bedrock::GuardPageOptions{kBlocks, 0}),
           "guard pages enabled");
    unsigned char* blocks[kBlocks];
    for (unsigned char*& block : blocks) {
        block = static_cast<unsigned char*>(bedrock::heap_allocate_guarded(heap, kSize));
        expect(block != nullptr, "a guarded block");
        expect((reinterpret_cast<uintptr_t>(block) + kSize + 15) % page < 16,
               "the block ends within 16 bytes of a host page's end");
    }
    for (unsigned char* block : blocks) {
        for (size_t i = 0; i < kSize; ++i) {
            expect(!write_faults(block + i), "a guarded block's bytes are writable");
        }
    }
    unsigned expected_reports = 0;
    for (unsigned char* block : blocks) {
        const uintptr_t slot = reinterpret_cast<uintptr_t>(block) & ~(page - 1);
        expect(write_faults(reinterpret_cast<unsigned char*>(slot + page)),
               "the first byte past the slot page faults (a guard page)");
        expect(g_explained && reported(++expected_reports, ErrorKind::BufferOverflow),
               "the overflow is explained");
        expect(write_faults(reinterpret_cast<unsigned char*>(slot - 1)),
               "the last byte before the slot page faults (a guard page)");
        expect(g_explained && reported(++expected_reports, ErrorKind::BufferUnderflow),
               "the underflow is explained");
    }
    // Freed: its slot page is inaccessible, and its neighbours' stay usable.
    bedrock::heap_free(heap, blocks[3]);
    expect(write_faults(blocks[3]), "a freed guarded block faults");
    expect(g_explained && reported(++expected_reports, ErrorKind::UseAfterFree),
           "the use after free is explained");
    expect(!write_faults(blocks[2] + kSize - 1) && !write_faults(blocks[4]),
           "the freed block's neighbours stay writable");
    // The whole slot page before the block is its front red zone, verified when it is freed.
    blocks[5][-static_cast<ptrdiff_t>(reinterpret_cast<uintptr_t>(blocks[5]) % page)] = 0;
    bedrock::heap_free(heap, blocks[5]);
    expect(reported(++expected_reports, ErrorKind::BufferUnderflow),
           "a write at the start of the slot page is found on free");
    for (unsigned i = 0; i < kBlocks; ++i) {
        if (i != 3 && i != 5) {
            bedrock::heap_free(heap, blocks[i]);
        }
    }
    expect(g_report_count == expected_reports, "no other report");
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    bedrock::Heap* heap = bedrock::hosted::start(uint64_t{1} << 30);
    expect(heap != nullptr, "hosted::start()");
    int status = 2;
    if (argc == 2 && std::strcmp(argv[1], "aligned") == 0) {
        status = aligned();
    } else if (argc == 2 && std::strcmp(argv[1], "guarded") == 0) {
        status = guarded(*heap);
    }
    if (status == 0) {
        std::printf("ok\n");
    }
    return status;
}
