// SPDX-License-Identifier: MIT
// Host tests of the MP table parser (kernel/mp_table.cpp): the search areas the BIOS data area
// names, the floating pointer found in each of them (and only where valid), the processor
// entries of a configuration table (enabled, disabled, duplicates, more than the kernel starts),
// default configurations, and damaged structures that must be refused with the CPU list left as
// it was. Structures are built in host memory below 2 GiB (mmap MAP_32BIT, so that the floating
// pointer's 32-bit address can hold them), tables at its end before an inaccessible page, so a
// read past a table's length faults; host addresses stand in for physical ones.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "boot_cpus.h"
#include "kernel/mp_table.h"
#include "support/low_memory.h"

namespace bedrock::kernel {
namespace {

constexpr size_t kArenaSize = 256 * 1024;
constexpr uint8_t kEnabled = 1;
constexpr uint8_t kBootProcessor = 2;

using Bytes = test::FirmwareBytes;
using test::LowMemory;
using test::put;
using test::seal;

Bytes floating_pointer(uint64_t table, uint8_t default_configuration = 0) {
    Bytes bytes = {'_', 'M', 'P', '_'};
    put(bytes, table, 4);
    bytes.push_back(1); // length in 16-byte units
    bytes.push_back(4); // revision 1.4
    bytes.push_back(0); // checksum, below
    bytes.push_back(default_configuration);
    put(bytes, 0, 4); // feature bytes 2-5
    seal(bytes, 10);
    return bytes;
}

Bytes processor(uint8_t apic_id, uint8_t flags) {
    Bytes bytes = {0, apic_id, 0x14, flags};
    put(bytes, 0x600, 4); // CPU signature
    put(bytes, 0x201, 4); // CPUID features
    put(bytes, 0, 8);     // reserved
    return bytes;
}

// The 8-byte entries the parser steps over: a bus, an I/O APIC, an I/O interrupt, a local
// interrupt.
const std::vector<Bytes> kOtherEntries = {
    {1, 0, 'I', 'S', 'A', ' ', ' ', ' '},
    {2, 0, 0x11, 1, 0x00, 0x00, 0xC0, 0xFE},
    {3, 0, 0, 0, 0, 4, 0, 4},
    {4, 3, 0, 0, 0, 0, 0xFF, 1},
};

// A configuration table with `entries` (each whole), its count, length and checksum right.
Bytes configuration_table(const std::vector<Bytes>& entries) {
    Bytes bytes = {'P', 'C', 'M', 'P'};
    put(bytes, 0, 2); // base table length, below
    bytes.push_back(4);
    bytes.push_back(0); // checksum, below
    for (const char c : std::string("BEDROCK TESTTABLE   ")) {
        bytes.push_back(static_cast<uint8_t>(c)); // OEM id (8), product id (12)
    }
    put(bytes, 0, 4);              // OEM table
    put(bytes, 0, 2);              // OEM table size
    put(bytes, entries.size(), 2); // entry count
    put(bytes, 0xFEE00000, 4);     // local APIC address
    put(bytes, 0, 4);              // extended table length and checksum, reserved
    for (const Bytes& entry : entries) {
        bytes.insert(bytes.end(), entry.begin(), entry.end());
    }
    const uint16_t length = static_cast<uint16_t>(bytes.size());
    std::memcpy(bytes.data() + 4, &length, 2);
    seal(bytes, 7);
    return bytes;
}

// Processors with these APIC ids, enabled, then the other entries.
std::vector<Bytes> enabled_processors(const std::vector<uint8_t>& apic_ids) {
    std::vector<Bytes> entries;
    for (const uint8_t id : apic_ids) {
        entries.push_back(processor(id, id == 0 ? kEnabled | kBootProcessor : kEnabled));
    }
    entries.insert(entries.end(), kOtherEntries.begin(), kOtherEntries.end());
    return entries;
}

std::vector<uint64_t> ids(const BootInfo& boot) {
    return std::vector<uint64_t>(boot.cpu_ids, boot.cpu_ids + boot.cpu_count);
}

// A BootInfo already holding one CPU, so tests can see that a refused table changes nothing.
BootInfo boot_with_cpu_42() {
    BootInfo boot;
    boot.cpu_ids[0] = 42;
    boot.cpu_count = 1;
    return boot;
}

// Reads the table `table`, placed at the end of `memory` (so that a read past it faults), through
// a floating pointer placed for it; the table's error or null.
const char* read_table(LowMemory& memory, const Bytes& table, BootInfo& boot) {
    const uint64_t address = memory.place_at_end(table);
    const MpCpus cpus = mp_read_cpus(memory.place_at(floating_pointer(address), 0), boot);
    return cpus.error;
}

TEST(MpTable, SearchAreasFollowTheBiosDataArea) {
    const MpSearchAreas usual = mp_search_areas(0x9FC0, 639);
    ASSERT_EQ(usual.count, 3u);
    EXPECT_EQ(usual.areas[0].base, 0x9FC00u); // the EBDA's first KiB
    EXPECT_EQ(usual.areas[0].length, 1024u);
    EXPECT_EQ(usual.areas[1].base, 0x9F800u); // the last KiB of 639 KiB of base memory
    EXPECT_EQ(usual.areas[1].length, 1024u);
    EXPECT_EQ(usual.areas[2].base, 0xF0000u); // the BIOS ROM
    EXPECT_EQ(usual.areas[2].length, 0x10000u);

    // No EBDA (segment 0, or at or past 640 KiB): base memory and the ROM only.
    for (const uint16_t no_ebda : {uint16_t{0}, uint16_t{0xA000}, uint16_t{0xF000}}) {
        const MpSearchAreas areas = mp_search_areas(no_ebda, 512);
        ASSERT_EQ(areas.count, 2u);
        EXPECT_EQ(areas.areas[0].base, 511u * 1024);
        EXPECT_EQ(areas.areas[1].base, 0xF0000u);
    }
    // An EBDA in the last KiB before 640 KiB is searched only up to there.
    const MpSearchAreas short_ebda = mp_search_areas(0x9FF0, 640);
    EXPECT_EQ(short_ebda.areas[0].length, 256u);
    EXPECT_EQ(short_ebda.areas[1].base, 639u * 1024);
    // A base memory size of 0 or beyond 640 KiB is taken as 639 KiB.
    EXPECT_EQ(mp_search_areas(0, 0).areas[0].base, 638u * 1024);
    EXPECT_EQ(mp_search_areas(0, 641).areas[0].base, 638u * 1024);
}

TEST(MpTable, FloatingPointerIsFoundInEachSearchArea) {
    LowMemory memory(kArenaSize);
    const Bytes pointer = floating_pointer(0x12345678);
    MpSearchAreas areas;
    areas.count = 3;
    areas.areas[0] = {memory.address(0x0000), 1024};    // the EBDA's first KiB
    areas.areas[1] = {memory.address(0x1000), 1024};    // the last KiB of base memory
    areas.areas[2] = {memory.address(0x2000), 0x10000}; // the BIOS ROM
    EXPECT_EQ(mp_find_floating_pointer(areas), 0u);

    const uint64_t in_rom = memory.place_at(pointer, 0x2000 + 0xFFF0); // its last paragraph
    EXPECT_EQ(mp_find_floating_pointer(areas), in_rom);
    const uint64_t in_base_memory = memory.place_at(pointer, 0x1000 + 0x200);
    EXPECT_EQ(mp_find_floating_pointer(areas), in_base_memory);
    const uint64_t in_ebda = memory.place_at(pointer, 0x0000 + 0x3F0);
    EXPECT_EQ(mp_find_floating_pointer(areas), in_ebda);
}

TEST(MpTable, FloatingPointerMustBeAlignedWholeAndChecksummed) {
    LowMemory memory(kArenaSize);
    MpSearchAreas areas;
    areas.count = 1;
    areas.areas[0] = {memory.address(0), 1024};

    Bytes bad_checksum = floating_pointer(0x12345678);
    bad_checksum[10] ^= 1;
    memory.place_at(bad_checksum, 0x10);
    Bytes bad_length = floating_pointer(0x12345678);
    bad_length[8] = 2;
    seal(bad_length, 10);
    memory.place_at(bad_length, 0x20);
    memory.place_at(floating_pointer(0x12345678), 0x38);     // not on a 16-byte boundary
    memory.place_at(floating_pointer(0x12345678), 1024 - 8); // runs past the area
    EXPECT_EQ(mp_find_floating_pointer(areas), 0u);
    EXPECT_FALSE(mp_floating_pointer_valid(memory.address(0x10)));
    EXPECT_FALSE(mp_floating_pointer_valid(memory.address(0x20)));

    BootInfo boot = boot_with_cpu_42();
    const MpCpus cpus = mp_read_cpus(memory.address(0x10), boot);
    EXPECT_STREQ(cpus.error, "no valid MP floating pointer structure");
    EXPECT_EQ(ids(boot), (std::vector<uint64_t>{42}));
    EXPECT_FALSE(mp_read_cpus(0, boot).ok());
}

TEST(MpTable, EnabledProcessorsAreListedInTableOrderAndDisabledOnesCounted) {
    LowMemory memory(kArenaSize);
    std::vector<Bytes> entries = {processor(0, kEnabled | kBootProcessor), processor(1, 0),
                                  processor(6, kEnabled), processor(3, kEnabled),
                                  processor(2, kBootProcessor)};
    entries.insert(entries.end(), kOtherEntries.begin(), kOtherEntries.end());
    const uint64_t table = memory.place_at(configuration_table(entries), 0x1000);
    BootInfo boot = boot_with_cpu_42();
    boot.cpus_left_off = 5;
    const MpCpus cpus = mp_read_cpus(memory.place_at(floating_pointer(table), 0), boot);
    ASSERT_TRUE(cpus.ok()) << cpus.error;
    test::expect_boot_cpus(boot, {0, 6, 3});
    EXPECT_EQ(cpus.disabled, 2u);
    EXPECT_EQ(cpus.table, table);
    EXPECT_EQ(cpus.default_configuration, 0u);
    EXPECT_EQ(cpus.local_apic_address, 0xFEE00000u);
}

TEST(MpTable, ProcessorsListedTwiceAreStartedOnce) {
    LowMemory memory(kArenaSize);
    BootInfo boot;
    ASSERT_EQ(read_table(memory, configuration_table(enabled_processors({0, 1, 1, 2, 0})), boot),
              nullptr);
    EXPECT_EQ(ids(boot), test::first_boot_cpus({0, 1, 2}));
    test::expect_boot_cpus(boot, {0, 1, 1, 2, 0});
}

// An MP table names its processors by 8-bit local APIC ids: 256 CPUs at most. Up to 10 more
// than the kernel keeps are described, as many as the ids allow.
TEST(MpTable, MoreCpusThanTheKernelStartsAreCountedAsLeftOff) {
    constexpr size_t kApicIds = 256;
    if (kMaxBootCpus >= kApicIds) {
        GTEST_SKIP() << "the kernel keeps " << kMaxBootCpus
                     << " CPUs: an MP table cannot describe more than 256";
    }
    const size_t described = std::min(kMaxBootCpus + 10, kApicIds);
    LowMemory memory(kArenaSize);
    std::vector<uint8_t> apic_ids;
    for (size_t id = 0; id < described; ++id) {
        apic_ids.push_back(static_cast<uint8_t>(id));
    }
    BootInfo boot;
    ASSERT_EQ(read_table(memory, configuration_table(enabled_processors(apic_ids)), boot), nullptr);
    EXPECT_EQ(boot.cpu_count, kMaxBootCpus);
    EXPECT_EQ(boot.cpus_left_off, described - kMaxBootCpus);
    EXPECT_EQ(boot.cpu_ids[kMaxBootCpus - 1], kMaxBootCpus - 1);
}

TEST(MpTable, DefaultConfigurationsAreTwoCpus) {
    LowMemory memory(kArenaSize);
    // A table's address beside a default configuration is ignored.
    const uint64_t table = memory.place_at(configuration_table(enabled_processors({5, 6})), 0x1000);
    for (uint8_t configuration = 1; configuration <= kMpLastDefaultConfiguration; ++configuration) {
        BootInfo boot = boot_with_cpu_42();
        const MpCpus cpus =
            mp_read_cpus(memory.place_at(floating_pointer(table, configuration), 0), boot);
        ASSERT_TRUE(cpus.ok()) << cpus.error;
        EXPECT_EQ(cpus.default_configuration, configuration);
        EXPECT_EQ(cpus.table, 0u);
        EXPECT_EQ(cpus.local_apic_address, kMpDefaultLocalApicAddress);
        test::expect_boot_cpus(boot, {0, 1});
    }
    BootInfo boot = boot_with_cpu_42();
    const MpCpus undefined = mp_read_cpus(memory.place_at(floating_pointer(0, 8), 0), boot);
    EXPECT_STREQ(undefined.error, "the MP floating pointer names an undefined default "
                                  "configuration");
    const MpCpus neither = mp_read_cpus(memory.place_at(floating_pointer(0, 0), 0), boot);
    EXPECT_STREQ(neither.error, "the MP floating pointer names neither a configuration table nor "
                                "a default configuration");
    EXPECT_EQ(ids(boot), (std::vector<uint64_t>{42}));
}

TEST(MpTable, BadTableChecksumIsRefused) {
    LowMemory memory(kArenaSize);
    Bytes table = configuration_table(enabled_processors({0, 1}));
    table[50] ^= 0x40; // a byte of the first processor entry (its CPU signature)
    BootInfo boot = boot_with_cpu_42();
    EXPECT_STREQ(read_table(memory, table, boot), "the MP configuration table's checksum is wrong");
    EXPECT_EQ(ids(boot), (std::vector<uint64_t>{42}));
}

TEST(MpTable, EntriesPastTheTableLengthAreRefused) {
    LowMemory memory(kArenaSize);
    constexpr const char* kPastLength = "the MP configuration table's entries run past its length";
    // One entry more than the table holds.
    Bytes one_more = configuration_table(enabled_processors({0, 1}));
    ++one_more[34];
    seal(one_more, 7);
    BootInfo boot = boot_with_cpu_42();
    EXPECT_STREQ(read_table(memory, one_more, boot), kPastLength);
    // The last entry, a processor, cut to 8 bytes by the length.
    Bytes cut = configuration_table({processor(0, kEnabled), processor(1, kEnabled)});
    cut.resize(cut.size() - 12);
    const uint16_t length = static_cast<uint16_t>(cut.size());
    std::memcpy(cut.data() + 4, &length, 2);
    seal(cut, 7);
    EXPECT_STREQ(read_table(memory, cut, boot), kPastLength);
    EXPECT_EQ(ids(boot), (std::vector<uint64_t>{42}));
}

TEST(MpTable, UnknownEntryTypeIsRefused) {
    LowMemory memory(kArenaSize);
    std::vector<Bytes> entries = enabled_processors({0, 1});
    entries.push_back({5, 0, 0, 0, 0, 0, 0, 0}); // not a base table entry type
    BootInfo boot = boot_with_cpu_42();
    EXPECT_STREQ(read_table(memory, configuration_table(entries), boot),
                 "an MP configuration table entry has an unknown type (so no size)");
    EXPECT_EQ(ids(boot), (std::vector<uint64_t>{42}));
}

TEST(MpTable, DamagedHeadersAreRefused) {
    LowMemory memory(kArenaSize);
    BootInfo boot = boot_with_cpu_42();
    Bytes signature = configuration_table(enabled_processors({0}));
    signature[0] = 'X';
    seal(signature, 7);
    EXPECT_STREQ(read_table(memory, signature, boot),
                 "no MP configuration table (\"PCMP\") where the floating pointer points");
    Bytes short_length = configuration_table({});
    short_length[4] = 43; // shorter than the header
    seal(short_length, 7);
    EXPECT_STREQ(read_table(memory, short_length, boot),
                 "the MP configuration table's length is out of range");
    // A table whose header would reach 4 GiB is refused before it is read.
    EXPECT_STREQ(mp_read_cpus(memory.place_at(floating_pointer(0xFFFF'FFE0), 0), boot).error,
                 "the MP configuration table runs past 4 GiB");
    EXPECT_EQ(ids(boot), (std::vector<uint64_t>{42}));
}

TEST(MpTable, TableWithoutEnabledProcessorsListsNone) {
    LowMemory memory(kArenaSize);
    BootInfo boot = boot_with_cpu_42();
    ASSERT_EQ(read_table(memory, configuration_table(kOtherEntries), boot), nullptr);
    EXPECT_EQ(boot.cpu_count, 0u); // the caller names it and starts the boot CPU alone
}

} // namespace
} // namespace bedrock::kernel
