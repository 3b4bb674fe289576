// SPDX-License-Identifier: MIT
// Device-tree parsing; see device_tree.h. Layout (all big-endian): a 40-byte header; the memory
// reservation block of {u64 address, u64 size} ending with a zero pair; the structure block of
// 4-byte-aligned tokens BEGIN_NODE (name), END_NODE, PROP (u32 length, u32 name offset, value),
// NOP, END; the strings block of NUL-terminated property names.
#include "kernel/device_tree.h"

#include "kernel/boot_protocol_support.h"

namespace bedrock::kernel {
namespace {

constexpr uint32_t kTokenBeginNode = 1;
constexpr uint32_t kTokenEndNode = 2;
constexpr uint32_t kTokenProperty = 3;
constexpr uint32_t kTokenNop = 4;
constexpr uint32_t kTokenEnd = 9;
constexpr uint32_t kHeaderSize = 40;
constexpr uint32_t kMaxCells = 2; // addresses and sizes of at most 64 bits

uint32_t read_be32(const uint8_t* p) {
    return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

uint64_t read_be64(const uint8_t* p) {
    return (uint64_t{read_be32(p)} << 32) | read_be32(p + 4);
}

bool equals(const char* a, const char* b) {
    while (*a != '\0' && *a == *b) {
        ++a;
        ++b;
    }
    return *a == *b;
}

// True if the node name is `base` or `base@unit-address`.
bool is_node_named(const char* name, const char* base) {
    while (*base != '\0' && *name == *base) {
        ++name;
        ++base;
    }
    return *base == '\0' && (*name == '\0' || *name == '@');
}

// One property's value, as found in the structure block.
struct Property {
    const uint8_t* value = nullptr;
    uint32_t length = 0;

    [[nodiscard]] bool present() const { return value != nullptr; }
    // True if the value is a list of NUL-terminated strings (`compatible`, `status`) holding
    // `text`; a single string is a list of one.
    [[nodiscard]] bool lists(const char* text) const {
        uint32_t at = 0;
        while (at < length) {
            const char* entry = reinterpret_cast<const char*>(value + at);
            uint32_t end = at;
            while (end < length && value[end] != '\0') {
                ++end;
            }
            if (end == length) {
                return false; // unterminated: not a string list
            }
            if (equals(entry, text)) {
                return true;
            }
            at = end + 1;
        }
        return false;
    }
    // The number made of `count` cells (1 or 2) starting at cell `first`, or false if the value
    // is shorter.
    [[nodiscard]] bool cells(uint32_t first, uint32_t count, uint64_t& out) const {
        if (count == 0 || count > kMaxCells || first > length / 4 || length / 4 - first < count) {
            return false;
        }
        out = count == 2 ? read_be64(value + 4 * first) : read_be32(value + 4 * first);
        return true;
    }
};

// A bounded reader over one block of the blob.
struct Cursor {
    const uint8_t* base;
    uint32_t size;
    uint32_t offset;

    [[nodiscard]] bool has(uint32_t bytes) const { return size - offset >= bytes; }
    uint32_t u32() {
        const uint32_t value = read_be32(base + offset);
        offset += 4;
        return value;
    }
    // Skips a NUL-terminated string and pads to 4; returns it, or null if unterminated.
    const char* string() {
        const char* text = reinterpret_cast<const char*>(base + offset);
        for (uint32_t i = offset; i < size; ++i) {
            if (base[i] == '\0') {
                const uint32_t end = ((i + 1) + 3) & ~3u;
                offset = end < size ? end : size;
                return text;
            }
        }
        return nullptr;
    }
};

struct Cells {
    uint32_t address = 2;
    uint32_t size = 1;
};

enum class RangeKind { Ram, Reserved, NoMap };

// The index-th (address, size) pair of a reg value; false past its end. A size of zero cells
// reads as 0.
bool reg_entry(Property reg, Cells cells, uint32_t index, PhysRange& out) {
    const uint32_t first = index * (cells.address + cells.size);
    uint64_t size = 0;
    if (!reg.cells(first, cells.address, out.base) ||
        (cells.size != 0 && !reg.cells(first + cells.address, cells.size, size))) {
        return false;
    }
    out.size = size;
    return true;
}

// Adds each (address, size) pair of the reg value of the node named `node`. A value that is not
// a whole number of pairs is refused: its last pair would otherwise be dropped unread (a range
// of RAM or a reservation lost, or a reg decoded with the wrong cells taken for another).
BootParseResult add_reg(Property reg, Cells cells, RangeKind kind, BootInfo& boot,
                        const char* node) {
    if (cells.address == 0 || cells.address > kMaxCells || cells.size > kMaxCells) {
        return {"device tree: unsupported #address-cells/#size-cells", node};
    }
    if (reg.length % (4 * (cells.address + cells.size)) != 0) {
        return {"device tree: `reg` is not a whole number of (address, size) entries of its "
                "parent's #address-cells and #size-cells; cannot boot",
                node};
    }
    PhysRange range;
    for (uint32_t i = 0; reg_entry(reg, cells, i, range); ++i) {
        BootParseResult result;
        switch (kind) {
        case RangeKind::Ram:
            result = add_ram(boot, range.base, range.size);
            break;
        case RangeKind::Reserved:
            result = add_reserved(boot, range.base, range.size);
            break;
        case RangeKind::NoMap:
            result = add_no_map(boot, range.base, range.size);
            break;
        }
        if (!result.ok()) {
            return result;
        }
    }
    return {};
}

constexpr uint32_t kPsciCpuOn64 = 0xC4000003;
constexpr uint32_t kGicPpiBase = 16; // GIC binding: type 1 = PPI, INTID = 16 + number
constexpr uint32_t kGicSpiBase = 32; // type 0 = SPI, INTID = 32 + number
constexpr uint32_t kGicTypePpi = 1;

// What is known about the node being walked at depth 2 (a child of the root); acted on at its
// END_NODE, since properties come in any order.
struct TopNode {
    const char* name = nullptr;
    bool memory_type = false;
    bool reserved_memory = false;
    bool chosen = false;
    bool cpus = false;
    bool psci = false;
    Property reg;
    Property compatible;
    Property method;                // /psci
    Property cpu_on;                // /psci (PSCI 0.1)
    Property interrupts;            // the timer
    Property redistributor_regions; // the GICv3 node's #redistributor-regions
    Property status;
    Cells child_cells;
};

// A child of /cpus or of /reserved-memory, acted on at its END_NODE.
struct ChildNode {
    const char* name = nullptr;
    bool cpu_type = false;
    bool no_map = false; // a /reserved-memory child the kernel must not map (`no-map`, no value)
    Property status;
    Property reg;
};

// Whether a node is in use: no `status`, or "okay" (the devicetree specification) or "ok" (an
// older spelling). A node marked "disabled", "fail" or "reserved" is left out, as Linux does.
bool is_available(const Property& status) {
    return !status.present() || status.lists("okay") || status.lists("ok");
}

void finish_cpu(const ChildNode& node, Cells cells, BootInfo& boot) {
    uint64_t id = 0;
    if (!node.cpu_type || !is_available(node.status) || !node.reg.cells(0, cells.address, id)) {
        return;
    }
    add_boot_cpu(boot, id);
}

void finish_psci(const TopNode& node, BootInfo& boot) {
    const PsciConduit conduit = node.method.lists("hvc")   ? PsciConduit::Hvc
                                : node.method.lists("smc") ? PsciConduit::Smc
                                                           : PsciConduit::None;
    uint64_t cpu_on = 0;
    if (node.compatible.lists("arm,psci-0.2") || node.compatible.lists("arm,psci-1.0")) {
        cpu_on = kPsciCpuOn64;
    } else if (!node.cpu_on.cells(0, 1, cpu_on)) {
        return;
    }
    boot.psci_conduit = conduit;
    boot.psci_cpu_on = static_cast<uint32_t>(cpu_on);
}

// The compatibles of the GIC binding for a GICv2-architecture GIC (arm,gic.yaml): the same
// distributor and CPU interface whatever the name.
constexpr const char* kGicV2Compatibles[] = {
    "arm,gic-400",       "arm,cortex-a15-gic", "arm,cortex-a7-gic", "arm,cortex-a9-gic",
    "arm,cortex-a5-gic", "arm,pl390",          "arm,arm11mp-gic",   "arm,arm1176jzf-devchip-gic",
    "arm,eb11mp-gic",    "arm,tc11mp-gic"};

void finish_interrupt_controller(const TopNode& node, Cells cells, BootInfo& boot) {
    InterruptControllerKind kind = InterruptControllerKind::None;
    for (const char* compatible : kGicV2Compatibles) {
        kind = node.compatible.lists(compatible) ? InterruptControllerKind::GicV2 : kind;
    }
    if (node.compatible.lists("arm,gic-v3")) {
        kind = InterruptControllerKind::GicV3;
    }
    InterruptController controller;
    controller.kind = kind;
    if (kind == InterruptControllerKind::None ||
        !reg_entry(node.reg, cells, 0, controller.distributor)) {
        return;
    }
    // GICv3 binding (arm,gic-v3.yaml): reg = the distributor, then #redistributor-regions
    // redistributor regions (1 without the property), then optional others (GICC, GICH, GICV).
    uint64_t regions = 1;
    if (kind == InterruptControllerKind::GicV3 && node.redistributor_regions.present() &&
        (!node.redistributor_regions.cells(0, 1, regions) || regions == 0)) {
        return;
    }
    PhysRange region;
    for (uint32_t i = 1; i <= regions && reg_entry(node.reg, cells, i, region); ++i) {
        if (controller.per_cpu_count == kMaxPerCpuRegions) {
            ++controller.per_cpu_left_off;
        } else {
            controller.per_cpu[controller.per_cpu_count++] = region;
        }
    }
    if (controller.per_cpu_count != 0) {
        boot.interrupt_controller = controller;
    }
}

void finish_timer(const TopNode& node, BootInfo& boot) {
    constexpr uint32_t kNonSecurePhysical = 1; // secure, non-secure physical, virtual, hypervisor
    uint64_t type = 0;
    uint64_t number = 0;
    if (node.interrupts.cells(3 * kNonSecurePhysical, 1, type) &&
        node.interrupts.cells(3 * kNonSecurePhysical + 1, 1, number) && number < 1020) {
        boot.timer_interrupt =
            static_cast<uint32_t>(number) + (type == kGicTypePpi ? kGicPpiBase : kGicSpiBase);
    }
}

// Turns the structure block's nodes and properties, in blob order, into BootInfo.
class BootInfoBuilder {
public:
    explicit BootInfoBuilder(BootInfo& boot) : m_boot(boot) {}

    // `depth` is the new node's: 1 for the root, 2 for its children.
    void begin_node(int depth, const char* name) {
        if (depth == 2) {
            m_top = TopNode{};
            m_top.name = name;
            m_top.memory_type = is_node_named(name, "memory");
            m_top.reserved_memory = equals(name, "reserved-memory");
            m_top.chosen = equals(name, "chosen");
            m_top.cpus = equals(name, "cpus");
            m_top.psci = is_node_named(name, "psci");
            if (m_top.reserved_memory) {
                // Its children's reg uses the root's cells (the binding requires its own to
                // equal them), unless it says otherwise: the defaults 2 and 1 misread them.
                m_top.child_cells = m_root_cells;
            }
        } else if (depth == 3) {
            m_child = ChildNode{};
            m_child.name = name;
        }
    }

    // `depth` is that of the node holding the property.
    [[nodiscard]] BootParseResult property(int depth, const char* name, Property value) {
        const bool cells_property =
            value.length == 4 && (equals(name, "#address-cells") || equals(name, "#size-cells"));
        if (cells_property && (depth == 1 || depth == 2)) {
            Cells& cells = depth == 1 ? m_root_cells : m_top.child_cells;
            (equals(name, "#address-cells") ? cells.address : cells.size) = read_be32(value.value);
        } else if (depth == 2) {
            top_property(name, value);
        } else if (depth == 3 && (m_top.cpus || m_top.reserved_memory)) {
            if (equals(name, "device_type")) {
                m_child.cpu_type = value.lists("cpu");
            } else if (equals(name, "status")) {
                m_child.status = value;
            } else if (equals(name, "reg")) {
                m_child.reg = value;
            } else if (equals(name, "no-map")) {
                m_child.no_map = true;
            }
        }
        return {};
    }

    // `depth` is that of the node ending.
    [[nodiscard]] BootParseResult end_node(int depth) {
        if (depth == 3 && m_top.cpus) {
            finish_cpu(m_child, m_top.child_cells, m_boot);
        } else if (depth == 3 && m_top.reserved_memory) {
            if (m_child.reg.present() && is_available(m_child.status)) {
                return add_reg(m_child.reg, m_top.child_cells,
                               m_child.no_map ? RangeKind::NoMap : RangeKind::Reserved, m_boot,
                               m_child.name);
            }
        } else if (depth == 2) {
            if (!is_available(m_top.status)) {
                return {}; // a disabled node: neither RAM nor a device to use
            }
            if (m_top.memory_type && m_top.reg.present()) {
                return add_reg(m_top.reg, m_root_cells, RangeKind::Ram, m_boot, m_top.name);
            }
            if (m_top.psci) {
                finish_psci(m_top, m_boot);
            } else if (m_top.compatible.lists("arm,armv8-timer")) {
                finish_timer(m_top, m_boot);
            } else if (m_top.compatible.present()) {
                finish_interrupt_controller(m_top, m_root_cells, m_boot);
            }
        }
        return {};
    }

private:
    void top_property(const char* name, Property value) {
        if (equals(name, "device_type")) {
            m_top.memory_type = m_top.memory_type || value.lists("memory");
        } else if (equals(name, "reg")) {
            m_top.reg = value;
        } else if (equals(name, "compatible")) {
            m_top.compatible = value;
        } else if (equals(name, "method")) {
            m_top.method = value;
        } else if (equals(name, "cpu_on")) {
            m_top.cpu_on = value;
        } else if (equals(name, "interrupts")) {
            m_top.interrupts = value;
        } else if (equals(name, "#redistributor-regions")) {
            m_top.redistributor_regions = value;
        } else if (equals(name, "status")) {
            m_top.status = value;
        } else if (m_top.chosen && equals(name, "bootargs")) {
            copy_command_line(reinterpret_cast<const char*>(value.value), value.length, m_boot);
        }
    }

    BootInfo& m_boot;
    Cells m_root_cells;
    TopNode m_top;
    ChildNode m_child;
};

} // namespace

BootParseResult parse_device_tree(uint64_t blob_address, uint64_t available, BootInfo& boot) {
    const auto* blob = reinterpret_cast<const uint8_t*>(static_cast<uintptr_t>(blob_address));
    if (blob == nullptr || available < kHeaderSize) {
        return {"device tree: no blob"};
    }
    if (read_be32(blob) != kDeviceTreeMagic) {
        return {"device tree: bad magic number"};
    }
    const uint32_t total = read_be32(blob + 4);
    const uint32_t structure_offset = read_be32(blob + 8);
    const uint32_t strings_offset = read_be32(blob + 12);
    const uint32_t reservations_offset = read_be32(blob + 16);
    const uint32_t version = read_be32(blob + 20);
    const uint32_t strings_size = read_be32(blob + 32);
    const uint32_t structure_size = read_be32(blob + 36);
    const auto within = [total](uint32_t offset, uint32_t size) {
        return offset <= total && size <= total - offset;
    };
    if (total < kHeaderSize || total > available || version < 17 ||
        !within(structure_offset, structure_size) || !within(strings_offset, strings_size) ||
        reservations_offset < kHeaderSize || reservations_offset % 8 != 0 ||
        !within(reservations_offset, 16)) {
        return {"device tree: header sizes or offsets are out of bounds"};
    }
    boot.firmware = "device tree";
    BootParseResult result = add_reserved(boot, blob_address, total);

    for (uint32_t at = reservations_offset; result.ok(); at += 16) {
        if (!within(at, 16)) {
            return {"device tree: reservation block runs past the end"};
        }
        const uint64_t address = read_be64(blob + at);
        const uint64_t size = read_be64(blob + at + 8);
        if (address == 0 && size == 0) {
            break;
        }
        result = add_reserved(boot, address, size);
    }

    Cursor cursor{blob + structure_offset, structure_size, 0};
    const auto property_name = [&](uint32_t offset) -> const char* {
        if (offset >= strings_size) {
            return nullptr;
        }
        const auto* strings = blob + strings_offset;
        for (uint32_t i = offset; i < strings_size; ++i) {
            if (strings[i] == '\0') {
                return reinterpret_cast<const char*>(strings + offset);
            }
        }
        return nullptr;
    };
    BootInfoBuilder builder(boot);
    int depth = 0;
    bool ended = false;
    while (result.ok() && !ended) {
        if (!cursor.has(4)) {
            return {"device tree: structure block ends without an END token"};
        }
        const uint32_t token = cursor.u32();
        if (token == kTokenBeginNode) {
            const char* name = cursor.string();
            if (name == nullptr) {
                return {"device tree: unterminated node name"};
            }
            builder.begin_node(++depth, name);
        } else if (token == kTokenEndNode) {
            if (depth == 0) {
                return {"device tree: unbalanced END_NODE"};
            }
            result = builder.end_node(depth--);
        } else if (token == kTokenProperty) {
            if (!cursor.has(8)) {
                return {"device tree: truncated property"};
            }
            const uint32_t length = cursor.u32();
            const char* name = property_name(cursor.u32());
            if (name == nullptr || !cursor.has(length)) {
                return {"device tree: property name or value out of bounds"};
            }
            const Property value{cursor.base + cursor.offset, length};
            cursor.offset += (length + 3) & ~3u;
            if (cursor.offset > cursor.size) {
                cursor.offset = cursor.size;
            }
            result = builder.property(depth, name, value);
        } else if (token == kTokenEnd) {
            ended = true;
        } else if (token != kTokenNop) {
            return {"device tree: unknown token in the structure block"};
        }
    }
    return result;
}

} // namespace bedrock::kernel
