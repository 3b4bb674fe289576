// SPDX-License-Identifier: MIT
// Host tests of the x86-64 boot-information parsers (kernel/pvh.cpp, kernel/multiboot2.cpp),
// including where each leaves the ACPI RSDP.
// The structures are built in host memory; their host addresses stand in for physical ones.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "kernel/boot_protocol_support.h"
#include "kernel/multiboot2.h"
#include "kernel/pvh.h"

namespace bedrock::kernel {
namespace {

uint64_t address_of(const void* pointer) {
    return reinterpret_cast<uintptr_t>(pointer);
}

bool has_range(const RangeList<kMaxFirmwareRanges>& list, uint64_t base, uint64_t size) {
    for (const PhysRange& range : list) {
        if (range.base == base && range.size == size) {
            return true;
        }
    }
    return false;
}

struct PvhImage {
    HvmStartInfo info{};
    std::vector<HvmMemoryMapEntry> map;
    char command_line[32] = "console=serial test";

    uint64_t finish() {
        info.magic = kPvhStartInfoMagic;
        info.version = 1;
        info.memory_map = address_of(map.data());
        info.memory_map_entries = static_cast<uint32_t>(map.size());
        info.command_line = address_of(command_line);
        return address_of(&info);
    }
};

TEST(Pvh, RamEntriesAboveAndBelow4GiB) {
    PvhImage image;
    image.map = {{0, 0x9FC00, 1, 0},
                 {0xF0000, 0x10000, 2, 0},
                 {0x100000, 0xBFEE0000, 1, 0},
                 {0x100000000, 0xC0000000, 1, 0}};
    BootInfo boot;
    ASSERT_TRUE(parse_pvh(image.finish(), boot).ok());
    EXPECT_STREQ(boot.firmware, "pvh");
    ASSERT_EQ(boot.ram.count(), 3u);
    EXPECT_TRUE(has_range(boot.ram, 0x100000000, 0xC0000000));
    EXPECT_FALSE(has_range(boot.ram, 0xF0000, 0x10000)); // type 2 is not RAM
    EXPECT_TRUE(has_range(boot.reserved, 0, 0x100000));
    EXPECT_TRUE(has_range(boot.reserved, address_of(&image.info), sizeof(HvmStartInfo)));
    EXPECT_TRUE(
        has_range(boot.reserved, address_of(image.map.data()), 4 * sizeof(HvmMemoryMapEntry)));
    EXPECT_STREQ(boot.command_line, "console=serial test");
}

TEST(Pvh, BadMagicIsRejected) {
    PvhImage image;
    image.map = {{0, 0x1000, 1, 0}};
    const uint64_t address = image.finish();
    image.info.magic = 0x12345678;
    BootInfo boot;
    const BootParseResult result = parse_pvh(address, boot);
    ASSERT_FALSE(result.ok());
    EXPECT_NE(std::strstr(result.error, "magic"), nullptr);
}

TEST(Pvh, VersionZeroHasNoMemoryMap) {
    PvhImage image;
    image.map = {{0, 0x1000, 1, 0}};
    const uint64_t address = image.finish();
    image.info.version = 0;
    BootInfo boot;
    EXPECT_FALSE(parse_pvh(address, boot).ok());
    EXPECT_FALSE(parse_pvh(0, boot).ok());
}

TEST(Pvh, TooManyRamEntriesIsAClearError) {
    PvhImage image;
    for (uint64_t i = 0; i <= kMaxFirmwareRanges; ++i) {
        image.map.push_back({i * 0x10000, 0x1000, 1, 0});
    }
    BootInfo boot;
    const BootParseResult result = parse_pvh(image.finish(), boot);
    ASSERT_FALSE(result.ok());
    EXPECT_STREQ(result.error, "more than 128 separate RAM ranges (the kernel's limit)");
}

// Entries that touch or overlap are one range, however many there are.
TEST(Pvh, AdjacentRamEntriesBeyondTheLimitAreOneRange) {
    PvhImage image;
    for (uint64_t i = 0; i < 2 * kMaxFirmwareRanges; ++i) {
        image.map.push_back({0x100000 + i * 0x100000, 0x100000, 1, 0});
    }
    image.map.push_back({0x200000, 0x300000, 1, 0}); // overlaps three of them
    BootInfo boot;
    const BootParseResult result = parse_pvh(image.finish(), boot);
    ASSERT_TRUE(result.ok()) << result.error;
    ASSERT_EQ(boot.ram.count(), 1u);
    EXPECT_TRUE(has_range(boot.ram, 0x100000, 2 * kMaxFirmwareRanges * 0x100000));
}

TEST(Pvh, ModulesAndTheirListAreReserved) {
    PvhImage image;
    image.map = {{0x100000, 0x1000000, 1, 0}};
    const HvmModule modules[2] = {{0x400000, 0x2000, 0, 0}, {0x800000, 0x10, 0, 0}};
    image.info.module_count = 2;
    image.info.module_list = address_of(modules);
    BootInfo boot;
    ASSERT_TRUE(parse_pvh(image.finish(), boot).ok());
    EXPECT_TRUE(has_range(boot.reserved, address_of(modules), sizeof(modules)));
    EXPECT_TRUE(has_range(boot.reserved, 0x400000, 0x2000));
    EXPECT_TRUE(has_range(boot.reserved, 0x800000, 0x10));
}

TEST(Pvh, CommandLineLongerThanTheBufferIsCutAfterAWholeWord) {
    PvhImage image;
    image.map = {{0x100000, 0x1000000, 1, 0}};
    // Words of 9 bytes and a space: the buffer's end (4,095 bytes) falls inside a word. PVH reads
    // at most 4,096 bytes of a line and reserves them with their NUL's place.
    std::string long_line;
    while (long_line.size() < 2 * kCommandLineCapacity) {
        long_line += "abcdefghi ";
    }
    static_assert(kCommandLineCapacity == 4096);
    image.finish();
    image.info.command_line = address_of(long_line.c_str());
    BootInfo boot;
    ASSERT_TRUE(parse_pvh(address_of(&image.info), boot).ok());
    EXPECT_EQ(std::strlen(boot.command_line), 4090u) << "the cut word is left off whole";
    EXPECT_EQ(long_line.compare(0, 4090, boot.command_line), 0);
    EXPECT_TRUE(boot.command_line_cut);
    EXPECT_TRUE(has_range(boot.reserved, address_of(long_line.c_str()), 4097));
}

// A value cut short would read as another one (guard=100 as guard=1): the cut word goes whole,
// whatever separates the words; a line that fits is kept whole and not marked cut.
TEST(CommandLine, AWordCutByTheBufferIsLeftOffWhole) {
    for (const char separator : {' ', '\t', '\n'}) {
        std::string line(kCommandLineCapacity - 1 - 16, 'p');
        line += separator;
        line += "bedrock.guard=100"; // 2 bytes past the buffer
        BootInfo boot;
        copy_command_line(line.c_str(), line.size(), boot);
        EXPECT_EQ(std::string(boot.command_line), line.substr(0, kCommandLineCapacity - 16));
        EXPECT_TRUE(boot.command_line_cut);
    }
    const std::string exact(kCommandLineCapacity - 1, 'q');
    BootInfo boot;
    copy_command_line(exact.c_str(), exact.size() + 100, boot);
    EXPECT_EQ(std::string(boot.command_line), exact);
    EXPECT_FALSE(boot.command_line_cut);
    // Ended by the limit (a tag's length), not by a NUL: nothing beyond it is counted.
    const std::string tagged = "bedrock.check=report quiet";
    copy_command_line(tagged.c_str(), 20, boot);
    EXPECT_EQ(std::string(boot.command_line), "bedrock.check=report");
    EXPECT_FALSE(boot.command_line_cut);
}

// Builds a multiboot2 information structure tag by tag.
class Multiboot2Image {
public:
    Multiboot2Image() { m_bytes.resize(8); }
    void add_tag(uint32_t type, const void* payload, uint32_t payload_size) {
        const size_t start = m_bytes.size();
        const uint32_t size = 8 + payload_size;
        m_bytes.resize(start + ((size + 7) & ~7u));
        std::memcpy(&m_bytes[start], &type, 4);
        std::memcpy(&m_bytes[start + 4], &size, 4);
        if (payload_size > 0) {
            std::memcpy(&m_bytes[start + 8], payload, payload_size);
        }
    }
    void add_memory_map(const std::vector<Multiboot2MemoryMapEntry>& entries) {
        std::vector<uint8_t> payload(8 + entries.size() * 24);
        const uint32_t entry_size = 24;
        std::memcpy(&payload[0], &entry_size, 4);
        std::memcpy(&payload[8], entries.data(), entries.size() * 24);
        add_tag(kMultiboot2TagMemoryMap, payload.data(), static_cast<uint32_t>(payload.size()));
    }
    void add_module(uint32_t start, uint32_t end, const char* command_line) {
        std::vector<uint8_t> payload(8 + std::strlen(command_line) + 1);
        std::memcpy(&payload[0], &start, 4);
        std::memcpy(&payload[4], &end, 4);
        std::memcpy(&payload[8], command_line, std::strlen(command_line) + 1);
        add_tag(kMultiboot2TagModule, payload.data(), static_cast<uint32_t>(payload.size()));
    }
    uint64_t finish() {
        add_tag(kMultiboot2TagEnd, nullptr, 0);
        const auto total = static_cast<uint32_t>(m_bytes.size());
        std::memcpy(&m_bytes[0], &total, 4);
        m_storage.assign((m_bytes.size() + 7) / 8, 0);
        std::memcpy(m_storage.data(), m_bytes.data(), m_bytes.size());
        return address_of(m_storage.data());
    }
    std::vector<uint8_t>& bytes() { return m_bytes; }
    uint8_t* stored() { return reinterpret_cast<uint8_t*>(m_storage.data()); }

private:
    std::vector<uint8_t> m_bytes;
    std::vector<uint64_t> m_storage; // 8-byte aligned copy, as the protocol guarantees
};

TEST(Multiboot2, MemoryMapAndCommandLine) {
    Multiboot2Image image;
    const char command_line[] = "bedrock quiet";
    image.add_tag(kMultiboot2TagCommandLine, command_line, sizeof(command_line));
    image.add_memory_map({{0, 0x9FC00, 1, 0},
                          {0x100000, 0x3FEE0000, 1, 0},
                          {0xFEFFC000, 0x4000, 2, 0},
                          {0x100000000, 0x40000000, 1, 0}});
    const uint64_t address = image.finish();
    BootInfo boot;
    ASSERT_TRUE(parse_multiboot2(address, boot).ok());
    EXPECT_STREQ(boot.firmware, "multiboot2");
    EXPECT_EQ(boot.ram.count(), 3u);
    EXPECT_TRUE(has_range(boot.ram, 0x100000000, 0x40000000));
    EXPECT_TRUE(has_range(boot.reserved, address, image.bytes().size()));
    EXPECT_STREQ(boot.command_line, "bedrock quiet");
}

TEST(Multiboot2, MissingMemoryMapIsAnError) {
    Multiboot2Image image;
    BootInfo boot;
    EXPECT_FALSE(parse_multiboot2(image.finish(), boot).ok());
}

TEST(Multiboot2, TagRunningPastTheEndIsRejected) {
    Multiboot2Image image;
    image.add_memory_map({{0x100000, 0x100000, 1, 0}});
    const uint64_t address = image.finish();
    const uint32_t huge = 0x10000;
    std::memcpy(image.stored() + 12, &huge, 4); // the memory-map tag's size
    BootInfo boot;
    const BootParseResult result = parse_multiboot2(address, boot);
    ASSERT_FALSE(result.ok());
    EXPECT_NE(std::strstr(result.error, "past the end"), nullptr);
}

TEST(Multiboot2, ImplausibleTotalSizeAndBadPointerAreRejected) {
    Multiboot2Image image;
    image.add_memory_map({{0x100000, 0x100000, 1, 0}});
    const uint64_t address = image.finish();
    const uint32_t tiny = 4;
    std::memcpy(image.stored(), &tiny, 4);
    BootInfo boot;
    EXPECT_FALSE(parse_multiboot2(address, boot).ok());
    EXPECT_FALSE(parse_multiboot2(0, boot).ok());
    EXPECT_FALSE(parse_multiboot2(address + 4, boot).ok()); // misaligned
}

TEST(Multiboot2, TruncatedMemoryMapEntryIsNotRead) {
    Multiboot2Image image;
    std::vector<uint8_t> payload(8 + 24 + 8, 0); // one whole entry and 8 stray bytes
    const uint32_t entry_size = 24;
    std::memcpy(&payload[0], &entry_size, 4);
    const Multiboot2MemoryMapEntry entry{0x200000, 0x100000, 1, 0};
    std::memcpy(&payload[8], &entry, 24);
    image.add_tag(kMultiboot2TagMemoryMap, payload.data(), static_cast<uint32_t>(payload.size()));
    BootInfo boot;
    ASSERT_TRUE(parse_multiboot2(image.finish(), boot).ok());
    EXPECT_EQ(boot.ram.count(), 1u);
}

TEST(Multiboot2, ModulesAreReserved) {
    Multiboot2Image image;
    image.add_memory_map({{0x100000, 0x1000000, 1, 0}});
    image.add_module(0x400000, 0x402345, "initrd");
    image.add_module(0x500000, 0x500000, ""); // empty: nothing to reserve
    const uint64_t address = image.finish();
    BootInfo boot;
    ASSERT_TRUE(parse_multiboot2(address, boot).ok());
    EXPECT_TRUE(has_range(boot.reserved, 0x400000, 0x2345));
    EXPECT_TRUE(has_range(boot.reserved, address, image.bytes().size()));
    EXPECT_TRUE(has_range(boot.reserved, 0, 0x100000));
    EXPECT_EQ(boot.reserved.count(), 3u);
}

TEST(Multiboot2, ModuleEndingBeforeItStartsIsRejected) {
    Multiboot2Image image;
    image.add_memory_map({{0x100000, 0x1000000, 1, 0}});
    image.add_module(0x400000, 0x3FFFFF, "backwards");
    BootInfo boot;
    const BootParseResult result = parse_multiboot2(image.finish(), boot);
    ASSERT_FALSE(result.ok());
    EXPECT_NE(std::strstr(result.error, "module"), nullptr);
}

TEST(Multiboot2, ModuleTagTooShortIsRejected) {
    Multiboot2Image image;
    image.add_memory_map({{0x100000, 0x1000000, 1, 0}});
    const uint32_t start_only = 0x400000;
    image.add_tag(kMultiboot2TagModule, &start_only, sizeof(start_only));
    BootInfo boot;
    EXPECT_FALSE(parse_multiboot2(image.finish(), boot).ok());
}

TEST(Multiboot2, TooManyRamEntriesIsAClearError) {
    Multiboot2Image image;
    std::vector<Multiboot2MemoryMapEntry> entries;
    for (uint64_t i = 0; i <= kMaxFirmwareRanges; ++i) {
        entries.push_back({i * 0x10000, 0x1000, 1, 0});
    }
    image.add_memory_map(entries);
    BootInfo boot;
    const BootParseResult result = parse_multiboot2(image.finish(), boot);
    ASSERT_FALSE(result.ok());
    EXPECT_STREQ(result.error, "more than 128 separate RAM ranges (the kernel's limit)");
}

TEST(Multiboot2, TooManyModulesIsAClearError) {
    Multiboot2Image image;
    image.add_memory_map({{0x100000, 0x1000000, 1, 0}});
    for (uint32_t i = 0; i <= kMaxFirmwareRanges; ++i) {
        image.add_module(0x400000 + i * 0x1000, 0x400000 + i * 0x1000 + 0x10, "m");
    }
    BootInfo boot;
    const BootParseResult result = parse_multiboot2(image.finish(), boot);
    ASSERT_FALSE(result.ok());
    EXPECT_STREQ(result.error, "more than 128 separate reserved ranges (the kernel's limit)");
}

TEST(Multiboot2, MemoryMapEntrySizeMustHoldAnEntry) {
    Multiboot2Image image;
    std::vector<uint8_t> payload(8 + 16, 0);
    const uint32_t entry_size = 16; // smaller than the 24-byte entry
    std::memcpy(&payload[0], &entry_size, 4);
    image.add_tag(kMultiboot2TagMemoryMap, payload.data(), static_cast<uint32_t>(payload.size()));
    BootInfo boot;
    const BootParseResult result = parse_multiboot2(image.finish(), boot);
    ASSERT_FALSE(result.ok());
    EXPECT_NE(std::strstr(result.error, "entry size"), nullptr);
}

TEST(Multiboot2, MissingEndTagIsRejected) {
    Multiboot2Image image;
    image.add_memory_map({{0x100000, 0x100000, 1, 0}});
    const uint64_t address = image.finish();
    const uint32_t not_end = 0x7777; // an unknown tag type where the end tag was
    std::memcpy(image.stored() + image.bytes().size() - 8, &not_end, 4);
    BootInfo boot;
    const BootParseResult result = parse_multiboot2(address, boot);
    ASSERT_FALSE(result.ok());
    EXPECT_NE(std::strstr(result.error, "end tag"), nullptr);
}

// The ACPI tags carry a copy of the RSDP: BootInfo points at the copy inside the (reserved)
// structure, the new-RSDP tag winning over the old one in either order.
TEST(Multiboot2, AcpiTagsGiveTheRsdpCopy) {
    for (const bool new_first : {false, true}) {
        Multiboot2Image image;
        image.add_memory_map({{0x100000, 0x100000, 1, 0}});
        const uint8_t old_rsdp[20] = {'R', 'S', 'D', ' ', 'P', 'T', 'R', ' '};
        const uint8_t new_rsdp[36] = {'R', 'S', 'D', ' ', 'P', 'T', 'R', ' '};
        size_t new_offset = 0;
        if (new_first) {
            new_offset = image.bytes().size() + 8;
            image.add_tag(kMultiboot2TagAcpiNew, new_rsdp, sizeof(new_rsdp));
            image.add_tag(kMultiboot2TagAcpiOld, old_rsdp, sizeof(old_rsdp));
        } else {
            image.add_tag(kMultiboot2TagAcpiOld, old_rsdp, sizeof(old_rsdp));
            new_offset = image.bytes().size() + 8;
            image.add_tag(kMultiboot2TagAcpiNew, new_rsdp, sizeof(new_rsdp));
        }
        const uint64_t address = image.finish();
        BootInfo boot;
        ASSERT_TRUE(parse_multiboot2(address, boot).ok());
        EXPECT_EQ(boot.acpi_rsdp, address + new_offset);
    }
}

TEST(Pvh, RsdpAddressIsPassedOn) {
    PvhImage image;
    image.map = {{0x100000, 0x100000, 1, 0}};
    image.info.rsdp = 0xF59E0;
    BootInfo boot;
    ASSERT_TRUE(parse_pvh(image.finish(), boot).ok());
    EXPECT_EQ(boot.acpi_rsdp, 0xF59E0u);
}

} // namespace
} // namespace bedrock::kernel
