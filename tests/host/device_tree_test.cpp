// SPDX-License-Identifier: MIT
// Host tests of the device-tree parser (kernel/device_tree.cpp) on blobs built in memory.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "boot_cpus.h"
#include "kernel/device_tree.h"

namespace bedrock::kernel {
namespace {

// Writes a flattened device tree: reservation entries, then nodes and properties in order.
class FdtBuilder {
public:
    void reserve(uint64_t address, uint64_t size) { m_reservations.push_back({address, size}); }
    void begin(const std::string& name) {
        token(1);
        m_structure.insert(m_structure.end(), name.begin(), name.end());
        m_structure.push_back(0);
        pad();
    }
    void end() { token(2); }
    void property(const std::string& name, const std::vector<uint8_t>& value) {
        token(3);
        be32(m_structure, static_cast<uint32_t>(value.size()));
        be32(m_structure, string_offset(name));
        m_structure.insert(m_structure.end(), value.begin(), value.end());
        pad();
    }
    void cells_property(const std::string& name, const std::vector<uint32_t>& cells) {
        std::vector<uint8_t> value;
        for (uint32_t cell : cells) {
            be32(value, cell);
        }
        property(name, value);
    }
    void string_property(const std::string& name, const std::string& text) {
        std::vector<uint8_t> value(text.begin(), text.end());
        value.push_back(0);
        property(name, value);
    }
    // The finished blob, 8-byte aligned in `storage`; returns its address.
    uint64_t finish(std::vector<uint64_t>& storage) {
        token(9);
        std::vector<uint8_t> blob(40);
        const auto reservations = static_cast<uint32_t>(blob.size());
        for (const auto& [address, size] : m_reservations) {
            be64(blob, address);
            be64(blob, size);
        }
        be64(blob, 0);
        be64(blob, 0);
        const auto structure = static_cast<uint32_t>(blob.size());
        blob.insert(blob.end(), m_structure.begin(), m_structure.end());
        const auto strings = static_cast<uint32_t>(blob.size());
        blob.insert(blob.end(), m_strings.begin(), m_strings.end());
        const uint32_t header[10] = {kDeviceTreeMagic,
                                     static_cast<uint32_t>(blob.size()),
                                     structure,
                                     strings,
                                     reservations,
                                     17,
                                     16,
                                     0,
                                     static_cast<uint32_t>(m_strings.size()),
                                     static_cast<uint32_t>(m_structure.size())};
        for (int i = 0; i < 10; ++i) {
            put_be32(&blob[static_cast<size_t>(4 * i)], header[i]);
        }
        storage.assign((blob.size() + 7) / 8, 0);
        std::memcpy(storage.data(), blob.data(), blob.size());
        size = blob.size();
        return reinterpret_cast<uintptr_t>(storage.data());
    }
    size_t size = 0;

private:
    static void put_be32(uint8_t* p, uint32_t v) {
        p[0] = static_cast<uint8_t>(v >> 24);
        p[1] = static_cast<uint8_t>(v >> 16);
        p[2] = static_cast<uint8_t>(v >> 8);
        p[3] = static_cast<uint8_t>(v);
    }
    static void be32(std::vector<uint8_t>& out, uint32_t v) {
        out.resize(out.size() + 4);
        put_be32(&out[out.size() - 4], v);
    }
    static void be64(std::vector<uint8_t>& out, uint64_t v) {
        be32(out, static_cast<uint32_t>(v >> 32));
        be32(out, static_cast<uint32_t>(v));
    }
    void token(uint32_t t) { be32(m_structure, t); }
    void pad() {
        while (m_structure.size() % 4 != 0) {
            m_structure.push_back(0);
        }
    }
    uint32_t string_offset(const std::string& name) {
        const auto offset = static_cast<uint32_t>(m_strings.size());
        m_strings.insert(m_strings.end(), name.begin(), name.end());
        m_strings.push_back(0);
        return offset;
    }
    std::vector<std::pair<uint64_t, uint64_t>> m_reservations;
    std::vector<uint8_t> m_structure;
    std::vector<uint8_t> m_strings;
};

bool has(const RangeList<kMaxFirmwareRanges>& list, uint64_t base, uint64_t size) {
    for (const PhysRange& range : list) {
        if (range.base == base && range.size == size) {
            return true;
        }
    }
    return false;
}

// A tree like QEMU virt's, with two memory nodes (one with two reg entries), memory above
// 4 GiB, a reservation entry, /reserved-memory and bootargs.
FdtBuilder virt_like_tree() {
    FdtBuilder fdt;
    fdt.reserve(0x48000000, 0x10000);
    fdt.begin("");
    fdt.cells_property("#address-cells", {2});
    fdt.cells_property("#size-cells", {2});
    fdt.begin("memory@40000000");
    fdt.string_property("device_type", "memory");
    fdt.cells_property("reg", {0, 0x40000000, 0, 0x40000000, 0x1, 0x00000000, 0, 0x20000000});
    fdt.end();
    fdt.begin("ram-bank@200000000"); // named otherwise, typed memory
    fdt.cells_property("reg", {0x2, 0, 0x1, 0});
    fdt.string_property("device_type", "memory");
    fdt.end();
    fdt.begin("reserved-memory");
    fdt.cells_property("#address-cells", {1});
    fdt.cells_property("#size-cells", {1});
    fdt.begin("secure@4f000000");
    fdt.cells_property("reg", {0x4f000000, 0x100000});
    fdt.end();
    fdt.end();
    fdt.begin("chosen");
    fdt.string_property("bootargs", "bedrock test=1");
    fdt.end();
    fdt.begin("pl011@9000000");
    fdt.cells_property("reg", {0, 0x09000000, 0, 0x1000}); // not memory
    fdt.end();
    fdt.end();
    return fdt;
}

TEST(DeviceTree, AllMemoryNodesAndEntries) {
    FdtBuilder fdt = virt_like_tree();
    std::vector<uint64_t> storage;
    const uint64_t blob = fdt.finish(storage);
    BootInfo boot;
    const BootParseResult result = parse_device_tree(blob, fdt.size, boot);
    ASSERT_TRUE(result.ok()) << result.error;
    EXPECT_STREQ(boot.firmware, "device tree");
    EXPECT_EQ(boot.ram.count(), 3u);
    EXPECT_TRUE(has(boot.ram, 0x40000000, 0x40000000));
    EXPECT_TRUE(has(boot.ram, 0x100000000, 0x20000000));
    EXPECT_TRUE(has(boot.ram, 0x200000000, 0x100000000));
    EXPECT_TRUE(has(boot.reserved, blob, fdt.size));
    EXPECT_TRUE(has(boot.reserved, 0x48000000, 0x10000));
    EXPECT_TRUE(has(boot.reserved, 0x4f000000, 0x100000));
    EXPECT_EQ(boot.reserved.count(), 3u);
    EXPECT_STREQ(boot.command_line, "bedrock test=1");
}

TEST(DeviceTree, DefaultCellsAreTwoAndOne) {
    FdtBuilder fdt;
    fdt.begin("");
    fdt.begin("memory");
    fdt.string_property("device_type", "memory");
    fdt.cells_property("reg", {0, 0x80000000, 0x10000000});
    fdt.end();
    fdt.end();
    std::vector<uint64_t> storage;
    const uint64_t blob = fdt.finish(storage);
    BootInfo boot;
    ASSERT_TRUE(parse_device_tree(blob, fdt.size, boot).ok());
    ASSERT_EQ(boot.ram.count(), 1u);
    EXPECT_TRUE(has(boot.ram, 0x80000000, 0x10000000));
}

TEST(DeviceTree, OneCellAddresses) {
    FdtBuilder fdt;
    fdt.begin("");
    fdt.cells_property("#address-cells", {1});
    fdt.cells_property("#size-cells", {1});
    fdt.begin("memory@0");
    fdt.string_property("device_type", "memory");
    fdt.cells_property("reg", {0x0, 0x8000000, 0x10000000, 0x8000000});
    fdt.end();
    fdt.end();
    std::vector<uint64_t> storage;
    const uint64_t blob = fdt.finish(storage);
    BootInfo boot;
    ASSERT_TRUE(parse_device_tree(blob, fdt.size, boot).ok());
    EXPECT_EQ(boot.ram.count(), 2u);
    EXPECT_TRUE(has(boot.ram, 0x10000000, 0x8000000));
}

class DeviceTreeMalformed : public ::testing::Test {
protected:
    void SetUp() override {
        fdt = virt_like_tree();
        address = fdt.finish(storage);
        bytes = reinterpret_cast<uint8_t*>(storage.data());
    }
    void set_be32(size_t offset, uint32_t value) {
        bytes[offset] = static_cast<uint8_t>(value >> 24);
        bytes[offset + 1] = static_cast<uint8_t>(value >> 16);
        bytes[offset + 2] = static_cast<uint8_t>(value >> 8);
        bytes[offset + 3] = static_cast<uint8_t>(value);
    }
    uint32_t be32(size_t offset) const {
        return (uint32_t{bytes[offset]} << 24) | (uint32_t{bytes[offset + 1]} << 16) |
               (uint32_t{bytes[offset + 2]} << 8) | bytes[offset + 3];
    }
    bool parses() {
        BootInfo boot;
        return parse_device_tree(address, fdt.size, boot).ok();
    }
    FdtBuilder fdt;
    std::vector<uint64_t> storage;
    uint64_t address = 0;
    uint8_t* bytes = nullptr;
};

TEST_F(DeviceTreeMalformed, BadMagic) {
    set_be32(0, 0x12345678);
    EXPECT_FALSE(parses());
}

TEST_F(DeviceTreeMalformed, TotalSizeLargerThanTheBuffer) {
    set_be32(4, static_cast<uint32_t>(fdt.size + 64));
    EXPECT_FALSE(parses());
}

TEST_F(DeviceTreeMalformed, StructureOffsetOutOfRange) {
    set_be32(8, 0xFFFFFF00);
    EXPECT_FALSE(parses());
}

TEST_F(DeviceTreeMalformed, TruncatedStructureBlock) {
    set_be32(36, 16); // structure size: a few tokens, no END
    EXPECT_FALSE(parses());
}

TEST_F(DeviceTreeMalformed, PropertyLengthPastTheEnd) {
    // The first property follows the root's BEGIN_NODE ("" padded to 4): token, length.
    const uint32_t structure = be32(8);
    ASSERT_EQ(be32(structure + 8), 3u); // PROP
    set_be32(structure + 12, 0x7FFFFFF0);
    EXPECT_FALSE(parses());
}

TEST_F(DeviceTreeMalformed, PropertyNameOffsetOutsideStrings) {
    const uint32_t structure = be32(8);
    set_be32(structure + 16, 0xFFFFFF);
    EXPECT_FALSE(parses());
}

TEST_F(DeviceTreeMalformed, UnterminatedStrings) {
    const uint32_t strings = be32(12);
    const uint32_t strings_size = be32(32);
    for (uint32_t i = 0; i < strings_size; ++i) {
        bytes[strings + i] = 'x';
    }
    EXPECT_FALSE(parses());
}

TEST(DeviceTree, TooManyMemoryEntriesIsAClearError) {
    FdtBuilder fdt;
    fdt.begin("");
    fdt.begin("memory");
    fdt.string_property("device_type", "memory");
    std::vector<uint32_t> reg;
    for (uint32_t i = 0; i <= kMaxFirmwareRanges; ++i) {
        reg.insert(reg.end(), {0, 0x40000000 + i * 0x100000, 0x1000});
    }
    fdt.cells_property("reg", reg);
    fdt.end();
    fdt.end();
    std::vector<uint64_t> storage;
    const uint64_t blob = fdt.finish(storage);
    BootInfo boot;
    const BootParseResult result = parse_device_tree(blob, fdt.size, boot);
    ASSERT_FALSE(result.ok());
    EXPECT_STREQ(result.error, "more than 128 separate RAM ranges (the kernel's limit)");
}

// 128 adjacent 1 MiB /memory nodes, as a firmware that lists each bank writes them, are one RAM
// range, and so are more of them than the limit.
TEST(DeviceTree, AdjacentMemoryNodesBeyondTheLimitAreOneRange) {
    FdtBuilder fdt;
    fdt.begin("");
    for (uint32_t i = 0; i < 2 * kMaxFirmwareRanges; ++i) {
        fdt.begin("memory");
        fdt.string_property("device_type", "memory");
        fdt.cells_property("reg", {0, 0x40000000 + i * 0x100000, 0x100000}); // cells: 2 and 1
        fdt.end();
    }
    fdt.end();
    std::vector<uint64_t> storage;
    const uint64_t blob = fdt.finish(storage);
    BootInfo boot;
    const BootParseResult result = parse_device_tree(blob, fdt.size, boot);
    ASSERT_TRUE(result.ok()) << result.error;
    ASSERT_EQ(boot.ram.count(), 1u);
    EXPECT_TRUE(has(boot.ram, 0x40000000, 2 * kMaxFirmwareRanges * 0x100000));
}

// /cpus with `address_cells` cells per reg, one cpu@N node per entry of `ids` (a cpu-map node
// first, as QEMU writes it).
void add_cpus(FdtBuilder& fdt, uint32_t address_cells, const std::vector<uint64_t>& ids,
              const std::vector<std::string>& statuses = {}) {
    fdt.begin("cpus");
    fdt.cells_property("#address-cells", {address_cells});
    fdt.cells_property("#size-cells", {0});
    fdt.begin("cpu-map");
    fdt.begin("socket0");
    fdt.cells_property("cpu", {0x8004});
    fdt.end();
    fdt.end();
    for (size_t i = 0; i < ids.size(); ++i) {
        fdt.begin("cpu@" + std::to_string(ids[i]));
        if (address_cells == 2) {
            fdt.cells_property(
                "reg", {static_cast<uint32_t>(ids[i] >> 32), static_cast<uint32_t>(ids[i])});
        } else {
            fdt.cells_property("reg", {static_cast<uint32_t>(ids[i])});
        }
        fdt.string_property("enable-method", "psci");
        fdt.string_property("compatible", "arm,cortex-a57");
        if (i < statuses.size()) {
            fdt.string_property("status", statuses[i]);
        }
        fdt.string_property("device_type", "cpu"); // after reg: properties come in any order
        fdt.end();
    }
    fdt.end();
}

void add_psci(FdtBuilder& fdt) {
    fdt.begin("psci");
    fdt.cells_property("cpu_on", {0xc4000003});
    fdt.string_property("method", "hvc");
    const std::string compatible("arm,psci-1.0\0arm,psci-0.2\0arm,psci", 34);
    fdt.string_property("compatible", compatible);
    fdt.end();
}

void add_gic_and_timer(FdtBuilder& fdt, const std::string& compatible) {
    fdt.begin("intc@8000000");
    fdt.cells_property("reg", {0, 0x08000000, 0, 0x10000, 0, 0x08010000, 0, 0x10000});
    fdt.string_property("compatible", compatible);
    fdt.property("interrupt-controller", {});
    fdt.begin("v2m@8020000"); // a child with its own reg, not the controller's
    fdt.cells_property("reg", {0, 0x08020000, 0, 0x1000});
    fdt.string_property("compatible", "arm,gic-v2m-frame");
    fdt.end();
    fdt.end();
    fdt.begin("timer");
    fdt.cells_property("interrupts", {1, 13, 0xf04, 1, 14, 0xf04, 1, 11, 0xf04, 1, 10, 0xf04});
    fdt.string_property("compatible", std::string("arm,armv8-timer\0arm,armv7-timer", 31));
    fdt.end();
}

BootInfo parse(FdtBuilder& fdt) {
    std::vector<uint64_t> storage;
    const uint64_t blob = fdt.finish(storage);
    BootInfo boot;
    const BootParseResult result = parse_device_tree(blob, fdt.size, boot);
    EXPECT_TRUE(result.ok()) << result.error;
    return boot;
}

// Every GICv2 compatible of the binding is a GICv2 (a GIC named arm,cortex-a7-gic alone left
// the interrupt tests skipped).
TEST(DeviceTree, EveryGicV2CompatibleIsAGicV2) {
    for (const char* compatible : {"arm,cortex-a7-gic", "arm,gic-400", "arm,pl390"}) {
        FdtBuilder fdt;
        fdt.begin("");
        fdt.cells_property("#address-cells", {2});
        fdt.cells_property("#size-cells", {2});
        add_gic_and_timer(fdt, compatible);
        add_cpus(fdt, 1, {0});
        fdt.end();
        EXPECT_EQ(parse(fdt).interrupt_controller.kind, InterruptControllerKind::GicV2)
            << compatible;
    }
}

TEST(DeviceTree, CpusPsciGicAndTimerLikeQemuVirt) {
    FdtBuilder fdt;
    fdt.begin("");
    fdt.cells_property("#address-cells", {2});
    fdt.cells_property("#size-cells", {2});
    add_psci(fdt);
    add_gic_and_timer(fdt, "arm,cortex-a15-gic");
    add_cpus(fdt, 1, {0, 1, 2, 3});
    fdt.end();
    const BootInfo boot = parse(fdt);
    test::expect_boot_cpus(boot, {0, 1, 2, 3});
    EXPECT_EQ(boot.psci_conduit, PsciConduit::Hvc);
    EXPECT_EQ(boot.psci_cpu_on, 0xC4000003u);
    EXPECT_EQ(boot.interrupt_controller.kind, InterruptControllerKind::GicV2);
    EXPECT_EQ(boot.interrupt_controller.distributor.base, 0x08000000u);
    EXPECT_EQ(boot.interrupt_controller.distributor.size, 0x10000u);
    ASSERT_EQ(boot.interrupt_controller.per_cpu_count, 1u);
    EXPECT_EQ(boot.interrupt_controller.per_cpu[0].base, 0x08010000u);
    EXPECT_EQ(boot.interrupt_controller.per_cpu[0].size, 0x10000u);
    EXPECT_EQ(boot.timer_interrupt, 30u);
}

TEST(DeviceTree, CpusWithTwoAddressCellsKeepAff3) {
    FdtBuilder fdt;
    fdt.begin("");
    add_cpus(fdt, 2, {0x0000000100000000, 0x0000000100000101});
    fdt.end();
    test::expect_boot_cpus(parse(fdt), {0x0000000100000000, 0x0000000100000101});
}

TEST(DeviceTree, DisabledAndFailedCpusAreSkipped) {
    FdtBuilder fdt;
    fdt.begin("");
    add_cpus(fdt, 1, {0, 1, 2, 3, 4}, {"okay", "disabled", "ok", "fail", ""});
    fdt.end();
    test::expect_boot_cpus(parse(fdt), {0, 2});
}

// A CPU described twice (a copy-and-paste slip in a device tree) is one CPU, started once.
TEST(DeviceTree, ACpuListedTwiceIsOneCpu) {
    FdtBuilder fdt;
    fdt.begin("");
    add_cpus(fdt, 1, {0, 1, 1, 2, 0});
    fdt.end();
    const BootInfo boot = parse(fdt);
    EXPECT_EQ(test::boot_cpu_ids(boot), test::first_boot_cpus({0, 1, 2}));
    test::expect_boot_cpus(boot, {0, 1, 1, 2, 0});
}

// A node whose status is not "okay"/"ok" is neither RAM nor reserved nor a device, wherever
// its status stands among its properties.
TEST(DeviceTree, DisabledMemoryReservedAndDeviceNodesAreSkipped) {
    FdtBuilder fdt;
    fdt.begin("");
    fdt.cells_property("#address-cells", {2});
    fdt.cells_property("#size-cells", {2});
    fdt.begin("memory@40000000");
    fdt.string_property("device_type", "memory");
    fdt.cells_property("reg", {0, 0x40000000, 0, 0x8000000});
    fdt.string_property("status", "okay");
    fdt.end();
    fdt.begin("dram@80000000");
    fdt.string_property("status", "disabled");
    fdt.string_property("device_type", "memory");
    fdt.cells_property("reg", {0, 0x80000000, 0, 0x10000000});
    fdt.end();
    fdt.begin("memory@a0000000");
    fdt.string_property("device_type", "memory");
    fdt.cells_property("reg", {0, 0xa0000000, 0, 0x10000000});
    fdt.string_property("status", "fail");
    fdt.end();
    fdt.begin("reserved-memory");
    fdt.cells_property("#address-cells", {2});
    fdt.cells_property("#size-cells", {2});
    fdt.begin("unused@44000000");
    fdt.cells_property("reg", {0, 0x44000000, 0, 0x100000});
    fdt.string_property("status", "disabled");
    fdt.end();
    fdt.begin("used@45000000");
    fdt.string_property("status", "ok");
    fdt.cells_property("reg", {0, 0x45000000, 0, 0x100000});
    fdt.end();
    fdt.end();
    fdt.begin("intc@8000000");
    fdt.string_property("compatible", "arm,cortex-a15-gic");
    fdt.cells_property("reg", {0, 0x08000000, 0, 0x10000, 0, 0x08010000, 0, 0x10000});
    fdt.string_property("status", "disabled");
    fdt.end();
    fdt.end();
    std::vector<uint64_t> storage;
    const uint64_t blob = fdt.finish(storage);
    BootInfo boot;
    ASSERT_TRUE(parse_device_tree(blob, fdt.size, boot).ok());
    ASSERT_EQ(boot.ram.count(), 1u);
    EXPECT_TRUE(has(boot.ram, 0x40000000, 0x8000000));
    EXPECT_FALSE(has(boot.reserved, 0x44000000, 0x100000));
    EXPECT_TRUE(has(boot.reserved, 0x45000000, 0x100000));
    EXPECT_EQ(boot.reserved.count(), 2u); // the blob and used@45000000
    EXPECT_EQ(boot.interrupt_controller.kind, InterruptControllerKind::None);
}

// A /reserved-memory child with `no-map` (a property with no value) is reserved and also listed
// as not to be mapped; a child without it is only reserved; a disabled one is neither.
TEST(DeviceTree, NoMapReservedMemoryIsReservedAndListedAsNotMapped) {
    FdtBuilder fdt;
    fdt.begin("");
    fdt.begin("reserved-memory");
    fdt.cells_property("#address-cells", {2});
    fdt.cells_property("#size-cells", {2});
    fdt.begin("secure@4e001800");
    fdt.property("no-map", {});
    fdt.cells_property("reg", {0, 0x4e001800, 0, 0x3000});
    fdt.end();
    fdt.begin("shared@4f000000");
    fdt.cells_property("reg", {0, 0x4f000000, 0, 0x100000});
    fdt.end();
    fdt.begin("unused@4c000000");
    fdt.string_property("status", "disabled");
    fdt.property("no-map", {});
    fdt.cells_property("reg", {0, 0x4c000000, 0, 0x100000});
    fdt.end();
    fdt.end();
    fdt.end();
    std::vector<uint64_t> storage;
    const uint64_t blob = fdt.finish(storage);
    BootInfo boot;
    const BootParseResult result = parse_device_tree(blob, fdt.size, boot);
    ASSERT_TRUE(result.ok()) << result.error;
    EXPECT_TRUE(has(boot.reserved, 0x4e001800, 0x3000));
    EXPECT_TRUE(has(boot.reserved, 0x4f000000, 0x100000));
    EXPECT_FALSE(has(boot.reserved, 0x4c000000, 0x100000));
    EXPECT_EQ(boot.reserved.count(), 3u); // the blob, secure@ and shared@
    ASSERT_EQ(boot.no_map.count(), 1u);
    EXPECT_TRUE(has(boot.no_map, 0x4e001800, 0x3000));
}

// A /reserved-memory without cells of its own is read with the root's (2 and 2 here), not the
// defaults 2 and 1, which read the MiB below as a range of 0 bytes.
TEST(DeviceTree, ReservedMemoryWithoutCellsUsesTheRoots) {
    FdtBuilder fdt;
    fdt.begin("");
    fdt.cells_property("#address-cells", {2});
    fdt.cells_property("#size-cells", {2});
    fdt.begin("reserved-memory");
    fdt.property("ranges", {});
    fdt.begin("fw@44000000");
    fdt.cells_property("reg", {0, 0x44000000, 0, 0x100000});
    fdt.property("no-map", {});
    fdt.end();
    fdt.end();
    fdt.end();
    const BootInfo boot = parse(fdt);
    EXPECT_TRUE(has(boot.reserved, 0x44000000, 0x100000));
    ASSERT_EQ(boot.no_map.count(), 1u);
    EXPECT_TRUE(has(boot.no_map, 0x44000000, 0x100000));
}

// A reg that is not a whole number of (address, size) entries is refused, naming its node: its
// last, partial entry was dropped unread.
TEST(DeviceTree, RegWithAPartialEntryIsRefused) {
    FdtBuilder fdt;
    fdt.begin("");
    fdt.cells_property("#address-cells", {2});
    fdt.cells_property("#size-cells", {2});
    fdt.begin("memory@40000000");
    fdt.string_property("device_type", "memory");
    fdt.cells_property("reg", {0, 0x40000000, 0, 0x8000000, 0, 0x50000000});
    fdt.end();
    fdt.end();
    std::vector<uint64_t> storage;
    const uint64_t blob = fdt.finish(storage);
    BootInfo boot;
    const BootParseResult result = parse_device_tree(blob, fdt.size, boot);
    ASSERT_FALSE(result.ok());
    EXPECT_STREQ(result.error, "device tree: `reg` is not a whole number of (address, size) "
                               "entries of its parent's #address-cells and #size-cells; cannot "
                               "boot");
    EXPECT_STREQ(result.node, "memory@40000000");
}

// No-map ranges that one plain reserved range joins into a single reserved range still count
// separately against the no-map list: one it cannot hold is an error, never a range mapped.
TEST(DeviceTree, TooManyNoMapRangesIsAClearError) {
    FdtBuilder fdt;
    fdt.begin("");
    fdt.begin("reserved-memory");
    fdt.cells_property("#address-cells", {1});
    fdt.cells_property("#size-cells", {1});
    fdt.begin("firmware@40000000");
    fdt.cells_property("reg", {0x40000000, 0x10000000});
    fdt.end();
    for (uint32_t i = 0; i <= kMaxFirmwareRanges; ++i) {
        fdt.begin("secure");
        fdt.property("no-map", {});
        fdt.cells_property("reg", {0x40000000 + i * 0x2000, 0x1000});
        fdt.end();
    }
    fdt.end();
    fdt.end();
    std::vector<uint64_t> storage;
    const uint64_t blob = fdt.finish(storage);
    BootInfo boot;
    const BootParseResult result = parse_device_tree(blob, fdt.size, boot);
    ASSERT_FALSE(result.ok());
    EXPECT_STREQ(result.error, "more than 128 separate no-map reserved ranges (the kernel's "
                               "limit): one of them would be mapped");
    EXPECT_EQ(boot.reserved.count(), 2u); // the blob and firmware@, holding every secure range
}

TEST(DeviceTree, CpusBeyondTheKernelsLimitAreCountedAsLeftOff) {
    std::vector<uint64_t> ids;
    for (uint64_t i = 0; i < kMaxBootCpus + 3; ++i) {
        ids.push_back((i / 16) << 8 | (i % 16)); // Aff1.Aff0, as on a multi-cluster machine
    }
    FdtBuilder fdt;
    fdt.begin("");
    add_cpus(fdt, 1, ids);
    fdt.end();
    const BootInfo boot = parse(fdt);
    EXPECT_EQ(boot.cpu_count, kMaxBootCpus);
    EXPECT_EQ(boot.cpus_left_off, 3u);
    EXPECT_EQ(boot.cpu_ids[kMaxBootCpus - 1], ids[kMaxBootCpus - 1]);
}

TEST(DeviceTree, WithoutPsciTheConduitIsNone) {
    FdtBuilder fdt;
    fdt.begin("");
    add_cpus(fdt, 1, {0, 1});
    fdt.end();
    const BootInfo boot = parse(fdt);
    test::expect_boot_cpus(boot, {0, 1});
    EXPECT_EQ(boot.psci_conduit, PsciConduit::None);
    EXPECT_EQ(boot.interrupt_controller.kind, InterruptControllerKind::None);
    EXPECT_EQ(boot.timer_interrupt, 0u);
}

TEST(DeviceTree, PsciZeroPointOneTakesCpuOnFromTheNode) {
    FdtBuilder fdt;
    fdt.begin("");
    fdt.begin("psci");
    fdt.string_property("compatible", "arm,psci");
    fdt.string_property("method", "smc");
    fdt.cells_property("cpu_on", {0x95c1ba60});
    fdt.end();
    fdt.end();
    const BootInfo boot = parse(fdt);
    EXPECT_EQ(boot.psci_conduit, PsciConduit::Smc);
    EXPECT_EQ(boot.psci_cpu_on, 0x95c1ba60u);
}

TEST(DeviceTree, PsciZeroPointOneWithoutCpuOnOrWithAnUnknownMethodIsUnusable) {
    for (const char* method : {"smc", "svc"}) {
        FdtBuilder fdt;
        fdt.begin("");
        fdt.begin("psci");
        fdt.string_property("compatible", "arm,psci");
        fdt.string_property("method", method);
        if (std::string(method) == "svc") {
            fdt.cells_property("cpu_on", {0x95c1ba60});
        }
        fdt.end();
        fdt.end();
        EXPECT_EQ(parse(fdt).psci_conduit, PsciConduit::None) << method;
    }
}

TEST(DeviceTree, GicV3GivesTheRedistributorRegion) {
    FdtBuilder fdt;
    fdt.begin("");
    fdt.cells_property("#size-cells", {2});
    fdt.begin("intc@8000000");
    fdt.string_property("compatible", "arm,gic-v3");
    fdt.cells_property("reg", {0, 0x08000000, 0, 0x10000, 0, 0x080a0000, 0, 0xf60000});
    fdt.end();
    fdt.end();
    const BootInfo boot = parse(fdt);
    EXPECT_EQ(boot.interrupt_controller.kind, InterruptControllerKind::GicV3);
    ASSERT_EQ(boot.interrupt_controller.per_cpu_count, 1u);
    EXPECT_EQ(boot.interrupt_controller.per_cpu[0].base, 0x080a0000u);
    EXPECT_EQ(boot.interrupt_controller.per_cpu[0].size, 0xf60000u);
}

// #redistributor-regions = <2>: both regions are kept, and the reg entry after them (GICC) is
// not taken for a third; beyond kMaxPerCpuRegions they are counted.
TEST(DeviceTree, GicV3GivesEveryRedistributorRegion) {
    for (const uint32_t regions : {2u, static_cast<uint32_t>(kMaxPerCpuRegions + 2)}) {
        FdtBuilder fdt;
        fdt.begin("");
        fdt.cells_property("#size-cells", {2});
        fdt.begin("intc@8000000");
        fdt.string_property("compatible", "arm,gic-v3");
        fdt.cells_property("#redistributor-regions", {regions});
        std::vector<uint32_t> reg = {0, 0x08000000, 0, 0x10000};
        for (uint32_t i = 0; i < regions; ++i) {
            reg.insert(reg.end(), {0x40 * i, 0x080a0000, 0, 0x20000});
        }
        reg.insert(reg.end(), {0, 0x08010000, 0, 0x10000}); // GICC
        fdt.cells_property("reg", reg);
        fdt.end();
        fdt.end();
        const InterruptController controller = parse(fdt).interrupt_controller;
        EXPECT_EQ(controller.kind, InterruptControllerKind::GicV3);
        const size_t kept = regions < kMaxPerCpuRegions ? regions : kMaxPerCpuRegions;
        ASSERT_EQ(controller.per_cpu_count, kept);
        EXPECT_EQ(controller.per_cpu_left_off, regions - kept);
        EXPECT_EQ(controller.per_cpu[1].base, 0x40'080a0000u);
        EXPECT_EQ(controller.per_cpu[kept - 1].size, 0x20000u);
    }
}

} // namespace
} // namespace bedrock::kernel
