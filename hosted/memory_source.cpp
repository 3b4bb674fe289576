// SPDX-License-Identifier: MIT
// The memory hooks of bedrock/platform.h for a host process, and the reservations behind them:
// reserve_memory() maps address space with MAP_NORESERVE (the kernel commits a page when it is
// first touched) and hands a small first chunk of it to a page frame allocator as its RAM; the
// allocator's grow hook (grow_into_reservation) adds the next chunks as allocations need them, each
// twice the last (kFirstChunkBytes up to kLargestChunkBytes, or larger for one large request), so
// start-up costs the same whatever the reservation's size, and the metadata that is zeroed (and
// touched) is that of memory in use. The reservation is mapped PROT_NONE and each chunk made
// readable and writable as it is added (mprotect), so that what the allocator has not been given is
// no memory to the kernel: mlockall(MCL_CURRENT) makes it resident (it made all 64 GiB resident, or
// died trying), and strict overcommit and RLIMIT_DATA count it only once it is given (a chunk they
// do not grant is tried at half, a quarter, ... down to what the request needs). Where the system
// limits address space (RLIMIT_AS), the whole
// reservation counts against the limit, so it takes no more than its fair share (fair_share): its
// first chunk and, ahead of it, the next chunk, but no more than half of what the limit leaves
// free; the program's own mappings (thread stacks, file mappings, dlopen) keep the other half. So
// start() reserves that much (or, where mmap refuses it, the largest half, quarter, ... of it, at
// a smaller alignment, 2 MiB then a host page, where the slack for its own does not fit), placed
// far below the program's other mappings (growth_room_hint); once growth needs more than is left
// of it, growth maps more right after its end, what the request needs or its fair share, whichever
// is more, up to the size asked for (extend_reservation): end then moves up; such a reservation
// grows only for requests, with no free block kept ahead of them (kReserveOrder). An address-space
// limit set later (RLIMIT_AS by setrlimit, which the preload watches) makes start()'s reservation
// give back what lies beyond what it has grown into and its fair share (fit_to_address_limit): end
// then moves down. Chunks grown into stay, free or not: the page frame allocator keeps a range it
// was given.
// pages_unused gives freed pages back with madvise(MADV_DONTNEED). The host's page size (sysconf,
// read once: page_granularity) may be larger than Bedrock's kPageSize (16 KiB or 64 KiB on many
// AArch64 and POWER systems): madvise and mprotect are then given only ranges aligned to it,
// pages_unused drops only the whole host pages inside what it is told of, set_page_access changes
// one whole host page, and a reservation spans whole host pages. "Physical" addresses are the
// virtual addresses of the reservations, so phys_to_virt is the identity and needs no table: any
// number of reservations, for any number of allocators, coexist. Invariants: every reservation is
// aligned to kReservationAlignment (a maximum buddy block; a smaller reservation to its size
// rounded up to a power of two), so its largest buddy blocks are whole, unless mmap refused that
// slack (then to kFallbackAlignment or a host page: only its largest blocks are fewer); its first
// page holds its Reservation (the growth state), and base + kPageSize <= grown_end <= end, where
// [base + kPageSize, grown_end) is what its allocator has been given; [base, grown_end) rounded up
// to a host page is readable and writable, the rest PROT_NONE; end - base + unreserved == the
// size asked for. Lock: a Reservation's lock serialises its growth (the grow hook may run on
// several threads at once) and guards end, grown_end, next_chunk and unreserved. The page frame
// allocator calls the hook with none of its own locks held, but its caller may hold a heap's (the
// arenas'); add_range() takes the allocator's lock inside it. Lock order: heap locks -> reservation
// lock -> page frame allocator lock; lock_memory_for_fork() takes the last two in that order, after
// the fork handler has taken the heap's, so no growth is half done at a fork. State: start()'s page
// frame allocator, constant-initialised (no static constructor), a flag that lets start() run once,
// and the heap and reservation it made (whose CPU cache an exiting thread drains; whose growth a
// fork waits for).
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>

#include "bedrock/hosted.h"
#include "bedrock/platform.h"
#include "bedrock/spinlock.h"

namespace bedrock {
namespace {

constexpr uint64_t kReservationAlignment = kPageSize << kMaxOrder; // 1 GiB
// The alignment a reservation falls back to when mmap refuses the slack for its own: 2 MiB, a
// transparent huge page.
constexpr uint64_t kFallbackAlignment = uint64_t{2} << 20;
// The first chunk an allocator gets, and the largest one growth adds unless one request needs
// more. From 4 MiB doubling to 4 GiB: 11 chunks cover 8 GiB, and kSpareRegions cover 200 GiB.
constexpr uint64_t kFirstChunkBytes = uint64_t{4} << 20;
constexpr uint64_t kLargestChunkBytes = uint64_t{4} << 30;
// The free block growth keeps ahead of need (PageFrameAllocator::set_grow_hook): 32 MiB, the
// largest arena the heap takes, since the heap looks at largest_free_order() before it asks
// for one (address space only: no page of it is touched until it is allocated). A reservation that
// an address-space limit cut at start keeps none ahead: that growth takes a chunk of 64 MiB or
// more of the limit before any request needs it (under `ulimit -v 200000`, a program that had
// allocated 1,000 bytes held 76 MiB of the 195 MiB, and started 15 threads of 8 MiB, not 20).
constexpr unsigned kReserveOrder = 13;
// Descriptors init() keeps for the chunks added later (each ~600 bytes, zeroed at start).
constexpr size_t kSpareRegions = 64;
// The least reservation start() halves its request down to when mmap refuses it: a quarter of
// a first chunk, which a small program lives in. Where less than 16 MiB of address space is
// left (ulimit -v 12000), such a reservation serves what glibc serves, where none failed every
// allocation.
constexpr uint64_t kLeastStartBytes = kFirstChunkBytes / 4;

struct Reservation {
    uint64_t base;       // the reservation's first byte (this struct's page)
    uint64_t end;        // one past its last byte
    uint64_t grown_end;  // one past the last byte given to the allocator
    uint64_t next_chunk; // the size of the next chunk growth adds
    // Bytes asked for and not reserved (an address-space limit granted less, or a lowered one
    // took part back), which growth may map on their own once the reservation is grown into.
    uint64_t unreserved;
    SpinLock lock; // serialises growth
};

PageFrameAllocator g_frames;
std::atomic<bool> g_started{false};
std::atomic<Heap*> g_started_heap{nullptr};   // what start() made, for drain_exiting_thread()
Reservation* g_started_reservation = nullptr; // start()'s, for lock_memory_for_fork()

// The slot release hook start() sets: a finished thread's cached blocks go back to their slabs,
// and the heap's free pages beyond those in use leave the resident set (a thread's end is often
// where a program's use drops).
void drain_exiting_thread(unsigned slot) {
    if (Heap* heap = g_started_heap.load(std::memory_order_acquire)) {
        heap_drain_cpu(*heap, slot);
        static_cast<void>(heap_tell_unused(*heap));
    }
}

uint64_t round_up(uint64_t value, uint64_t alignment) {
    return (value + alignment - 1) & ~(alignment - 1);
}

uint64_t round_down(uint64_t value, uint64_t alignment) {
    return value & ~(alignment - 1);
}

// The host's page size, read on the first call (a race only reads it twice). Bedrock's
// kPageSize where sysconf says something no Linux kernel has (not a power of two, or smaller).
std::atomic<size_t> g_host_page_size{0};

size_t read_host_page_size() {
    const long reported = sysconf(_SC_PAGESIZE);
    const auto bytes = static_cast<size_t>(reported);
    const bool usable = reported > 0 && bytes >= kPageSize && (bytes & (bytes - 1)) == 0;
    return usable ? bytes : size_t{kPageSize};
}

// Makes [start, end) readable and writable, widened to whole host pages (mprotect refuses a
// start inside one). Whether it could (strict overcommit or RLIMIT_DATA may refuse).
bool make_accessible(uint64_t start, uint64_t end) {
    const uint64_t host_page = platform::page_granularity();
    const uint64_t first = round_down(start, host_page);
    return mprotect(reinterpret_cast<void*>(static_cast<uintptr_t>(first)),
                    static_cast<size_t>(round_up(end, host_page) - first),
                    PROT_READ | PROT_WRITE) == 0;
}

// Makes the chunk of `bytes` at `start` readable and writable, or, where the system refuses
// that much (RLIMIT_DATA and strict overcommit count a writable private mapping whole, touched or
// not), the largest half, quarter, ... of it down to `needed` (what the request needs), so that a
// limit's last chunks still serve what fits in them: `bytes` becomes what was made accessible.
// errno is left as it was when any size succeeds.
bool make_accessible_shrinking(uint64_t start, uint64_t& bytes, uint64_t needed) {
    const int saved_errno = errno;
    const uint64_t least = needed < bytes ? needed : bytes;
    for (;;) {
        if (make_accessible(start, start + bytes)) {
            errno = saved_errno;
            return true;
        }
        if (bytes <= least) {
            return false;
        }
        const uint64_t half = round_up(bytes / 2, kPageSize);
        bytes = half > least ? half : least;
    }
}

// The process's address space (/proc/self/statm's first field, in host pages), or 0 when it
// cannot be read. Raw system calls: no allocation.
uint64_t address_space_bytes() {
    const int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    char text[64];
    const ssize_t got = read(fd, text, sizeof(text));
    close(fd);
    uint64_t pages = 0;
    for (ssize_t i = 0; i < got && text[i] >= '0' && text[i] <= '9'; ++i) {
        pages = pages * 10 + static_cast<uint64_t>(text[i] - '0');
    }
    return pages * platform::page_granularity();
}

// The soft address-space limit (RLIMIT_AS: the one mmap, thread stacks and stack growth meet), or 0
// where there is none.
uint64_t address_space_limit() {
    struct rlimit limit {};
    if (getrlimit(RLIMIT_AS, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) {
        return 0;
    }
    return limit.rlim_cur;
}

// The fair share: how much address space a reservation may hold beyond what its allocator has
// been given (or, for an extension, beyond what a request needs) under an address-space limit of
// `limit` bytes, when `in_use` bytes of the process count against it besides: `ahead` (the chunk
// growth adds next), and no more than half of what the limit leaves free (whole host pages). The
// program's own mappings then always have at least as much room as the heap keeps in reserve,
// and more ahead would buy the heap nothing: growth extends the reservation right after its end.
uint64_t fair_share(uint64_t limit, uint64_t in_use, uint64_t ahead) {
    const uint64_t free_room = limit > in_use ? limit - in_use : 0;
    const uint64_t half = round_down(free_room / 2, platform::page_granularity());
    return ahead < half ? ahead : half;
}

// Extends the reservation, grown into whole, while `reservation.unreserved` is left: `bytes`, or
// the largest half, quarter, ... of it down to `needed`, mapped PROT_NONE right after its end
// where nothing is mapped yet (MAP_FIXED_NOREPLACE: never over another mapping), so that growth
// goes on there (the allocator takes a range only above the memory it manages). Under an
// address-space limit it maps no more than `needed` or its fair_share() of what the limit leaves,
// whichever is more (the program's other mappings have taken what they took meanwhile): a request
// is served wherever the limit leaves room for it, as glibc's would be.
bool extend_reservation(Reservation& reservation, uint64_t bytes, uint64_t needed) {
    const int saved_errno = errno; // a malloc that then succeeds leaves errno as it was
    if (const uint64_t limit = address_space_limit()) {
        const uint64_t ahead = fair_share(limit, address_space_bytes(), bytes);
        bytes = ahead > needed ? ahead : needed;
    }
    bytes = bytes < reservation.unreserved ? bytes : reservation.unreserved;
    bytes = round_up(bytes, platform::page_granularity());
    for (; bytes >= needed; bytes = round_up(bytes / 2, platform::page_granularity())) {
        void* wanted = reinterpret_cast<void*>(static_cast<uintptr_t>(reservation.end));
        void* mapping =
            mmap(wanted, static_cast<size_t>(bytes), PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
        if (mapping == wanted) {
            reservation.end += bytes;
            reservation.unreserved -= bytes;
            errno = saved_errno;
            return true;
        }
        if (mapping != MAP_FAILED) { // a kernel before 4.17 took the address as a hint
            munmap(mapping, static_cast<size_t>(bytes));
            return false;
        }
        // ENOMEM (the limit) or EEXIST (a mapping within reach): a smaller size may still fit.
    }
    return false;
}

// PageFrameAllocator's grow hook: adds the next chunk of the reservation, large enough that
// the request fits (`pages` pages and the chunk's metadata: the hook's contract), unless
// another thread grew the allocator while this one waited for the lock. Where too little of the
// reservation is left, it is extended first (extend_reservation()).
bool grow_into_reservation(PageFrameAllocator& frames, uint64_t pages, void* context) {
    auto& reservation = *static_cast<Reservation*>(context);
    const uint64_t managed = frames.managed_pages();
    LockGuard guard(reservation.lock);
    if (frames.managed_pages() != managed) {
        return true; // another thread grew it meanwhile: try again
    }
    uint64_t bytes = reservation.next_chunk;
    // The pages asked for, and room for the chunk's metadata (under 0.1 % + 2 pages: 0.2 % here).
    const uint64_t wanted = pages * kPageSize;
    const uint64_t needed = round_up(wanted + wanted / 512 + 2 * kPageSize, kPageSize);
    bytes = needed > bytes ? needed : bytes;
    uint64_t left = reservation.end - reservation.grown_end;
    if (left < needed && extend_reservation(reservation, bytes - left, needed - left)) {
        left = reservation.end - reservation.grown_end;
    }
    bytes = bytes < left ? bytes : left;
    constexpr uint64_t kLeastAddedBytes = PageFrameAllocator::kMinAddedPages * kPageSize;
    if (bytes < kLeastAddedBytes ||
        !make_accessible_shrinking(reservation.grown_end, bytes,
                                   needed > kLeastAddedBytes ? needed : kLeastAddedBytes) ||
        !frames.add_range(PhysRange{reservation.grown_end, bytes})) {
        return false;
    }
    reservation.grown_end += bytes;
    if (reservation.next_chunk < kLargestChunkBytes) {
        reservation.next_chunk *= 2;
    }
    return true;
}

// The alignment a reservation of `bytes` asks for first: a maximum buddy block, or for a smaller
// one its size rounded up to a power of two (no buddy block of it is larger), so that the slack
// mapped to align it is never more than its own size.
uint64_t alignment_of(uint64_t bytes) {
    return bytes >= kReservationAlignment ? kReservationAlignment
                                          : uint64_t{1} << (64 - __builtin_clzll(bytes - 1));
}

// `bytes` of address space (PROT_NONE) aligned to `alignment` (a power of two, a multiple of the
// host page): an alignment's worth more is mapped and what lies outside the aligned part given
// back (none for a host page). `hint`: where mmap is asked to place it (0: anywhere; an
// address taken by something else is no more than a hint). Returns the first byte, or 0 if
// mmap refuses.
uintptr_t map_aligned(uint64_t bytes, uint64_t alignment, uint64_t host_page, uintptr_t hint) {
    const uint64_t slack = alignment > host_page ? alignment : 0;
    void* mapping = mmap(reinterpret_cast<void*>(hint), static_cast<size_t>(bytes + slack),
                         PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mapping == MAP_FAILED) {
        return 0;
    }
    const auto start = reinterpret_cast<uintptr_t>(mapping);
    const uintptr_t base = (start + alignment - 1) & ~(alignment - 1);
    const uintptr_t end = start + bytes + slack;
    if (base > start) {
        munmap(mapping, base - start);
    }
    if (end > base + bytes) {
        munmap(reinterpret_cast<void*>(base + bytes), end - (base + bytes));
    }
    return base;
}

// `bytes` (whole host pages) of address space, PROT_NONE, or, when mmap refuses that much, the
// largest half, quarter, ... of it down to `least` bytes that it grants; `bytes` becomes the size
// mapped. Each size is tried at alignment_of() its size, then (the slack refused: an
// address-space limit) aligned to kFallbackAlignment, then to a host page, before the next half:
// a smaller alignment only makes the largest buddy blocks of a chunk smaller (a block is aligned
// to its size), where a halving gives up half the memory. The mapping and its alignment are whole
// host pages, so the slack around it is unmapped exactly. `hint` as map_aligned(). Returns its
// first byte, or 0.
uintptr_t map_largest(uint64_t& bytes, uint64_t least, uintptr_t hint) {
    const uint64_t host_page = platform::page_granularity();
    for (;;) {
        const uint64_t alignments[] = {alignment_of(bytes), kFallbackAlignment, host_page};
        for (uint64_t alignment : alignments) {
            if (alignment >= host_page) {
                if (const uintptr_t base = map_aligned(bytes, alignment, host_page, hint)) {
                    return base;
                }
            }
        }
        if (bytes / 2 < least) {
            return 0;
        }
        bytes = round_up(bytes / 2, host_page);
    }
}

// Where a reservation that an address-space limit cut goes, so that growth can extend it
// (extend_reservation()): half the address of this code, which lies among the shared libraries
// at the top of the mmap area on Linux, aligned down to a maximum buddy block. That is far below
// them, where the program's later mappings (placed top-down) do not reach, and, for a PIE
// program, below its executable and the heap of brk() after it, so the room above the
// reservation stays free for it. Only a hint: mmap places it elsewhere where that is taken.
uintptr_t growth_room_hint() {
    const auto here = reinterpret_cast<uintptr_t>(&growth_room_hint);
    return round_down(here / 2, kReservationAlignment);
}

// reserve_memory() of `bytes` (rounded up to whole host pages), or of `wanted` of them where that
// is less (an address-space limit's fair share), or, when mmap refuses that much, of the largest
// half, quarter, ... of it down to `least` bytes that it grants (map_largest()); placed where
// growth can extend it towards `bytes` (growth_room_hint()) unless it is whole. Returns the
// reservation's growth state, or null.
Reservation* reserve(PageFrameAllocator& frames, uint64_t bytes, uint64_t wanted, uint64_t least) {
    const uint64_t host_page = platform::page_granularity();
    bytes = round_up(bytes, host_page);
    if (bytes < 2 * kPageSize || bytes > (uint64_t{1} << 46)) {
        hosted::write_to_stderr("bedrock: hosted: reservation size out of range\n");
        return nullptr;
    }
    const uint64_t asked = bytes;
    uintptr_t base = 0;
    if (wanted >= bytes) {
        base = map_largest(bytes, bytes, 0);
    } else {
        bytes = round_up(wanted, host_page);
    }
    if (base == 0) {
        base = map_largest(bytes, least, growth_room_hint());
    }
    if (base == 0) {
        hosted::write_to_stderr("bedrock: hosted: mmap of the memory reservation failed\n");
        return nullptr;
    }
    const uint64_t first_bytes =
        bytes - kPageSize < kFirstChunkBytes ? bytes - kPageSize : kFirstChunkBytes;
    if (!make_accessible(base, base + kPageSize + first_bytes)) {
        munmap(reinterpret_cast<void*>(base), static_cast<size_t>(bytes));
        hosted::write_to_stderr("bedrock: hosted: mprotect of the first chunk failed\n");
        return nullptr;
    }
    // The first page is fresh, zeroed memory: its lock is an unlocked SpinLock.
    auto* reservation = reinterpret_cast<Reservation*>(base);
    reservation->base = base;
    reservation->end = base + bytes;
    reservation->grown_end = base + kPageSize + first_bytes;
    reservation->next_chunk = kFirstChunkBytes;
    reservation->unreserved = asked - bytes;
    const PhysRange range{base + kPageSize, first_bytes};
    // Fresh anonymous memory reads as zeroes: the metadata is touched only where it is used.
    if (!frames.init(&range, 1, CpuPageLists::On, kSpareRegions, RangeContents::Zeroed)) {
        munmap(reinterpret_cast<void*>(base), static_cast<size_t>(bytes));
        hosted::write_to_stderr(
            "bedrock: hosted: the page frame allocator refused the reservation\n");
        return nullptr;
    }
    const unsigned reserve_order = bytes < asked ? kOrderCount : kReserveOrder; // none: cut
    frames.set_grow_hook(grow_into_reservation, reservation, reserve_order);
    return reservation;
}

} // namespace

namespace hosted {

bool reserve_memory(PageFrameAllocator& frames, uint64_t bytes) {
    const uint64_t whole = round_up(bytes, platform::page_granularity());
    return reserve(frames, bytes, whole, whole) != nullptr;
}

Heap* start(uint64_t bytes) {
    if (g_started.exchange(true)) {
        write_to_stderr("bedrock: hosted: start() called twice\n");
        return nullptr;
    }
    // Under an address-space limit: the first chunk and the fair share of what the limit leaves
    // beside it and the process's mappings.
    uint64_t wanted = bytes;
    if (const uint64_t limit = address_space_limit()) {
        wanted = kPageSize + kFirstChunkBytes +
                 fair_share(limit, address_space_bytes() + kPageSize + kFirstChunkBytes,
                            kFirstChunkBytes);
    }
    g_started_reservation =
        reserve(g_frames, bytes, wanted, bytes < kLeastStartBytes ? bytes : kLeastStartBytes);
    if (g_started_reservation == nullptr) {
        return nullptr;
    }
    Heap* heap = heap_create(g_frames);
    if (heap == nullptr) {
        write_to_stderr("bedrock: hosted: no memory for the heap's state\n");
        return nullptr;
    }
    set_default_heap(heap);
    g_started_heap.store(heap, std::memory_order_release);
    set_slot_release_hook(drain_exiting_thread);
    return heap;
}

void fit_to_address_limit(uint64_t limit_bytes) {
    Reservation* reservation = g_started_reservation;
    if (reservation == nullptr) {
        return;
    }
    LockGuard guard(reservation->lock);
    const uint64_t size = reservation->end - reservation->base;
    const uint64_t grown = reservation->grown_end - reservation->base;
    const uint64_t in_use = address_space_bytes();
    // The next chunk is wanted ahead only as far as the allocator's free pages fall short of it
    // (after a peak, it may hold many). Lock order: the reservation's, then the allocator's.
    const uint64_t free_bytes = g_frames.free_pages() * kPageSize;
    const uint64_t wanted = reservation->next_chunk > free_bytes
                                ? round_up(reservation->next_chunk - free_bytes, kPageSize)
                                : 0;
    // Unreadable (the reservation is part of it): nothing is known to fit, so nothing ahead is
    // kept.
    const uint64_t ahead =
        in_use >= size ? fair_share(limit_bytes, in_use - (size - grown), wanted) : 0;
    const uint64_t kept = round_up(grown, platform::page_granularity()) + ahead;
    if (kept < size) {
        munmap(reinterpret_cast<void*>(reservation->base + kept), size - kept);
        reservation->end = reservation->base + kept;
        reservation->unreserved += size - kept;
    }
}

PageFrameAllocator& page_frames() {
    return g_frames;
}

ForkLocks lock_memory_for_fork() {
    ForkLocks held{};
    if (g_started_reservation != nullptr) {
        held.reservation = g_started_reservation->lock.lock();
    }
    held.frames = g_frames.lock_all();
    return held;
}

void unlock_memory_after_fork(ForkLocks held) {
    g_frames.unlock_all(held.frames);
    if (g_started_reservation != nullptr) {
        g_started_reservation->lock.unlock(held.reservation);
    }
}

} // namespace hosted

namespace platform {

void* phys_to_virt(PhysAddr phys) {
    return reinterpret_cast<void*>(static_cast<uintptr_t>(phys));
}

size_t page_granularity() {
    size_t bytes = g_host_page_size.load(std::memory_order_relaxed);
    if (bytes == 0) {
        bytes = read_host_page_size();
        g_host_page_size.store(bytes, std::memory_order_relaxed);
    }
    return bytes;
}

bool set_page_access(void* page, bool accessible) {
    const size_t host_page = page_granularity();
    if (reinterpret_cast<uintptr_t>(page) % host_page != 0) {
        return false; // mprotect would refuse it (EINVAL)
    }
    const int saved_errno = errno; // free() may come here (a guarded block), and keeps errno
    const bool changed =
        mprotect(page, host_page, accessible ? PROT_READ | PROT_WRITE : PROT_NONE) == 0;
    errno = saved_errno;
    return changed;
}

void pages_unused(void* start, size_t bytes) {
    // Only the whole host pages inside the range: madvise refuses a start that is not aligned
    // to one, and rounds the length up, which would drop the rest of the last host page, memory
    // the caller did not give up. Anonymous private memory reads as zeroes afterwards and is
    // committed again when touched. free() comes here and keeps errno (glibc 2.33, POSIX.1-2024),
    // which madvise sets where it fails (EINVAL on memory locked by mlock or mlockall).
    const int saved_errno = errno;
    const uint64_t host_page = page_granularity();
    const uint64_t first = round_up(reinterpret_cast<uintptr_t>(start), host_page);
    const uint64_t end = round_down(reinterpret_cast<uintptr_t>(start) + bytes, host_page);
    if (first < end) {
        static_cast<void>(madvise(reinterpret_cast<void*>(static_cast<uintptr_t>(first)),
                                  static_cast<size_t>(end - first), MADV_DONTNEED));
    }
    errno = saved_errno;
}

} // namespace platform
} // namespace bedrock
