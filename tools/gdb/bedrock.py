# SPDX-License-Identifier: MIT
# Bedrock's heap inspector for gdb: `source tools/gdb/bedrock.py`, then
#   bedrock pfa [EXPR]     the page frame allocator: free blocks per order and region, the CPU
#                          page lists, total and free pages (default: the default heap's)
#   bedrock heap [EXPR]    a heap's statistics, size classes and per-CPU caches (default: the
#                          default heap)
#   bedrock block ADDR [HEAP]   which heap, run or slab and block holds ADDR, and its state;
#                          for a checked-mode block, its allocation and free call sites
# Owns only reading: it walks the allocator's structures from their DWARF types and the
# inferior's memory, exactly as the allocator's own lookups do (page tags -> arena or large run
# -> start bitmap -> block header -> slab), and never calls a function in the inferior, so it
# works on a stopped QEMU guest (gdb-multiarch on QEMU's gdbstub) as on a hosted process.
# The figures match heap_statistics() and PageFrameAllocator::free_pages() while no CPU is
# inside the allocator. A field this script expects and the program lacks (the allocator
# changed) stops the command with an error naming the type and the field.
# A qualified name may need quotes in an expression until gdb has read its compilation unit:
# 'bedrock::kernel::g_gdb_sample'.live.

import os

import gdb

# Compile-time constants of the allocator (DWARF does not keep them), with their source. Both
# targets are little-endian and 64-bit.
PAGE_SIZE = 4096
TAG_SPAN_ORDER = 6  # page_tags.h: a span tag covers 2^6 pages
TAG_VALUE_BITS = 13  # page_tags.h: a tag is kind (3 bits) | value (13 bits)
GRANULE = 16  # segregated_fit.h: block starts and the start bitmap's unit
BLOCK_HEADER_BYTES = 16  # segregated_fit.h: the header before each arena block
USE_MASK = 7  # segregated_fit.h: a header's use is in the low 3 bits of size_and_flags
HEAP_MAGIC = 0x70654842  # Heap::kMagic, "BHep"
# BlockUse (segregated_fit.h), PageKind (page_tags.h), BlockState (checked/checked_block.h).
USE_NAMES = {0: "free", 1: "slab", 2: "medium", 3: "checked", 4: "guard", 5: "cpu-cache"}
USE_FREE, USE_SLAB, USE_MEDIUM, USE_CHECKED, USE_GUARD, USE_CPU_CACHE = range(6)
# SlabPlacement::OwnLine, kCacheLineBytes and kSlabFirstOffset (alloc/heap/slab.h).
SLAB_PLACEMENT_OWN_LINE, CACHE_LINE_BYTES, SLAB_FIRST_OFFSET = 1, 64, 48
KIND_NONE, KIND_ARENA, KIND_ARENA_BASE = 0, 1, 2
KIND_LARGE_HEAD, KIND_LARGE_CHECKED_HEAD = 3, 4
KIND_LENGTH_LOW, KIND_LENGTH_HIGH, KIND_BODY = 5, 6, 7
CHECKED_STATES = {0: "released", 0x4556494C: "live", 0x52415551: "quarantined"}


# --- Reading the inferior -------------------------------------------------------------------


def member(value, name):
    """value.name, or an error naming the type and the field the allocator no longer has."""
    try:
        return value[name]
    except gdb.error:
        raise gdb.GdbError(
            "bedrock: %s has no field '%s' (the allocator's layout changed; update "
            "tools/gdb/bedrock.py)" % (value.type.strip_typedefs(), name)
        ) from None


def type_named(name):
    try:
        return gdb.lookup_type(name)
    except gdb.error:
        raise gdb.GdbError("bedrock: no type %s in the program's debug information"
                           % name) from None


def type_field(type_name, name):
    """The field `name` of the type `type_name`, or an error naming both."""
    fields = {field.name: field for field in type_named(type_name).fields()}
    if name not in fields:
        raise gdb.GdbError("bedrock: %s has no field '%s' (the allocator's layout changed; "
                           "update tools/gdb/bedrock.py)" % (type_name, name))
    return fields[name]


def symbol_value(name):
    """The value of a global or file-static variable, found by its qualified name."""
    found = gdb.lookup_global_symbol(name) or gdb.lookup_static_symbol(name)
    if found is None:
        raise gdb.GdbError("bedrock: no symbol %s in the program's debug information" % name)
    return found.value()


def at(address, type_name):
    """The object of type `type_name` at `address`."""
    return gdb.Value(address).cast(type_named(type_name).pointer()).dereference()


def read_words(address, count):
    """`count` 64-bit little-endian words from `address`."""
    data = bytes(gdb.selected_inferior().read_memory(address, count * 8))
    return [int.from_bytes(data[i : i + 8], "little") for i in range(0, len(data), 8)]


def read_u16(address):
    return int.from_bytes(bytes(gdb.selected_inferior().read_memory(address, 2)), "little")


def array_length(value):
    low, high = value.type.strip_typedefs().range()
    return high - low + 1


def evaluate_address(expression):
    try:
        return int(gdb.parse_and_eval(expression)) & 0xFFFFFFFFFFFFFFFF
    except gdb.error as error:
        raise gdb.GdbError("bedrock: cannot evaluate '%s': %s" % (expression, error)) from None


# --- Heaps and the page frame allocator -----------------------------------------------------


# Where the default heap pointer has lived (heap.cpp; heap_entry.h once the C API read it
# inline), newest first.
DEFAULT_HEAP_SYMBOLS = ("bedrock::heap::g_default_heap",
                        "bedrock::(anonymous namespace)::g_default_heap")


def default_heap_address():
    for name in DEFAULT_HEAP_SYMBOLS:
        if gdb.lookup_global_symbol(name) or gdb.lookup_static_symbol(name):
            address = int(symbol_value(name))
            break
    else:
        raise gdb.GdbError("bedrock: no default heap pointer in the debug information (looked "
                           "for %s)" % ", ".join(DEFAULT_HEAP_SYMBOLS))
    if address == 0:
        raise gdb.GdbError("bedrock: no default heap yet (set_default_heap() not called)")
    return address


def heap_at(address):
    heap = at(address, "bedrock::Heap")
    if int(member(heap, "magic")) != HEAP_MAGIC:
        raise gdb.GdbError("bedrock: no heap at 0x%x (its magic is wrong)" % address)
    return heap


def heap_from(argument):
    return heap_at(evaluate_address(argument) if argument else default_heap_address())


def frames_from(argument):
    if argument:
        try:
            value = gdb.parse_and_eval(argument)
        except gdb.error as error:
            raise gdb.GdbError("bedrock: cannot evaluate '%s': %s" % (argument, error)) from None
        if value.type.strip_typedefs().code == gdb.TYPE_CODE_PTR:
            value = value.dereference()
        return value.cast(type_named("bedrock::PageFrameAllocator"))
    frames = int(member(heap_at(default_heap_address()), "frames"))
    if frames == 0:
        raise gdb.GdbError("bedrock: the default heap is a region heap; name a PageFrameAllocator")
    return at(frames, "bedrock::PageFrameAllocator")


def slab_layouts():
    return symbol_value("bedrock::heap::kSlabLayouts")


def slot_layout():
    return symbol_value("bedrock::heap::kSlotLayout")


def cpu_caches(heap):
    """(cpu, CpuCache value) for every CPU that has a cache in `heap`."""
    caches = member(member(heap, "cpus"), "m_caches")
    found = []
    for cpu in range(array_length(caches)):
        address = int(caches[cpu])
        if address != 0:
            found.append((cpu, at(address, "bedrock::heap::CpuCache")))
    return found


def magazine_count(cache, index):
    """The blocks class `index`'s magazine of `cache` holds."""
    return int(member(member(cache, "magazines")[index], "count"))


def cached_blocks(cache, index, slots):
    """The addresses of the blocks class `index`'s magazine of `cache` holds."""
    count = magazine_count(cache, index)
    first = int(member(slots, "first")[index])
    if count == 0:
        return []
    return read_words(int(member(cache, "slots")[first].address), count)


def class_figures(heap):
    """Per size class: block size, blocks per slab, slabs, in use, free in slabs, cached."""
    layouts = slab_layouts()
    caches = cpu_caches(heap)
    classes = member(heap, "classes")
    rows = []
    for index in range(array_length(classes)):
        cls = classes[index]
        layout = layouts[index]
        per_slab = int(member(layout, "block_count"))
        slabs = int(member(cls, "m_slabs"))
        held = int(member(cls, "m_blocks_in_use"))  # handed out, CPU caches included
        cached = sum(magazine_count(cache, index) for _, cache in caches)
        rows.append(
            {
                "size": int(member(layout, "block_size")),
                "per_slab": per_slab,
                "slabs": slabs,
                "in_use": held - min(cached, held),
                "free": slabs * per_slab - held,
                "cached": cached,
            }
        )
    return rows


def checked_totals(heap):
    """(quarantined blocks, quarantined bytes, guarded blocks, their slot pages' bytes); zeros
    without checked mode."""
    layer = member(heap, "checked")
    names = [field.name for field in layer.type.strip_typedefs().fields()]
    if "blocks" not in names:
        return 0, 0, 0, 0  # BEDROCK_CHECKED=OFF: the stand-in has no state
    blocks = member(layer, "blocks")
    quarantined_blocks = int(member(blocks, "m_quarantine_blocks"))
    quarantined_bytes = int(member(blocks, "m_quarantine_bytes"))
    oversized = member(blocks, "m_oversized")  # waits apart from the quarantine's list
    if int(oversized) != 0:
        quarantined_blocks += 1
        quarantined_bytes += int(member(oversized.dereference(), "zone_end")) - int(oversized)
    guards = member(layer, "guards")
    guarded = int(member(guards, "m_live_blocks"))
    return (
        quarantined_blocks,
        quarantined_bytes,
        guarded,
        guarded * int(member(guards, "m_page")),
    )


def heap_totals(heap, rows):
    """The figures of heap_statistics(): bytes and blocks in use, medium and large totals."""
    # Arenas::totals_of(): the uses counted start at Slab, so a use's totals are at use - 1.
    use_totals = member(member(heap, "arenas"), "m_totals")
    medium, checked = use_totals[USE_MEDIUM - 1], use_totals[USE_CHECKED - 1]
    large = member(member(heap, "large"), "m_totals")
    quarantined_blocks, quarantined_bytes, guarded, guarded_bytes = checked_totals(heap)
    large_pages = int(member(large, "pages"))
    return {
        "bytes_in_use": sum(r["in_use"] * r["size"] for r in rows)
        + int(member(medium, "bytes"))
        + int(member(checked, "bytes"))
        + large_pages * PAGE_SIZE
        + guarded_bytes
        - quarantined_bytes,
        "blocks_in_use": sum(r["in_use"] for r in rows)
        + int(member(medium, "blocks"))
        + int(member(checked, "blocks"))
        + int(member(large, "blocks"))
        + guarded
        - quarantined_blocks,
        "medium_blocks": int(member(medium, "blocks")),
        "medium_bytes": int(member(medium, "bytes")),
        "checked_blocks": int(member(checked, "blocks")),
        "large_blocks": int(member(large, "blocks")),
        "large_pages": large_pages,
        "quarantined_blocks": quarantined_blocks,
        "quarantined_bytes": quarantined_bytes,
    }


# --- bedrock heap ---------------------------------------------------------------------------


def print_heap(heap):
    rows = class_figures(heap)
    totals = heap_totals(heap, rows)
    held = member(heap, "held")
    frames = int(member(heap, "frames"))
    source = "over the page frame allocator at 0x%x" % frames if frames else "in a region"
    print("heap 0x%x %s, owner id %d" % (int(heap.address), source, int(member(heap, "owner_id"))))
    print(
        "  in use: %d bytes in %d blocks; pages held %d (peak %d)"
        % (
            totals["bytes_in_use"],
            totals["blocks_in_use"],
            int(member(held, "m_pages")),
            int(member(held, "m_peak")),
        )
    )
    print(
        "  medium: %d blocks, %d bytes; large: %d blocks in %d pages; checked-mode: %d blocks "
        "(quarantine included); quarantine: %d blocks, %d bytes"
        % (
            totals["medium_blocks"],
            totals["medium_bytes"],
            totals["large_blocks"],
            totals["large_pages"],
            totals["checked_blocks"],
            totals["quarantined_blocks"],
            totals["quarantined_bytes"],
        )
    )
    print("  class  block  per slab  slabs  in use  free  cached")
    for index, row in enumerate(rows):
        if row["slabs"] == 0 and row["cached"] == 0:
            continue
        print(
            "  %5d %6d %9d %6d %7d %5d %7d"
            % (index, row["size"], row["per_slab"], row["slabs"], row["in_use"], row["free"],
               row["cached"])
        )
    print_cpu_caches(heap, rows)


def print_cpu_caches(heap, rows):
    caches = cpu_caches(heap)
    if not caches:
        print("  per-CPU caches: none")
    for cpu, cache in caches:
        counts = [(row["size"], magazine_count(cache, i)) for i, row in enumerate(rows)]
        held = ", ".join("%d B: %d" % (size, n) for size, n in counts if n != 0)
        print("  cpu %d caches %d blocks%s"
              % (cpu, sum(n for _, n in counts), " (%s)" % held if held else ""))


# --- bedrock pfa ----------------------------------------------------------------------------


def max_cpu_count():
    """platform::kMaxCpus, as the length of the per-CPU cache pointers of a heap."""
    low, high = type_field("bedrock::heap::CpuCaches", "m_caches").type.range()
    return high - low + 1


def cpu_list_holdings(frames):
    """(cpu, [(order, blocks)]) for every CPU slot whose page lists hold blocks."""
    cpu = member(frames, "m_cpu")
    lists = member(cpu, "lists")
    if int(member(cpu, "page_count")) == 0 or int(lists) == 0:
        return []
    holdings = []
    for index in range(max_cpu_count()):
        orders = member(lists[index], "order")
        counts = [(order, int(member(orders[order], "count")))
                  for order in range(array_length(orders))]
        held = [(order, n) for order, n in counts if n != 0]
        if held:
            holdings.append((index, held))
    return holdings


def order_counts(counts):
    return " ".join("%d:%d" % (order, n) for order, n in enumerate(counts))


def print_region(region):
    """Prints one region; returns its free blocks per order."""
    first, count = int(member(region, "first_page")), int(member(region, "page_count"))
    counts = member(region, "free_count")
    per_order = [int(counts[order]) for order in range(array_length(counts))]
    print("  region [0x%016x - 0x%016x] %d pages, %d free, %d reserved"
          % (first * PAGE_SIZE, (first + count) * PAGE_SIZE - 1, count,
             int(member(region, "free_pages")), int(member(region, "reserved_pages"))))
    print("    free blocks per order: " + order_counts(per_order))
    return per_order


def print_pfa(frames):
    regions = [member(frames, "m_regions")[i] for i in range(int(member(frames, "m_region_count")))]
    print("page frame allocator 0x%x: %d regions, %d managed pages"
          % (int(frames.address), len(regions), int(member(frames, "m_managed_pages"))))
    per_region = [print_region(region) for region in regions]
    listed = 0
    for cpu, held in cpu_list_holdings(frames):
        pages = sum(n << order for order, n in held)
        listed += pages
        print("  cpu %d page lists: %d pages (%s)"
              % (cpu, pages, ", ".join("order %d: %d" % (order, n) for order, n in held)))
    if per_region:
        print("  free blocks per order: " + order_counts([sum(c) for c in zip(*per_region)]))
    on_lists = sum(int(member(region, "free_pages")) for region in regions)
    print("  free pages %d (%d in free blocks, %d on CPU page lists)"
          % (on_lists + listed, on_lists, listed))


# --- bedrock block: from an address to its holder --------------------------------------------


def tags_of(frames, address):
    """(page tag, span tag) of the page holding `address`, or None outside the allocator's RAM
    (PageFrameAllocator::tags_of)."""
    windows = member(frames, "m_tag_windows")
    for index in range(int(member(frames, "m_region_count"))):
        window = windows[index]
        base, size = int(member(window, "base")), int(member(window, "bytes"))
        if base <= address < base + size:
            page = (address - base) // PAGE_SIZE
            span = (page + int(member(window, "span_offset"))) >> TAG_SPAN_ORDER
            page_tag = int(member(window, "tags")) + 2 * page
            return page_tag, read_u16(int(member(window, "span_tags")) + 2 * span)
    return None


def large_run(page_tag, page):
    """(kind, owner id, first page, pages) of the large run whose page `page` has the tag at
    `page_tag`, walking back to its head as block_lookup.h's large_run_block() does."""
    tag = read_u16(page_tag)
    while tag >> TAG_VALUE_BITS in (KIND_LENGTH_LOW, KIND_LENGTH_HIGH, KIND_BODY):
        back = 2 if tag >> TAG_VALUE_BITS == KIND_LENGTH_HIGH else 1
        page_tag -= 2 * back
        page -= back * PAGE_SIZE
        tag = read_u16(page_tag)
    mask = (1 << TAG_VALUE_BITS) - 1
    pages = (read_u16(page_tag + 2) & mask) | (read_u16(page_tag + 4) & mask) << TAG_VALUE_BITS
    return tag >> TAG_VALUE_BITS, tag & mask, page, pages


def arena_find(arena_address, address):
    """(block, usable, use) of the arena block whose usable bytes hold `address`, or None, from
    the arena's start bitmap (SegregatedFit::find)."""
    arena = at(arena_address, "bedrock::heap::Arena")
    size = int(member(arena, "bytes"))
    top_words = (size + GRANULE * 64 * 64 * 64 - 1) // (GRANULE * 64 * 64 * 64)
    summary_words = (size + GRANULE * 64 * 64 - 1) // (GRANULE * 64 * 64)
    top_address = arena_address + arena.type.sizeof
    summary_address = top_address + top_words * 8
    start_address = summary_address + summary_words * 8
    top = read_words(top_address, top_words)
    summary = read_words(summary_address, summary_words)

    def initialised(word):
        """Whether start bitmap word `word` counts (its summary word counts, and its bit)."""
        index = word // 64
        return (top[index // 64] >> (index % 64)) & 1 and (summary[index] >> (word % 64)) & 1

    granule = (address - arena_address) // GRANULE
    word, mask = granule // 64, (1 << (granule % 64 + 1)) - 1
    while word >= 0:
        if initialised(word):
            bits = read_words(start_address + word * 8, 1)[0] & mask
            if bits:
                block = arena_address + (word * 64 + bits.bit_length() - 1) * GRANULE
                header = at(block - BLOCK_HEADER_BYTES, "bedrock::heap::fit_detail::BlockHeader")
                flags = int(member(header, "size_and_flags"))
                usable = flags & ~(GRANULE - 1)
                return (block, usable, flags & USE_MASK) if address - block < usable else None
        word, mask = word - 1, (1 << 64) - 1
    return None


def cached_on(heap, class_index, block):
    """The CPU whose cache holds `block` of class `class_index`, or None."""
    slots = slot_layout()
    for cpu, cache in cpu_caches(heap):
        if block in cached_blocks(cache, class_index, slots):
            return cpu
    return None


def block_state(state, offset):
    """`state` for a block's start, else what an interior pointer `offset` bytes in is."""
    if offset == 0:
        return state
    return "interior pointer at offset %d of a block that is %s" % (offset, state)


def slab_in_block(heap, block):
    """slab_in_block() (alloc/heap/slab.h): where the header of the slab in medium block
    `block` is, by the heap's SlabPlacement (OwnLine: 16 bytes past a cache line)."""
    placement = int(member(member(heap, "arenas"), "m_slab_placement"))
    if placement == SLAB_PLACEMENT_OWN_LINE:
        return block + (CACHE_LINE_BYTES - SLAB_FIRST_OFFSET - block) % CACHE_LINE_BYTES
    return block


def describe_slab(heap, slab_address, address):
    slab = at(slab_address, "bedrock::heap::Slab")
    index = int(member(slab, "class_index"))
    layout = slab_layouts()[index]
    size, count = int(member(layout, "block_size")), int(member(layout, "block_count"))
    first = slab_address + int(member(layout, "first_offset"))
    where = "slab 0x%x of class %d (%d-byte blocks, %d per slab, %d handed out)" % (
        slab_address, index, size, count, int(member(slab, "used")))
    if address < first or address - first >= size * count:
        return [where, "state: inside the slab's header, bitmap or tail (no block)"]
    number = (address - first) // size
    start = first + number * size
    bitmap = read_words(slab_address + slab.type.sizeof + number // 64 * 8, 1)[0]
    handed_out = (bitmap >> (number % 64)) & 1
    lines = [where, "block: %d at 0x%x, %d bytes" % (number, start, size)]
    if handed_out:
        cpu = cached_on(heap, index, start)
        state = "allocated" if cpu is None else "cached on CPU %d (free to the program)" % cpu
    elif number >= int(member(slab, "fresh")):
        state = "free (never handed out)"
    else:
        state = "free"
    return lines + ["state: " + block_state(state, address - start)]


def call_sites(trace):
    frames = member(trace, "frames")
    lines = []
    for depth in range(array_length(frames)):
        pc = int(frames[depth])
        if pc == 0:
            break
        lines.append("    #%d %s" % (depth, symbolize(pc)))
    return lines or ["    (not recorded)"]


def symbolize(pc):
    """`0x... in function + offset at file:line`, from gdb's `info symbol` and its line table
    (`info line`); the file relative to the working directory when it lies below it."""
    symbol = gdb.execute("info symbol 0x%x" % pc, to_string=True).strip()
    symbol = symbol.split(" in section ")[0] if not symbol.startswith("No symbol") else "??"
    line = gdb.find_pc_line(pc)
    if line.symtab is None:
        return "0x%x in %s" % (pc, symbol)
    path = line.symtab.filename
    relative = os.path.relpath(path) if os.path.isabs(path) else path
    path = path if relative.startswith("..") else relative
    return "0x%x in %s at %s:%d" % (pc, symbol, path, line.line)


def describe_checked(header_address, address):
    header = at(header_address, "bedrock::heap::CheckedBlock")
    block, size = int(member(header, "block")), int(member(header, "size"))
    state = CHECKED_STATES.get(int(member(header, "state")), "corrupt header")
    lines = ["checked-mode block 0x%x, %d bytes asked for (header 0x%x)"
             % (block, size, header_address)]
    described = {"live": "allocated", "quarantined": "freed, in quarantine"}.get(state, state)
    if block <= address < block + max(size, 1):
        lines.append("state: " + block_state(described, address - block))
    else:
        lines.append("state: in the red zones or header of a block that is " + described)
    lines.append("  allocated at:")
    lines += call_sites(member(header, "allocated"))
    if state == "quarantined":
        lines.append("  freed at:")
        lines += call_sites(member(header, "freed"))
    return lines


def describe_guarded(heap, address):
    """Lines for `address` in `heap`'s guard-page pool (checked/guarded_pool.h: chunks of a
    header page, then guard, slot, guard, ..., slot, guard pages, each of the platform's page
    size, m_page), or None outside it."""
    layer = member(heap, "checked")
    if "guards" not in [field.name for field in layer.type.strip_typedefs().fields()]:
        return None
    pool = member(layer, "guards")
    base = int(member(pool, "m_base"))
    slots = array_length(member(at(base, "bedrock::heap::GuardChunk"), "slots")) if base else 0
    page_bytes = int(member(pool, "m_page"))
    chunk_bytes = (2 * slots + 2) * page_bytes
    offset = address - base
    if base == 0 or not 0 <= offset < int(member(pool, "m_chunks")) * chunk_bytes:
        return None
    chunk = base + offset // chunk_bytes * chunk_bytes
    page = offset % chunk_bytes // page_bytes
    where = "guard-page chunk 0x%x" % chunk
    if page == 0:
        return [where, "state: heap metadata: the chunk's block headers"]
    if page % 2 == 1:
        return [where, "state: in a guard page (always inaccessible)"]
    slot = member(at(chunk, "bedrock::heap::GuardChunk"), "slots")[page // 2 - 1]
    header = int(member(slot, "header").address)
    return ["%s, slot %d" % (where, page // 2 - 1)] + describe_checked(header, address)


def kept_blocks(heap):
    """The freed medium blocks the arenas keep for reuse (Arenas::m_kept, alloc/heap/arenas.h)."""
    slots = member(member(heap, "arenas"), "m_kept")
    return {int(slots[i]) for i in range(array_length(slots))} - {0}


def describe_arena_block(heap, arena_address, address):
    found = arena_find(arena_address, address)
    where = "arena 0x%x" % arena_address
    if found is None:
        return [where, "state: inside a block header or the arena's own metadata (no block)"]
    block, usable, use = found
    if use == USE_SLAB:
        return [where] + describe_slab(heap, slab_in_block(heap, block), address)
    if use == USE_CHECKED:
        return [where] + describe_checked(block, address)
    if use == USE_GUARD:
        guarded = describe_guarded(heap, address)
        if guarded is not None:
            return [where] + guarded
    holder = "%s block at 0x%x, %d usable bytes" % (USE_NAMES.get(use, "unknown"), block, usable)
    if use == USE_MEDIUM and block in kept_blocks(heap):
        return [where, holder, "state: " + block_state("free (kept for reuse)", address - block)]
    if use == USE_MEDIUM:
        return [where, holder, "state: " + block_state("allocated", address - block)]
    if use == USE_FREE:
        return [where, holder, "state: " + block_state("free", address - block)]
    what = {USE_GUARD: "a guard-page pool of another heap", USE_CPU_CACHE: "a CPU's cache of the "
            "size classes"}
    return [where, holder, "state: heap metadata: " + what.get(use, "unknown use %d" % use)]


def describe_large(heap, page_tag, address):
    kind, owner, start, pages = large_run(page_tag, address & ~(PAGE_SIZE - 1))
    if kind not in (KIND_LARGE_HEAD, KIND_LARGE_CHECKED_HEAD):
        return ["state: in pages being freed (no run head)"]
    if owner != int(member(heap, "owner_id")):
        return ["state: a large run of another heap (owner id %d)" % owner]
    where = "large run 0x%x, %d pages" % (start, pages)
    if kind == KIND_LARGE_CHECKED_HEAD:
        return [where] + (describe_guarded(heap, address) or describe_checked(start, address))
    return [where, "state: " + block_state("allocated", address - start)]


def describe_in_frames_heap(heap, address):
    """Lines for `address` under the page tags of `heap`'s page frame allocator, or None when
    the allocator does not manage it."""
    frames = at(int(member(heap, "frames")), "bedrock::PageFrameAllocator")
    tags = tags_of(frames, address)
    if tags is None:
        return None
    page_tag, span_tag = tags
    tag = span_tag if span_tag != 0 else read_u16(page_tag)
    kind = tag >> TAG_VALUE_BITS
    if kind == KIND_NONE:
        return ["heap: none", "state: not Bedrock's heap memory (a page of the page frame "
                "allocator that no heap holds)"]
    if kind in (KIND_ARENA, KIND_ARENA_BASE):
        order = tag & ((1 << TAG_VALUE_BITS) - 1) if kind == KIND_ARENA else 0
        arena = address & ~((PAGE_SIZE << order) - 1)
        owner = int(member(at(arena, "bedrock::heap::Arena"), "owner"))
        return ["heap: 0x%x" % owner] + describe_arena_block(heap_at(owner), arena, address)
    return ["heap: 0x%x" % int(heap.address)] + describe_large(heap, page_tag, address)


def region_heaps():
    """Every live region heap (heap_lifecycle.cpp's list)."""
    heaps = []
    heap = int(member(symbol_value("bedrock::(anonymous namespace)::g_heaps"), "m_front"))
    while heap != 0 and len(heaps) < 4096:
        heaps.append(heap_at(heap))
        heap = int(member(heaps[-1], "next_heap"))
    return heaps


def describe_address(address, heaps):
    for heap in heaps:
        if int(member(heap, "frames")) != 0:
            lines = describe_in_frames_heap(heap, address)
            if lines is not None:
                return lines
            continue
        arena = int(member(member(heap, "arenas"), "m_region"))
        size = int(member(at(arena, "bedrock::heap::Arena"), "bytes"))
        if arena <= address < arena + size:
            return ["heap: 0x%x" % int(heap.address)] + describe_arena_block(heap, arena, address)
    return ["heap: none", "state: not Bedrock's (outside every heap and the page frame "
            "allocator's memory)"]


def print_block(arguments):
    words = gdb.string_to_argv(arguments)
    if not words or len(words) > 2:
        raise gdb.GdbError("usage: bedrock block ADDR [HEAP]")
    address = evaluate_address(words[0])
    if len(words) == 2:
        heaps = [heap_at(evaluate_address(words[1]))]
    else:
        heaps = [heap_at(default_heap_address())] + region_heaps()
    print("block 0x%x" % address)
    for line in describe_address(address, heaps):
        print("  " + line)


# --- The commands ---------------------------------------------------------------------------


class BedrockCommand(gdb.Command):
    """Bedrock's allocator inspector: bedrock pfa [EXPR], bedrock heap [EXPR],
    bedrock block ADDR [HEAP]."""

    def __init__(self):
        super().__init__("bedrock", gdb.COMMAND_DATA, gdb.COMPLETE_NONE, True)


class PfaCommand(gdb.Command):
    """bedrock pfa [EXPR]: the page frame allocator EXPR (default: the default heap's) - its
    free blocks per order and region, the CPU page lists' holdings, total and free pages."""

    def __init__(self):
        super().__init__("bedrock pfa", gdb.COMMAND_DATA, gdb.COMPLETE_EXPRESSION)

    def invoke(self, argument, from_tty):
        print_pfa(frames_from(argument.strip()))


class HeapCommand(gdb.Command):
    """bedrock heap [EXPR]: the heap at EXPR (a Heap* or an address; default: the default heap) -
    bytes and blocks in use, pages held, and per size class its block size, blocks in use, free
    and cached, and slabs; the blocks each CPU caches."""

    def __init__(self):
        super().__init__("bedrock heap", gdb.COMMAND_DATA, gdb.COMPLETE_EXPRESSION)

    def invoke(self, argument, from_tty):
        print_heap(heap_from(argument.strip()))


class BlockCommand(gdb.Command):
    """bedrock block ADDR [HEAP]: which heap, arena, slab or run, and which block holds ADDR,
    and its state: allocated, free, cached on a CPU, interior pointer at offset N, or not
    Bedrock's; for a checked-mode block, its allocation (and free) call sites."""

    def __init__(self):
        super().__init__("bedrock block", gdb.COMMAND_DATA, gdb.COMPLETE_EXPRESSION)

    def invoke(self, argument, from_tty):
        print_block(argument)


BedrockCommand()
PfaCommand()
HeapCommand()
BlockCommand()
