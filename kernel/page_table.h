// PageTable<Format>: builds a 4-level, 4 KiB-granule, 48-bit identity map, the same radix tree
// on x86-64 (PML4/PDPT/PD/PT) and AArch64 (L0..L3 with TG0 = 4 KiB). Only the descriptor
// encoding differs; each arch supplies it as a Format type (compile-time, no virtual calls):
//
//   struct Format {
//       static constexpr bool kGiBBlocks;                       // 1 GiB leaves at level 1?
//       static uint64_t table(PhysAddr table);                  // entry pointing to a table
//       static uint64_t leaf(PhysAddr phys, unsigned level, MemoryType type);  // level 1..3
//       static bool is_present(uint64_t entry);
//       static bool is_table(uint64_t entry, unsigned level);   // level 0..2
//       static PhysAddr address(uint64_t entry);
//       // For set_present():
//       static uint64_t split_leaf(uint64_t block, unsigned child_level, PhysAddr phys);
//       static uint64_t with_present(uint64_t entry, bool present);  // level-3 entries
//       static void sync_tables();                      // table writes visible to the walker
//       static void invalidate_page(uint64_t address);  // this CPU's and the others' TLBs
//       static void invalidate_all();
//   };
//
// Levels: 0 is the root; a level-L entry covers 2^(39 - 9L) bytes (512 GiB, 1 GiB, 2 MiB, 4 KiB).
// map() always uses the largest leaf that fits the alignment of both ends, so a RAM range costs
// O(size / 2 MiB + 512) table entries. Tables are written through phys_to_virt, so they must
// come from memory that is mapped while the map is built.
// Invariant: every present non-leaf entry points to a zeroed-at-birth table of 512 entries.
//
// After boot, set_present() edits the live map one 4 KiB page at a time (guard pages): a block
// leaf above the page is first split into a table of 512 leaves with the same attributes, taken
// from SplitTables, a fixed reserve; splits are permanent, so each block costs a table once.
// The block is replaced by the equivalent table directly, without an invalid entry in between
// (break-before-make): the mapping never changes, so code and stacks inside the block keep
// running, and the whole TLB is invalidated right after.
#pragma once

#include <stdint.h>

#include "bedrock/phys_range.h"
#include "bedrock/platform.h"
#include "kernel/boot_info.h"
#include "kernel/boot_page_source.h"
#include "kernel/console.h"
#include "kernel/split_tables.h"

namespace bedrock::kernel {

enum class MemoryType { Normal, Device };

template <class Format>
class PageTable {
public:
    static constexpr unsigned kLevels = 4;
    static constexpr uint64_t kEntries = 512;
    static constexpr uint64_t kAddressLimit = uint64_t{1} << 48;

    // A new, empty map whose tables come from `tables`.
    explicit PageTable(BootPageSource& tables)
        : m_tables(&tables), m_root(tables.allocate_zeroed_page()) {}
    // The live map rooted at `root`, for set_present() only.
    explicit PageTable(PhysAddr root) : m_tables(nullptr), m_root(root) {}

    [[nodiscard]] PhysAddr root() const { return m_root; }

    // Identity-maps [range.base, range.base + range.size), both ends page-aligned.
    void map(const PhysRange& range, MemoryType type) {
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
    // two ranges never share a page), leaving physical page 0 unmapped so that null
    // dereferences fault.
    void map_ram(const BootInfo& boot) {
        for (const PhysRange& ram : boot.ram) {
            uint64_t first = (ram.base + kPageSize - 1) & ~(kPageSize - 1);
            const uint64_t end = (ram.last() + 1) & ~(kPageSize - 1);
            if (first == 0) {
                first = kPageSize;
            }
            if (end > first) {
                map(PhysRange{first, end - first}, MemoryType::Normal);
            }
        }
    }

    // Makes the mapped 4 KiB page at `address` present or not; see the file comment. Returns
    // false, changing nothing, if the page was never mapped or `spares` is empty.
    bool set_present(uint64_t address, bool present, SplitTables& spares) {
        if (address == 0 || address % kPageSize != 0 || address >= kAddressLimit) {
            return false;
        }
        auto* table = static_cast<uint64_t*>(platform::phys_to_virt(m_root));
        for (unsigned level = 0; level < kLevels - 1; ++level) {
            uint64_t& entry = table[index(address, level)];
            if (!Format::is_present(entry)) {
                return false;
            }
            if (!Format::is_table(entry, level)) {
                const PhysAddr split = spares.take();
                if (split == 0) {
                    return false;
                }
                auto* leaves = static_cast<uint64_t*>(platform::phys_to_virt(split));
                const PhysAddr base = Format::address(entry);
                for (uint64_t i = 0; i < kEntries; ++i) {
                    leaves[i] =
                        Format::split_leaf(entry, level + 1, base + i * level_size(level + 1));
                }
                Format::sync_tables();
                entry = Format::table(split);
                Format::invalidate_all();
            }
            table = static_cast<uint64_t*>(platform::phys_to_virt(Format::address(entry)));
        }
        uint64_t& leaf = table[index(address, kLevels - 1)];
        if (Format::address(leaf) != address) {
            return false; // never mapped
        }
        leaf = Format::with_present(leaf, present);
        Format::invalidate_page(address);
        return true;
    }

    static constexpr uint64_t level_size(unsigned level) { return uint64_t{1} << (39 - 9 * level); }

private:
    static uint64_t index(uint64_t address, unsigned level) {
        return (address >> (39 - 9 * level)) % kEntries;
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
        auto* table = static_cast<uint64_t*>(platform::phys_to_virt(m_root));
        for (unsigned depth = 0; depth < level; ++depth) {
            uint64_t& entry = table[index(address, depth)];
            if (!Format::is_present(entry)) {
                entry = Format::table(m_tables->allocate_zeroed_page());
            } else if (!Format::is_table(entry, depth)) {
                panic("page table: 0x%lx is inside a block already mapped", address);
            }
            table = static_cast<uint64_t*>(platform::phys_to_virt(Format::address(entry)));
        }
        return &table[index(address, level)];
    }

    BootPageSource* m_tables; // null for a live map being edited
    PhysAddr m_root;
};

} // namespace bedrock::kernel
