// SPDX-License-Identifier: MIT
// PageTable<Format>: builds a 4-level, 4 KiB-granule, 48-bit identity map, the same radix tree
// on x86-64 (PML4/PDPT/PD/PT) and AArch64 (L0..L3 with TG0 = 4 KiB), and afterwards hides and
// shows single pages of it. Only the descriptor encoding and the TLB maintenance differ; each
// arch supplies them as a Format type (compile-time, no virtual calls):
//
//   struct Format {
//       static constexpr bool kGiBBlocks;                       // 1 GiB leaves at level 1?
//       static constexpr bool kBreakBeforeMake;                 // a block's split unmaps it?
//       static uint64_t table(PhysAddr table);                  // entry pointing to a table
//       static uint64_t leaf(PhysAddr phys, unsigned level, MemoryType type);  // level 1..3
//       static bool is_present(uint64_t entry);
//       static bool is_table(uint64_t entry, unsigned level);   // level 0..2
//       static PhysAddr address(uint64_t entry);
//       static MemoryType memory_type(uint64_t leaf);
//       // The leaf at `level` (2 or 3) mapping `phys` with the attributes of `block`, a leaf one
//       // level up that covers `phys`.
//       static uint64_t child_leaf(uint64_t block, unsigned level, PhysAddr phys);
//       static uint64_t with_present(uint64_t leaf, bool present);  // a level-3 leaf
//       static void invalidate_page(uint64_t address);          // this CPU's TLB, one page
//   };
//
// Levels: 0 is the root; a level-L entry covers 2^(39 - 9L) bytes (512 GiB, 1 GiB, 2 MiB, 4 KiB).
// map() always uses the largest leaf that fits the alignment of both ends, so a RAM range costs
// O(size / 2 MiB + 512) table entries. Tables are written through phys_to_virt, so they must
// come from memory that is mapped while the map is built.
// Invariants: every present non-leaf entry points to a table of 512 entries; an entry is 0
// exactly when it maps nothing; a page hidden by set_page_present() keeps its level-3 leaf with
// only the present bit cleared.
//
// Life cycle: start_building() (root from the BootPageSource), map() / map_ram(),
// finish_building(), then the arch switches to root(). From then on the map is live and only
// set_page_present() changes it, taking split tables from a reserve of kSplitReserve pages.
//
// Splitting a live block (set_page_present, split_to_pages_live) is break-before-make where the
// architecture requires it for a change of block size (Format::kBreakBeforeMake: AArch64): the
// block entry is zeroed, its TLB entry invalidated on every CPU, and only then the table entry
// written. x86-64 writes the table entry over the block entry at once (the same memory with the
// same attributes, so either translation is right meanwhile) and invalidates it. Between the
// break and the make the whole block is unmapped, so nothing the split itself touches may lie in
// a block: not its code, stack or the table it writes. finish_building() therefore maps the
// kernel image (code, stacks, vectors) and every table page, the reserve included, with level-3
// pages, and a secondary CPU's stack is split to pages before the CPU starts (an exception's
// entry pushes onto it). Another CPU that touches the block meanwhile takes a translation fault:
// the arch's handler asks split_sequence() whether a split ran or runs, and retries the access
// once the address translates again (arch/aarch64/paging.cpp).
// Locking: live changes (set_page_present, split_to_pages_live) take m_live_lock; the walker and
// the fault handler read the entries lock-free (each entry is one 64-bit store).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/phys_range.h"
#include "bedrock/platform.h"
#include "bedrock/spinlock.h"
#include "kernel/boot_info.h"
#include "kernel/boot_page_source.h"
#include "kernel/console.h"

extern "C" {
extern char __kernel_start[]; // the linker script's bounds of the whole image, .bss included
extern char __kernel_end[];
}

namespace bedrock::kernel {

enum class MemoryType { Normal, Device };

template <class Format>
class PageTable {
public:
    static constexpr unsigned kLevels = 4;
    static constexpr uint64_t kEntries = 512;
    static constexpr uint64_t kAddressLimit = uint64_t{1} << 48;
    // Table pages set aside for splits at run time. Hiding a page of a 2 MiB block takes one, of
    // a 1 GiB block two (1 GiB -> 2 MiB -> 4 KiB), of an already split block none: pages in at
    // least 8 distinct 1 GiB blocks or 16 distinct 2 MiB blocks can be hidden. Then
    // set_page_present() refuses further splits.
    static constexpr size_t kSplitReserve = 16;

    // Starts an empty map whose tables come from `tables` until finish_building().
    void start_building(BootPageSource& tables) {
        m_building = &tables;
        m_root = new_table_page();
    }

    [[nodiscard]] PhysAddr root() const { return m_root; }

    // Identity-maps [range.base, range.base + range.size), both ends page-aligned. Only while
    // building.
    void map(const PhysRange& range, MemoryType type) {
        if (m_building == nullptr) {
            panic("page table: map() after finish_building()");
        }
        if ((range.base | range.size) % kPageSize != 0 || range.base >= kAddressLimit ||
            range.size > kAddressLimit - range.base) {
            panic("page table: cannot map 0x%lx + 0x%lx (unaligned or above 2^48)", range.base,
                  range.size);
        }
        uint64_t address = range.base;
        const uint64_t end = range.base + range.size;
        while (address < end) {
            const unsigned level = leaf_level(address, end - address);
            uint64_t* entry = entry_for(address, level);
            if (Format::is_present(*entry)) {
                panic("page table: 0x%lx is already mapped", address);
            }
            *entry = Format::leaf(address, level, type);
            address += level_size(level);
        }
    }

    // Maps every RAM range of `boot` as Normal memory, each rounded inward to whole pages (so
    // two ranges never share a page), except every page that holds a byte of a no-map range
    // (boot.no_map), and leaving physical page 0 unmapped so that null dereferences fault. Only
    // while building. O(RAM ranges * no-map ranges^2) besides the mapping.
    void map_ram(const BootInfo& boot) {
        for (const PhysRange& ram : boot.ram) {
            uint64_t first = (ram.base + kPageSize - 1) & ~(kPageSize - 1);
            const uint64_t end = (ram.last() + 1) & ~(kPageSize - 1);
            if (first == 0) {
                first = kPageSize;
            }
            map_around_no_map(first, end, MemoryType::Normal, boot.no_map);
        }
    }

    // map() of a device range (both ends page-aligned), but for every page holding a byte of a
    // no-map range (firmware memory may lie among the devices, as secure RAM in AArch64 virt's
    // device window). Only while building.
    void map_devices(const PhysRange& range, const BootInfo& boot) {
        map_around_no_map(range.base, range.base + range.size, MemoryType::Device, boot.no_map);
    }

    // Takes the split reserve and maps the kernel image and every table page with level-3
    // pages (see the file comment). Afterwards no page is taken from the BootPageSource.
    void finish_building() {
        for (PhysAddr& page : m_reserve) {
            page = new_table_page();
        }
        const auto image_start = reinterpret_cast<uintptr_t>(__kernel_start);
        split_to_pages(image_start, reinterpret_cast<uintptr_t>(__kernel_end) - image_start);
        // Splitting takes more table pages, which may lie in a block not split yet: repeat until
        // a pass over all of them takes none.
        uint64_t covered_pages = 0;
        for (;;) {
            const BootPageSource::TakenRuns& taken = m_building->taken();
            uint64_t taken_pages = 0;
            for (const PhysRange& run : taken) {
                taken_pages += run.page_count();
            }
            if (taken_pages == covered_pages) {
                break;
            }
            covered_pages = taken_pages;
            for (size_t i = 0; i < taken.count(); ++i) {
                split_to_pages(taken.data()[i].base, taken.data()[i].size);
            }
        }
        m_building = nullptr;
    }

    // Makes the 4 KiB page at `address` present or not present, splitting the block that maps it
    // into smaller mappings when needed (break-before-make, see the file comment), and
    // invalidates its TLB entry. Returns false, changing nothing, when the map is not built yet,
    // the address is not page-aligned, not mapped RAM (no leaf, or a Device leaf), or the
    // reserve lacks the table pages a split needs. Never allocates. O(kLevels + 512 * splits).
    [[nodiscard]] bool set_page_present(uint64_t address, bool present) {
        if (m_root == 0 || m_building != nullptr || address % kPageSize != 0 ||
            address >= kAddressLimit) {
            return false;
        }
        LockGuard guard(m_live_lock);
        Leaf leaf = find_leaf(address);
        if (!maps_ram(leaf)) {
            return false;
        }
        if (Format::is_present(*leaf.entry) == present) {
            return true; // a block leaf is always present
        }
        if (!split_down(leaf, address)) {
            return false;
        }
        store(leaf.entry, Format::with_present(*leaf.entry, present));
        // Also publishes the split tables' entries to the table walker before the return.
        Format::invalidate_page(address);
        return true;
    }

    // Maps [address, address + size) (page-aligned, mapped RAM) with level-3 pages, splitting
    // the blocks that map it (see the file comment), so that a later split of a block nearby
    // never unmaps it. For a secondary CPU's stack, before the CPU starts. Returns false when a
    // page is not mapped RAM (changing nothing) or the reserve runs out of table pages (the
    // blocks split by then stay split: the same memory, mapped the same). O(pages + 512 *
    // splits).
    [[nodiscard]] bool split_to_pages_live(uint64_t address, uint64_t size) {
        if (m_root == 0 || m_building != nullptr || (address | size) % kPageSize != 0 ||
            address >= kAddressLimit || size > kAddressLimit - address) {
            return false;
        }
        if constexpr (!Format::kBreakBeforeMake) {
            return true; // a split never unmaps a block, so nothing needs pages ahead
        }
        LockGuard guard(m_live_lock);
        for (uint64_t page = address; page < address + size; page += kPageSize) {
            if (!maps_ram(find_leaf(page))) {
                return false;
            }
        }
        for (uint64_t page = address; page < address + size; page += kPageSize) {
            Leaf leaf = find_leaf(page);
            if (leaf.level < kLevels - 1) {
                if (!split_down(leaf, page)) {
                    return false;
                }
                Format::invalidate_page(page);
            }
        }
        return true;
    }

    // Even while no live split has a block unmapped; changes at every break and make. For a
    // fault handler telling a fault in a split's window from a real one.
    [[nodiscard]] uint64_t split_sequence() const {
        return __atomic_load_n(&m_split_sequence, __ATOMIC_ACQUIRE);
    }

    static constexpr uint64_t level_size(unsigned level) { return uint64_t{1} << (39 - 9 * level); }

private:
    // The entry that maps an address: a block leaf (level < 3) or the level-3 entry (present,
    // hidden or 0). entry is null when a table on the way is missing.
    struct Leaf {
        uint64_t* entry;
        unsigned level;
    };

    static uint64_t index(uint64_t address, unsigned level) {
        return (address >> (39 - 9 * level)) % kEntries;
    }

    static uint64_t* table_at(PhysAddr table) {
        return static_cast<uint64_t*>(platform::phys_to_virt(table));
    }

    // Whether `leaf` maps RAM (a Normal leaf, present or hidden), the only memory live changes
    // touch.
    static bool maps_ram(const Leaf& leaf) {
        return leaf.entry != nullptr && *leaf.entry != 0 &&
               Format::memory_type(*leaf.entry) == MemoryType::Normal;
    }

    // Splits the block leaf `leaf` maps `address` with down to a level-3 entry, one reserve
    // table page per level, and leaves `leaf` at that entry; returns false, changing nothing,
    // when the reserve lacks those pages. Under m_live_lock.
    [[nodiscard]] bool split_down(Leaf& leaf, uint64_t address) {
        if (kLevels - 1 - leaf.level > kSplitReserve - m_reserve_used) {
            return false;
        }
        while (leaf.level < kLevels - 1) {
            const PhysAddr table = m_reserve[m_reserve_used++];
            fill_with_children(table, *leaf.entry, leaf.level);
            if constexpr (Format::kBreakBeforeMake) {
                // Break: the block is unmapped and dropped from every CPU's TLB; the sequence is
                // odd until the make.
                __atomic_store_n(&m_split_sequence, m_split_sequence + 1, __ATOMIC_RELEASE);
                store(leaf.entry, 0);
                Format::invalidate_page(address);
            }
            store(leaf.entry, Format::table(table)); // make: the same memory, now through a table
            if constexpr (Format::kBreakBeforeMake) {
                Format::invalidate_page(address); // publishes the make before the sequence moves
                __atomic_store_n(&m_split_sequence, m_split_sequence + 1, __ATOMIC_RELEASE);
            }
            ++leaf.level;
            leaf.entry = &table_at(table)[index(address, leaf.level)];
        }
        return true;
    }

    // One 64-bit store, so the table walker never sees half an entry.
    static void store(uint64_t* entry, uint64_t value) {
        __atomic_store_n(entry, value, __ATOMIC_RELAXED);
    }

    // The shallowest level whose leaf is aligned at `address` and fits in `remaining` bytes.
    static unsigned leaf_level(uint64_t address, uint64_t remaining) {
        for (unsigned level = Format::kGiBBlocks ? 1 : 2; level < kLevels - 1; ++level) {
            const uint64_t size = level_size(level);
            if (address % size == 0 && remaining >= size) {
                return level;
            }
        }
        return kLevels - 1;
    }

    // The entry at `level` for `address`, creating the tables above it.
    uint64_t* entry_for(uint64_t address, unsigned level) {
        uint64_t* table = table_at(m_root);
        for (unsigned depth = 0; depth < level; ++depth) {
            uint64_t& entry = table[index(address, depth)];
            if (!Format::is_present(entry)) {
                entry = Format::table(new_table_page());
            } else if (!Format::is_table(entry, depth)) {
                panic("page table: 0x%lx is inside a block already mapped", address);
            }
            table = table_at(Format::address(entry));
        }
        return &table[index(address, level)];
    }

    Leaf find_leaf(uint64_t address) const {
        uint64_t* table = table_at(m_root);
        for (unsigned level = 0; level < kLevels - 1; ++level) {
            uint64_t* entry = &table[index(address, level)];
            if (!Format::is_present(*entry)) {
                return {nullptr, level};
            }
            if (!Format::is_table(*entry, level)) {
                return {entry, level};
            }
            table = table_at(Format::address(*entry));
        }
        return {&table[index(address, kLevels - 1)], kLevels - 1};
    }

    // Fills `table` with the 512 leaves one level below `block` (a leaf at `level`) that together
    // map what it maps, with its attributes:
    //
    //   block at level L:  [ phys .......................... phys + level_size(L) )
    //   table at L + 1:    [ 0: phys ][ 1: phys + level_size(L + 1) ] ... [ 511 ]
    static void fill_with_children(PhysAddr table, uint64_t block, unsigned level) {
        uint64_t* children = table_at(table);
        const PhysAddr base = Format::address(block);
        for (uint64_t i = 0; i < kEntries; ++i) {
            children[i] = Format::child_leaf(block, level + 1, base + i * level_size(level + 1));
        }
    }

    // Maps the pages of [first, end) (page-aligned) that hold no byte of a range of `no_map`, as
    // `type`, in address order, one hole at a time:
    //
    //   [first ........................................................ end)
    //   [ mapped ][ hole: lowest no-map pages ][ mapped ][ next hole ][ mapped ]
    void map_around_no_map(uint64_t first, uint64_t end, MemoryType type,
                           const RangeList<kMaxFirmwareRanges>& no_map) {
        while (first < end) {
            // The lowest no-map range that reaches [first, end), widened to whole pages.
            uint64_t hole_first = end;
            uint64_t hole_last = 0;
            for (const PhysRange& range : no_map) {
                const uint64_t range_first = range.base & ~(kPageSize - 1);
                const uint64_t range_last = range.last() | (kPageSize - 1);
                if (range_last >= first && range_first < hole_first) {
                    hole_first = range_first;
                    hole_last = range_last;
                }
            }
            if (hole_first > first) {
                map(PhysRange{first, hole_first - first}, type);
            }
            if (hole_first >= end || hole_last >= end - 1) {
                return;
            }
            first = hole_last + 1;
        }
    }

    // Boot only (the map is not live): splits every block leaf covering [base, base + size)
    // down to level-3 pages, with tables from the BootPageSource. Unmapped parts are skipped.
    void split_to_pages(uint64_t base, uint64_t size) {
        const uint64_t end = base + size;
        for (uint64_t address = base & ~(kPageSize - 1); address < end; address += kPageSize) {
            for (Leaf leaf = find_leaf(address); leaf.entry != nullptr && leaf.level < kLevels - 1;
                 leaf = find_leaf(address)) {
                const PhysAddr table = new_table_page();
                fill_with_children(table, *leaf.entry, leaf.level);
                *leaf.entry = Format::table(table);
            }
        }
    }

    // Boot only: a zeroed table page from the BootPageSource. A boot that cannot have one
    // cannot go on.
    PhysAddr new_table_page() {
        const BootPage page = m_building->take_zeroed_page();
        switch (page.shortage) {
        case BootPageShortage::None:
            break;
        case BootPageShortage::NoPageBelowLimit:
            panic("boot page source: no usable page below 0x%lx (what the early map reaches) "
                  "left for page tables: too little usable RAM there beside the kernel image, "
                  "whatever lies above; cannot boot",
                  m_building->limit());
        case BootPageShortage::TooManyRuns:
            panic("boot page source: the page-table pages would need more than %zu separate "
                  "runs (the kernel's limit): the usable RAM below 0x%lx is in too many pieces",
                  BootPageSource::kMaxTakenRuns, m_building->limit());
        }
        return page.address;
    }

    BootPageSource* m_building = nullptr; // the table source while building, then null
    PhysAddr m_root = 0;
    PhysAddr m_reserve[kSplitReserve] = {};
    size_t m_reserve_used = 0;
    SpinLock m_live_lock;
    uint64_t m_split_sequence = 0;
};

} // namespace bedrock::kernel
