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
//   };
//
// Levels: 0 is the root; a level-L entry covers 2^(39 - 9L) bytes (512 GiB, 1 GiB, 2 MiB, 4 KiB).
// map() always uses the largest leaf that fits the alignment of both ends, so a RAM range costs
// O(size / 2 MiB + 512) table entries. Tables are written through phys_to_virt, so they must
// come from memory that is mapped while the map is built.
// Invariant: every present non-leaf entry points to a zeroed-at-birth table of 512 entries.
#pragma once

#include <stdint.h>

#include "bedrock/phys_range.h"
#include "bedrock/platform.h"
#include "kernel/boot_info.h"
#include "kernel/boot_page_source.h"
#include "kernel/console.h"

namespace bedrock::kernel {

enum class MemoryType { Normal, Device };

template <class Format>
class PageTable {
public:
    static constexpr unsigned kLevels = 4;
    static constexpr uint64_t kEntries = 512;
    static constexpr uint64_t kAddressLimit = uint64_t{1} << 48;

    explicit PageTable(BootPageSource& tables)
        : m_tables(tables), m_root(tables.allocate_zeroed_page()) {}

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
                entry = Format::table(m_tables.allocate_zeroed_page());
            } else if (!Format::is_table(entry, depth)) {
                panic("page table: 0x%lx is inside a block already mapped", address);
            }
            table = static_cast<uint64_t*>(platform::phys_to_virt(Format::address(entry)));
        }
        return &table[index(address, level)];
    }

    BootPageSource& m_tables;
    PhysAddr m_root;
};

} // namespace bedrock::kernel
