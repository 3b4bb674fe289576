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

bool is_memory_name(const char* name) {
    const char* prefix = "memory";
    while (*prefix != '\0' && *name == *prefix) {
        ++name;
        ++prefix;
    }
    return *prefix == '\0' && (*name == '\0' || *name == '@');
}

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

// Adds each (address, size) pair of a reg value.
BootParseResult add_reg(const uint8_t* value, uint32_t length, Cells cells, bool ram,
                        BootInfo& boot) {
    if (cells.address == 0 || cells.address > kMaxCells || cells.size > kMaxCells) {
        return {"device tree: unsupported #address-cells/#size-cells"};
    }
    const uint32_t entry = 4 * (cells.address + cells.size);
    for (uint32_t at = 0; length - at >= entry; at += entry) {
        const uint64_t address = cells.address == 2 ? read_be64(value + at) : read_be32(value + at);
        const uint8_t* size_at = value + at + 4 * cells.address;
        const uint64_t size = cells.size == 2   ? read_be64(size_at)
                              : cells.size == 1 ? read_be32(size_at)
                                                : 0;
        const BootParseResult result =
            ram ? add_ram(boot, address, size) : add_reserved(boot, address, size);
        if (!result.ok()) {
            return result;
        }
    }
    return {};
}

// What is known about the node being walked at depth 1 (a child of the root).
struct TopNode {
    const char* name = "";
    bool memory_type = false;
    const uint8_t* reg = nullptr;
    uint32_t reg_length = 0;
    bool reserved_memory = false;
    bool chosen = false;
    Cells child_cells;
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
    Cells root_cells;
    TopNode top;
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
            ++depth;
            if (depth == 2) {
                top = TopNode{};
                top.name = name;
                top.memory_type = is_memory_name(name);
                top.reserved_memory = equals(name, "reserved-memory");
                top.chosen = equals(name, "chosen");
            }
        } else if (token == kTokenEndNode) {
            if (depth == 0) {
                return {"device tree: unbalanced END_NODE"};
            }
            if (depth == 2 && top.memory_type && top.reg != nullptr) {
                result = add_reg(top.reg, top.reg_length, root_cells, true, boot);
            }
            --depth;
        } else if (token == kTokenProperty) {
            if (!cursor.has(8)) {
                return {"device tree: truncated property"};
            }
            const uint32_t length = cursor.u32();
            const char* name = property_name(cursor.u32());
            if (name == nullptr || !cursor.has(length)) {
                return {"device tree: property name or value out of bounds"};
            }
            const uint8_t* value = cursor.base + cursor.offset;
            cursor.offset += (length + 3) & ~3u;
            if (cursor.offset > cursor.size) {
                cursor.offset = cursor.size;
            }
            const bool cells_property =
                length == 4 && (equals(name, "#address-cells") || equals(name, "#size-cells"));
            if (depth == 1 && cells_property) {
                (equals(name, "#address-cells") ? root_cells.address : root_cells.size) =
                    read_be32(value);
            } else if (depth == 2 && cells_property && top.reserved_memory) {
                (equals(name, "#address-cells") ? top.child_cells.address : top.child_cells.size) =
                    read_be32(value);
            } else if (depth == 2 && equals(name, "device_type")) {
                top.memory_type =
                    top.memory_type ||
                    (length >= 7 && equals(reinterpret_cast<const char*>(value), "memory") &&
                     value[length - 1] == '\0');
            } else if (depth == 2 && equals(name, "reg")) {
                top.reg = value;
                top.reg_length = length;
            } else if (depth == 2 && top.chosen && equals(name, "bootargs")) {
                copy_command_line(reinterpret_cast<const char*>(value), length, boot);
            } else if (depth == 3 && top.reserved_memory && equals(name, "reg")) {
                result = add_reg(value, length, top.child_cells, false, boot);
            }
        } else if (token == kTokenEnd) {
            ended = true;
        } else if (token != kTokenNop) {
            return {"device tree: unknown token in the structure block"};
        }
    }
    return result;
}

} // namespace bedrock::kernel
