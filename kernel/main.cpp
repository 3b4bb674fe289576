// SPDX-License-Identifier: MIT
// kernel_main: the portable part of the test kernel's boot, after the arch has turned the
// firmware's description into BootInfo. Order matters:
//   1. static constructors, banner;
//   2. cut RAM off where the identity map cannot reach and out of device memory; reserve the kernel
//   image (which must lie
//      in listed RAM and share no page with a range the firmware or boot loader reserved, no-map
//      or not) and physical page 0;
//   3. usable ranges (first pass) -> page-table pages for the final map -> arch::map_memory();
//   4. reserve the page-table pages, usable ranges (final) -> print the memory map;
//   5. allocators, secondary CPUs (stacks from the page frame allocator), the boot benchmark's
//      `bench:` lines, the GDB sample (if the command line asks for it), tests, exit with the
//      tests' verdict.
#include "bedrock/memory_routines.h"
#include "bedrock/page_frame_allocator.h"
#include "bedrock/phys_range.h"
#include "kernel/allocators.h"
#include "kernel/arch.h"
#include "kernel/boot_bench.h"
#include "kernel/boot_page_source.h"
#include "kernel/boot_protocol_support.h"
#include "kernel/console.h"
#include "kernel/cxx_runtime.h"
#include "kernel/gdb_sample.h"
#include "kernel/memory_map.h"
#include "kernel/smp.h"
#include "kernel/test_registry.h"

extern "C" {
extern char __kernel_start[];
extern char __data_start[];
extern char __kernel_end[];
}

namespace bedrock::kernel {
namespace {

using UsableList = RangeList<2 * kMaxFirmwareRanges + 8>;

constexpr uint64_t kMiB = uint64_t{1} << 20;

void add_reserved(BootInfo& boot, uint64_t base, uint64_t size, const char* what) {
    if (!boot.reserved.add(base, size)) {
        panic("memory map: too many reserved ranges (capacity %zu) adding %s",
              boot.reserved.capacity(), what);
    }
}

void print_ranges(const char* title, const PhysRange* ranges, size_t count) {
    print("%s (%zu ranges):\n", title, count);
    for (size_t i = 0; i < count; ++i) {
        print("  [0x%016lx - 0x%016lx] %10lu KiB\n", ranges[i].base, ranges[i].last(),
              ranges[i].size >> 10);
    }
}

// Whether `range` and [start, end) share a page.
bool shares_pages(const PhysRange& range, uintptr_t start, uintptr_t end) {
    return range.size != 0 && range.base >> kPageShift <= (end - 1) >> kPageShift &&
           range.last() >> kPageShift >= start >> kPageShift;
}

// The image must lie in RAM the firmware lists, whatever loaded it (GRUB loads a multiboot2
// image at its link address even where its own map, cut by `cutmem`, lists none): pages of it
// outside RAM are left out of the final map, and the kernel faults on them once it runs on it.
// The RAM list's ranges are separate (boot_info.h), so one of them holds the whole image.
// O(ranges).
void check_image_in_ram(const BootInfo& boot, uintptr_t image_start, uintptr_t image_end) {
    uintptr_t covered = image_start; // the image is in RAM below this
    for (const PhysRange& range : boot.ram) {
        if (range.base <= image_start && image_start <= range.last()) {
            covered = range.last() >= image_end - 1 ? image_end : range.last() + 1;
        }
    }
    if (covered < image_end) {
        panic("memory map: the kernel image [0x%lx - 0x%lx] is not all in the RAM the firmware "
              "lists (0x%lx is not); cannot boot",
              image_start, image_end - 1, covered);
    }
}

// RAM the identity map cannot reach (arch::physical_address_limit()) is cut off, named: mapping
// it failed, or the kernel faulted on its first use (a device tree's RAM at 2^64 - 256 MiB was
// accepted and the boot died in memset).
void clip_unreachable_ram(BootInfo& boot) {
    const uint64_t limit = arch::physical_address_limit();
    for (const PhysRange& range : boot.ram) {
        if (range.last() >= limit) {
            print("memory map: RAM [0x%lx - 0x%lx] reaches past 0x%lx, the last address the "
                  "identity map can reach; %s\n",
                  range.base, range.last(), limit - 1,
                  range.base >= limit ? "left out" : "cut off there");
        }
    }
    boot.ram.set_count(clip_ranges(boot.ram.data(), boot.ram.count(), limit));
    if (boot.ram.count() == 0) {
        panic("memory map: the firmware reported no RAM the kernel can reach; cannot boot");
    }
}

// RAM the firmware lists over device memory the arch maps (arch::device_ranges()) is cut out,
// named: mapping it twice panicked, and a device tree's RAM over virt's device window hung the
// boot (the kernel took the devices' registers for free pages).
void cut_device_memory_out_of_ram(BootInfo& boot) {
    const arch::DeviceRanges devices = arch::device_ranges();
    for (const PhysRange& range : boot.ram) {
        for (const PhysRange& device : devices) {
            if (ranges_overlap(range, device)) {
                print("memory map: RAM [0x%lx - 0x%lx] overlaps device memory [0x%lx - 0x%lx]; "
                      "%s\n",
                      range.base, range.last(), device.base, device.last(),
                      range.base >= device.base && range.last() <= device.last()
                          ? "left out"
                          : "that part left out");
            }
        }
    }
    const CutRanges cut = cut_out_ranges(boot.ram.data(), boot.ram.count(), boot.ram.capacity(),
                                         devices.data(), devices.count());
    if (cut.overflow) {
        panic("memory map: more than %zu RAM ranges once device memory is cut out",
              boot.ram.capacity());
    }
    boot.ram.set_count(cut.count);
    if (boot.ram.count() == 0) {
        panic("memory map: the firmware reported no RAM outside device memory; cannot boot");
    }
}

void compute_usable(BootInfo& boot, UsableList& usable) {
    size_t ram_count = boot.ram.count();
    size_t reserved_count = boot.reserved.count();
    const UsableRanges result =
        compute_usable_ranges(boot.ram.data(), ram_count, boot.reserved.data(), reserved_count,
                              usable.data(), usable.capacity());
    boot.ram.set_count(ram_count);
    boot.reserved.set_count(reserved_count);
    if (result.overflow) {
        panic("memory map: more than %zu usable ranges", usable.capacity());
    }
    usable.set_count(result.count);
}

} // namespace

// The free memory the in-kernel tests are written for (a 4 MiB machine has a little more), and
// for each CPU beyond the boot CPU what its page lists may hold (a CPU's lists serve it alone:
// another CPU's failed request cannot take from them); with less, some fail for want of pages
// (the SMP stress with 16 CPUs in 8 MiB), and the console says why before they run.
constexpr uint64_t kTestsFreeBytes = uint64_t{2} << 20;
constexpr uint64_t kCpuListBytes =
    kCpuListBlocks * ((uint64_t{1} << kCpuListOrders) - 1) * kPageSize;

void kernel_main(BootInfo& boot) {
    run_static_constructors();
    print("Bedrock test kernel on %s, memory described by %s\n", arch::kName, boot.firmware);
    if (boot.command_line[0] != '\0') {
        print("command line: %s\n", boot.command_line);
    }
    if (boot.command_line_cut) {
        print("command line: cut after %zu bytes (the kernel reads %zu at most): no option "
              "after them is read\n",
              bedrock_strlen(boot.command_line), kCommandLineCapacity - 1);
    }
    if (boot.ram.count() == 0) {
        panic("memory map: the firmware reported no RAM");
    }
    print_ranges("firmware RAM", boot.ram.data(), boot.ram.count());
    clip_unreachable_ram(boot);
    cut_device_memory_out_of_ram(boot);

    const auto image_start = reinterpret_cast<uintptr_t>(__kernel_start);
    const auto image_end = reinterpret_cast<uintptr_t>(__kernel_end);
    check_image_in_ram(boot, image_start, image_end);
    for (const PhysRange& range : boot.no_map) {
        if (shares_pages(range, image_start, image_end)) {
            panic("memory map: the kernel image [0x%lx - 0x%lx] shares pages with [0x%lx - 0x%lx], "
                  "which the firmware forbids mapping (no-map); cannot boot",
                  image_start, image_end - 1, range.base, range.last());
        }
    }
    // What the firmware or boot loader reserved (a /memreserve/ entry, a /reserved-memory node,
    // a boot module, a boot structure) is not the kernel's to overwrite: its writable part,
    // __data_start .. __kernel_end, is zeroed (.bss) at entry and written from then on. (A loader
    // may place its structures in the gaps between the segments before it, which nothing
    // writes: GRUB's multiboot2 information lies there.)
    const auto data_start = reinterpret_cast<uintptr_t>(__data_start);
    for (const PhysRange& range : boot.reserved) {
        if (shares_pages(range, data_start, image_end)) {
            panic("memory map: the kernel image's writable part [0x%lx - 0x%lx] shares pages with "
                  "[0x%lx - 0x%lx], which the firmware or boot loader reserved; cannot boot",
                  data_start, image_end - 1, range.base, range.last());
        }
    }
    add_reserved(boot, image_start, image_end - image_start, "the kernel image");
    add_reserved(boot, 0, kPageSize, "physical page 0");

    static UsableList usable;
    compute_usable(boot, usable);
    BootPageSource tables(usable.data(), usable.count(), arch::early_mapped_limit());
    const uint64_t map_start = arch::nanoseconds();
    arch::map_memory(boot, tables);
    const uint64_t map_time = arch::nanoseconds() - map_start;
    for (const PhysRange& run : tables.taken()) {
        add_reserved(boot, run.base, run.size, "page-table pages");
    }
    compute_usable(boot, usable);

    print_ranges("reserved", boot.reserved.data(), boot.reserved.count());
    if (boot.no_map.count() != 0) {
        print_ranges("reserved and never mapped", boot.no_map.data(), boot.no_map.count());
    }
    print_ranges("usable", usable.data(), usable.count());
    const uint64_t ram_bytes = total_bytes(boot.ram.data(), boot.ram.count());
    const uint64_t usable_bytes = total_bytes(usable.data(), usable.count());
    uint64_t highest = 0;
    for (const PhysRange& range : boot.ram) {
        highest = range.last() > highest ? range.last() : highest;
    }
    print("memory: RAM %lu MiB in %zu ranges, highest address 0x%lx\n", ram_bytes / kMiB,
          boot.ram.count(), highest);
    print("memory: usable %lu pages (%lu MiB) in %zu ranges; page tables %lu KiB, mapped in "
          "%lu us\n",
          usable_bytes / kPageSize, usable_bytes / kMiB, usable.count(),
          total_bytes(tables.taken().data(), tables.taken().count()) >> 10, map_time / 1000);

    bring_up_allocators(usable.data(), usable.count(), parse_heap_boot_options(boot.command_line));
    start_secondary_cpus(boot);
    run_boot_benchmark(boot.command_line);
    run_gdb_sample(boot.command_line);

    const uint64_t free_bytes = page_frame_allocator().free_pages() * kPageSize;
    const unsigned other_cpus = online_cpu_count() - 1;
    if (free_bytes < kTestsFreeBytes + other_cpus * kCpuListBytes) {
        print("tests: %lu KiB free, below the %lu KiB the in-kernel tests are written for",
              free_bytes >> 10, kTestsFreeBytes >> 10);
        if (other_cpus != 0) {
            print(" and %lu KiB for the page lists of each of %u more CPUs", kCpuListBytes >> 10,
                  other_cpus);
        }
        print(": those that need more memory may fail\n");
    }
    // The page lists hold pages of one region only (the CPU-list region).
    const uint64_t list_region_bytes =
        page_frame_allocator().cpu_list_region_free_pages() * kPageSize;
    if (list_region_bytes != 0 && list_region_bytes < other_cpus * kCpuListBytes) {
        print("tests: the CPU page lists' region has %lu KiB free, below the %lu KiB the page "
              "lists of %u more CPUs may hold (%lu KiB each): tests that fill them may fail\n",
              list_region_bytes >> 10, (other_cpus * kCpuListBytes) >> 10, other_cpus,
              kCpuListBytes >> 10);
    }
    const TestSummary summary = run_all_tests();
    // A run that executed no test proves nothing, so it fails too.
    const bool success = summary.failed == 0 && summary.passed > 0;
    arch::exit(success ? arch::ExitStatus::Success : arch::ExitStatus::Failure);
}

} // namespace bedrock::kernel
