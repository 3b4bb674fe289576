// SPDX-License-Identifier: MIT
// Host tests of the ACPI parser (kernel/acpi.cpp): RSDP search and checksums, the RSDT and XSDT
// paths, MADT CPU entries (xAPIC and x2APIC, enabled, online-capable, disabled, duplicates),
// more CPUs than the kernel starts, damaged tables that must be skipped, and the FADT's PM timer.
// Tables are built in host memory below 2 GiB (mmap MAP_32BIT, so that the RSDT's 32-bit
// addresses can hold them); host addresses stand in for physical ones.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "boot_cpus.h"
#include "kernel/acpi.h"
#include "support/low_memory.h"

namespace bedrock::kernel {
namespace {

constexpr size_t kArenaSize = 1 << 20;

using test::checksum_of;
using test::LowMemory;
using test::put;

// A table with a standard 36-byte header, `body` after it, and a correct checksum.
std::vector<uint8_t> table(const char* signature, const std::vector<uint8_t>& body) {
    std::vector<uint8_t> bytes(signature, signature + 4);
    put(bytes, 36 + body.size(), 4);
    bytes.push_back(1); // revision
    bytes.push_back(0); // checksum, below
    for (const char c : std::string("BEDRCKTESTTABLE\0\0\0\0\0\0\0\0\0\0", 26)) {
        bytes.push_back(static_cast<uint8_t>(c)); // OEM id, table id, revisions, creator
    }
    bytes.insert(bytes.end(), body.begin(), body.end());
    bytes[9] = checksum_of(bytes.data(), bytes.size());
    return bytes;
}

std::vector<uint8_t> rsdp(uint64_t rsdt, uint64_t xsdt, uint8_t revision) {
    std::vector<uint8_t> bytes;
    for (const char c : std::string("RSD PTR ")) {
        bytes.push_back(static_cast<uint8_t>(c));
    }
    bytes.push_back(0); // checksum
    for (int i = 0; i < 6; ++i) {
        bytes.push_back('O');
    }
    bytes.push_back(revision);
    put(bytes, rsdt, 4);
    bytes[8] = checksum_of(bytes.data(), 20);
    if (revision >= 2) {
        put(bytes, 36, 4);
        put(bytes, xsdt, 8);
        bytes.push_back(0); // extended checksum
        put(bytes, 0, 3);
        bytes[32] = checksum_of(bytes.data(), 36);
    }
    return bytes;
}

struct Cpu {
    uint32_t id;
    uint32_t flags;
    bool x2apic;
};

std::vector<uint8_t> madt(const std::vector<Cpu>& cpus) {
    std::vector<uint8_t> body;
    put(body, 0xFEE00000, 4); // local APIC address
    put(body, 1, 4);          // flags: PC-AT compatible
    // An I/O APIC entry first: entries the parser does not know are skipped by their length.
    body.insert(body.end(), {1, 12, 0, 0, 0, 0, 0xC0, 0xFE, 0, 0, 0, 0});
    uint8_t uid = 0;
    for (const Cpu& cpu : cpus) {
        if (cpu.x2apic) {
            body.insert(body.end(), {9, 16, 0, 0});
            put(body, cpu.id, 4);
            put(body, cpu.flags, 4);
            put(body, uid++, 4);
        } else {
            body.insert(body.end(), {0, 8, uid++, static_cast<uint8_t>(cpu.id)});
            put(body, cpu.flags, 4);
        }
    }
    return table("APIC", body);
}

std::vector<uint8_t> root(const char* signature, const std::vector<uint64_t>& tables,
                          unsigned entry_size) {
    std::vector<uint8_t> body;
    for (const uint64_t address : tables) {
        put(body, address, entry_size);
    }
    return table(signature, body);
}

std::vector<uint64_t> ids(const BootInfo& boot) {
    return std::vector<uint64_t>(boot.cpu_ids, boot.cpu_ids + boot.cpu_count);
}

// Online-capable CPUs (flags bit 1 without bit 0) are not there at boot: counted, not listed.
TEST(Acpi, RsdtRevision0ListsEnabledCpusAndCountsOnlineCapableOnes) {
    LowMemory memory(kArenaSize);
    const uint64_t facp = memory.place_next(table("FACP", std::vector<uint8_t>(80)));
    const uint64_t apic = memory.place_next(
        madt({{0, 1, false}, {1, 0, false}, {2, 2, false}, {3, 1, false}, {4, 3, false}}));
    const uint64_t rsdt = memory.place_next(root("RSDT", {facp, apic}, 4));
    const uint64_t pointer = memory.place_next(rsdp(rsdt, 0, 0));
    BootInfo boot;
    const AcpiCpus result = acpi_read_cpus(pointer, boot);
    ASSERT_TRUE(result.ok()) << result.error;
    EXPECT_EQ(result.local_apic_address, 0xFEE00000u);
    test::expect_boot_cpus(boot, {0, 3, 4}); // 1 is disabled, 2 online-capable
    EXPECT_EQ(result.online_capable, 1u);
}

TEST(Acpi, XsdtIsPreferredOverRsdt) {
    LowMemory memory(kArenaSize);
    const uint64_t old_apic = memory.place_next(madt({{7, 1, false}}));
    const uint64_t new_apic = memory.place_next(madt({{0, 1, false}, {1, 1, false}}));
    const uint64_t rsdt = memory.place_next(root("RSDT", {old_apic}, 4));
    // An XSDT at an odd offset: its 64-bit entries are unaligned.
    const uint64_t xsdt = memory.place_next(root("XSDT", {new_apic}, 8), 4);
    const uint64_t pointer = memory.place_next(rsdp(rsdt, xsdt, 2));
    BootInfo boot;
    ASSERT_TRUE(acpi_read_cpus(pointer, boot).ok());
    test::expect_boot_cpus(boot, {0, 1});
}

// An XSDT entry at or above 4 GiB, where the early map does not reach (unmapped here: a read
// would fault), or a table running past it, is skipped like a bad table; the next one is read.
TEST(Acpi, XsdtEntriesAbove4GiBAreSkippedUnread) {
    LowMemory memory(kArenaSize);
    const uint64_t apic = memory.place_next(madt({{0, 1, false}, {2, 1, false}}));
    const uint64_t xsdt = memory.place_next(
        root("XSDT", {uint64_t{1} << 32, (uint64_t{1} << 32) - 16, ~uint64_t{0} - 8, apic}, 8));
    const uint64_t pointer = memory.place_next(rsdp(0, xsdt, 2));
    BootInfo boot;
    ASSERT_TRUE(acpi_read_cpus(pointer, boot).ok());
    test::expect_boot_cpus(boot, {0, 2});
}

TEST(Acpi, DamagedXsdtFallsBackToRsdt) {
    LowMemory memory(kArenaSize);
    const uint64_t apic = memory.place_next(madt({{5, 1, false}}));
    const uint64_t rsdt = memory.place_next(root("RSDT", {apic}, 4));
    const uint64_t xsdt = memory.place_next(root("XSDT", {apic}, 8));
    memory.at(xsdt)[40] ^= 0xFF; // checksum now wrong
    const uint64_t pointer = memory.place_next(rsdp(rsdt, xsdt, 2));
    BootInfo boot;
    ASSERT_TRUE(acpi_read_cpus(pointer, boot).ok());
    test::expect_boot_cpus(boot, {5});
}

TEST(Acpi, X2ApicEntriesAndDuplicates) {
    LowMemory memory(kArenaSize);
    const uint64_t apic = memory.place_next(
        madt({{0, 1, false}, {1, 1, false}, {1, 1, true}, {300, 1, true}, {301, 0, true}}));
    const uint64_t xsdt = memory.place_next(root("XSDT", {apic}, 8));
    const uint64_t pointer = memory.place_next(rsdp(0, xsdt, 2));
    BootInfo boot;
    ASSERT_TRUE(acpi_read_cpus(pointer, boot).ok());
    EXPECT_EQ(ids(boot), test::first_boot_cpus({0, 1, 300})); // 301 is disabled
    test::expect_boot_cpus(boot, {0, 1, 1, 300});
}

TEST(Acpi, MoreCpusThanTheKernelStartsAreCountedAsLeftOff) {
    LowMemory memory(kArenaSize);
    std::vector<Cpu> cpus;
    for (uint32_t id = 0; id < kMaxBootCpus + 10; ++id) {
        cpus.push_back({id, 1, id >= 200});
    }
    const uint64_t apic = memory.place_next(madt(cpus));
    const uint64_t xsdt = memory.place_next(root("XSDT", {apic}, 8));
    const uint64_t pointer = memory.place_next(rsdp(0, xsdt, 2));
    BootInfo boot;
    ASSERT_TRUE(acpi_read_cpus(pointer, boot).ok());
    EXPECT_EQ(boot.cpu_count, kMaxBootCpus);
    EXPECT_EQ(boot.cpus_left_off, 10u);
    EXPECT_EQ(described_cpu_count(boot), kMaxBootCpus + 10); // what the boot line names
    EXPECT_EQ(boot.cpu_ids[kMaxBootCpus - 1], kMaxBootCpus - 1);
}

TEST(Acpi, BadChecksumsAreRefused) {
    LowMemory memory(kArenaSize);
    const uint64_t apic = memory.place_next(madt({{0, 1, false}}));
    const uint64_t rsdt = memory.place_next(root("RSDT", {apic}, 4));

    std::vector<uint8_t> broken_v1 = rsdp(rsdt, 0, 0);
    broken_v1[8] ^= 1;
    BootInfo boot;
    boot.cpu_count = 1;
    boot.cpu_ids[0] = 42;
    EXPECT_FALSE(acpi_read_cpus(memory.place_next(broken_v1), boot).ok());
    EXPECT_EQ(ids(boot), (std::vector<uint64_t>{42})); // unchanged on error

    std::vector<uint8_t> broken_extended = rsdp(rsdt, 0, 2);
    broken_extended[32] ^= 1; // the first 20 bytes still sum to 0
    EXPECT_FALSE(acpi_rsdp_valid(memory.place_next(broken_extended)));

    memory.at(apic)[9] ^= 1; // the MADT's own checksum
    const AcpiCpus result = acpi_read_cpus(memory.place_next(rsdp(rsdt, 0, 0)), boot);
    EXPECT_FALSE(result.ok());
    EXPECT_STREQ(result.error, "no valid ACPI MADT");
    EXPECT_EQ(ids(boot), (std::vector<uint64_t>{42}));
}

TEST(Acpi, TruncatedMadtEntryEndsTheList) {
    LowMemory memory(kArenaSize);
    std::vector<uint8_t> apic_bytes = madt({{0, 1, false}, {1, 1, false}});
    apic_bytes.insert(apic_bytes.end(), {0, 40, 0, 2, 1, 0, 0, 0}); // length runs past the end
    const uint32_t length = static_cast<uint32_t>(apic_bytes.size());
    std::memcpy(apic_bytes.data() + 4, &length, 4);
    apic_bytes[9] = 0;
    apic_bytes[9] = checksum_of(apic_bytes.data(), apic_bytes.size());
    const uint64_t apic = memory.place_next(apic_bytes);
    const uint64_t rsdt = memory.place_next(root("RSDT", {apic}, 4));
    BootInfo boot;
    ASSERT_TRUE(acpi_read_cpus(memory.place_next(rsdp(rsdt, 0, 0)), boot).ok());
    test::expect_boot_cpus(boot, {0, 1});
}

TEST(Acpi, RsdpSearchFindsOnlyValidPointersOn16ByteBoundaries) {
    LowMemory memory(kArenaSize);
    const uint64_t apic = memory.place_next(madt({{0, 1, false}}));
    const uint64_t rsdt = memory.place_next(root("RSDT", {apic}, 4));
    const uint64_t area = memory.place_next(std::vector<uint8_t>(4096));
    // A signature with a wrong checksum first, then a valid RSDP that is not 16-byte aligned,
    // then the real one.
    std::vector<uint8_t> bad = rsdp(rsdt, 0, 0);
    bad[8] ^= 1;
    std::memcpy(memory.at(area + 32), bad.data(), bad.size());
    const std::vector<uint8_t> good = rsdp(rsdt, 0, 0);
    std::memcpy(memory.at(area + 520), good.data(), good.size());
    EXPECT_EQ(acpi_find_rsdp(area, 4096), 0u);
    std::memcpy(memory.at(area + 1024), good.data(), good.size());
    EXPECT_EQ(acpi_find_rsdp(area, 4096), area + 1024);
    EXPECT_EQ(acpi_find_rsdp(area, 1024 + 19), 0u); // does not fit in the area
    EXPECT_EQ(acpi_find_rsdp(area + 1, 4095), area + 1024);
}

// A FADT of ACPI 2.0+ length (244 bytes) with PM_TMR_BLK, Flags and X_PM_TMR_BLK set.
std::vector<uint8_t> fadt(uint32_t timer_port, uint32_t flags, uint64_t extended_port) {
    std::vector<uint8_t> body(244 - 36);
    for (unsigned i = 0; i < 4; ++i) {
        body[76 - 36 + i] = static_cast<uint8_t>(timer_port >> (8 * i));
        body[112 - 36 + i] = static_cast<uint8_t>(flags >> (8 * i));
    }
    body[208 - 36] = 1; // X_PM_TMR_BLK in system I/O space
    body[208 - 36 + 1] = 32;
    for (unsigned i = 0; i < 8; ++i) {
        body[212 - 36 + i] = static_cast<uint8_t>(extended_port >> (8 * i));
    }
    return table("FACP", body);
}

TEST(Acpi, PmTimerPortAndWidthFromTheFadt) {
    LowMemory memory(kArenaSize);
    const uint64_t apic = memory.place_next(madt({{0, 1, false}}));
    const uint64_t facp = memory.place_next(fadt(0x608, 0, 0));
    const uint64_t rsdt = memory.place_next(root("RSDT", {apic, facp}, 4));
    const AcpiPmTimer timer = acpi_find_pm_timer(memory.place_next(rsdp(rsdt, 0, 0)));
    EXPECT_EQ(timer.port, 0x608u);
    EXPECT_EQ(timer.bits, 24u);

    // PM_TMR_BLK 0: X_PM_TMR_BLK's I/O port; TMR_VAL_EXT: 32 bits.
    const uint64_t extended = memory.place_next(fadt(0, 1u << 8, 0xB008));
    const uint64_t xsdt = memory.place_next(root("XSDT", {extended}, 8));
    const AcpiPmTimer wide = acpi_find_pm_timer(memory.place_next(rsdp(rsdt, xsdt, 2)));
    EXPECT_EQ(wide.port, 0xB008u);
    EXPECT_EQ(wide.bits, 32u);
}

TEST(Acpi, NoPmTimerWithoutAValidFadt) {
    LowMemory memory(kArenaSize);
    const uint64_t apic = memory.place_next(madt({{0, 1, false}}));
    const uint64_t rsdt = memory.place_next(root("RSDT", {apic}, 4));
    EXPECT_EQ(acpi_find_pm_timer(memory.place_next(rsdp(rsdt, 0, 0))).port, 0u);
    const uint64_t facp = memory.place_next(fadt(0x608, 0, 0));
    memory.at(facp)[50] ^= 0xFF; // checksum now wrong
    const uint64_t damaged = memory.place_next(root("RSDT", {facp}, 4));
    EXPECT_EQ(acpi_find_pm_timer(memory.place_next(rsdp(damaged, 0, 0))).port, 0u);
    EXPECT_EQ(acpi_find_pm_timer(0).port, 0u);
}

} // namespace
} // namespace bedrock::kernel
