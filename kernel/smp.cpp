// SPDX-License-Identifier: MIT
// SMP bring-up and cross-CPU work for the test kernel (see smp.h): the portable half; the arch
// starts and sets up each CPU.
//
// Invariants: g_online == the number of CpuLocal records in state Online (the boot CPU's
// included); g_cpus[0] is the boot CPU; each started CPU gets a record of its own
// (g_cpus[1 .. g_records)), never reused - an abandoned CPU that comes up late still uses its
// record's stack and arch data, so nobody else may. Work dispatch: g_work_generation counts
// run_on_every_cpu() calls; a secondary runs the work of generation g once, then adds one to
// g_work_done; the boot CPU waits until g_work_done == (online - 1) * g.
#include "kernel/smp.h"

#include "bedrock/page_frame_allocator.h"
#include "bedrock/spinlock.h"
#include "kernel/allocators.h"
#include "kernel/arch.h"
#include "kernel/console.h"

namespace bedrock::kernel {
namespace {

constexpr uint64_t kStackPages = 4; // 16 KiB per secondary CPU
// How long a started CPU may take to check in. QEMU TCG starts one in well under 10 ms, but on a
// host running more vCPU threads than it has cores (tests booting -smp 8 and -smp 62 side by
// side on two) a secondary's thread may wait that long to run: 500 ms left one out now and then.
constexpr uint64_t kCheckInNanoseconds = uint64_t{2000} * 1000 * 1000;

constinit CpuLocal g_cpus[kMaxBootCpus];
constinit uint32_t g_online = 1;
constinit unsigned g_records = 1;

using Work = void (*)(void*, unsigned);
constinit Work g_work = nullptr;
constinit void* g_work_context = nullptr;
constinit uint64_t g_work_generation = 0;
constinit uint64_t g_work_done = 0;

CpuLocal& boot_cpu() {
    CpuLocal& cpu = g_cpus[0];
    if (cpu.self == nullptr) {
        cpu.self = &cpu;
        cpu.index = 0;
        cpu.hardware_id = arch::cpu_hardware_id();
        cpu.stack_top = reinterpret_cast<uintptr_t>(arch_boot_stack_top);
        cpu.state = static_cast<uint32_t>(CpuState::Online);
        arch::set_cpu_local(&cpu);
    }
    return cpu;
}

bool change_state(CpuLocal& cpu, CpuState from, CpuState to) {
    auto expected = static_cast<uint32_t>(from);
    return __atomic_compare_exchange_n(&cpu.state, &expected, static_cast<uint32_t>(to), false,
                                       __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

// Starts the CPU `hardware_id` as index `index`; true once it has checked in.
bool start_one(unsigned index, uint64_t hardware_id) {
    if (g_records == kMaxBootCpus) {
        return false; // every record is taken (by CPUs abandoned before)
    }
    const PhysAddr stack = page_frame_allocator().allocate_pages(kStackPages);
    if (stack == kNoPage) {
        print("smp: no memory for the stack of CPU 0x%lx\n", hardware_id);
        return false;
    }
    // Mapped with pages before the CPU runs: a block split nearby must never unmap the stack
    // its exceptions push onto (kernel/arch.h).
    const auto stack_bottom = reinterpret_cast<uintptr_t>(platform::phys_to_virt(stack));
    if (!arch::map_with_pages(stack_bottom, kStackPages * kPageSize)) {
        print("smp: no table page left to map the stack of CPU 0x%lx with pages\n", hardware_id);
        page_frame_allocator().free_pages(stack, kStackPages);
        return false;
    }
    CpuLocal& cpu = g_cpus[g_records];
    cpu.self = &cpu;
    cpu.index = index;
    cpu.hardware_id = hardware_id;
    cpu.stack_top = stack_bottom + kStackPages * kPageSize;
    cpu.state = static_cast<uint32_t>(CpuState::Starting);
    if (!arch::start_cpu(cpu)) {
        print("smp: CPU 0x%lx could not be started\n", hardware_id);
        page_frame_allocator().free_pages(stack, kStackPages);
        return false;
    }
    __atomic_store_n(&g_records, g_records + 1, __ATOMIC_RELEASE); // the record is written
    const uint64_t deadline = arch::nanoseconds() + kCheckInNanoseconds;
    while (__atomic_load_n(&cpu.state, __ATOMIC_ACQUIRE) ==
           static_cast<uint32_t>(CpuState::Starting)) {
        if (arch::nanoseconds() > deadline &&
            change_state(cpu, CpuState::Starting, CpuState::Abandoned)) {
            // Its record and stack stay taken: the CPU may still come up late and use them.
            print("smp: CPU 0x%lx did not come up within %lu ms; left out\n", hardware_id,
                  kCheckInNanoseconds / 1000000);
            return false;
        }
        SpinLock::relax();
    }
    return true;
}

} // namespace

void start_secondary_cpus(const BootInfo& boot) {
    const CpuLocal& first = boot_cpu();
    for (size_t i = 0; i < boot.cpu_count; ++i) {
        if (boot.cpu_ids[i] == first.hardware_id) {
            continue;
        }
        if (start_one(g_online, boot.cpu_ids[i])) {
            ++g_online;
        }
    }
    if (boot.cpus_left_off != 0) {
        print("smp: %zu more CPUs described than the kernel supports (%zu); left off\n",
              boot.cpus_left_off, kMaxBootCpus);
    }
    print("smp: %u CPUs online\n", g_online);
}

unsigned online_cpu_count() {
    return g_online;
}

CpuLocal& this_cpu() {
    CpuLocal* cpu = arch::cpu_local();
    return cpu != nullptr ? *cpu : boot_cpu();
}

void for_each_other_online_cpu(void (*visit)(const CpuLocal& cpu, void* context), void* context) {
    const CpuLocal* self = &this_cpu();
    const unsigned records = __atomic_load_n(&g_records, __ATOMIC_ACQUIRE);
    for (unsigned i = 0; i < records; ++i) {
        if (&g_cpus[i] != self && __atomic_load_n(&g_cpus[i].state, __ATOMIC_ACQUIRE) ==
                                      static_cast<uint32_t>(CpuState::Online)) {
            visit(g_cpus[i], context);
        }
    }
}

void run_on_every_cpu(Work work, void* context) {
    g_work = work;
    g_work_context = context;
    const uint64_t generation = __atomic_add_fetch(&g_work_generation, 1, __ATOMIC_RELEASE);
    arch::send_event();
    work(context, this_cpu().index);
    const uint64_t expected = uint64_t{g_online - 1} * generation;
    while (__atomic_load_n(&g_work_done, __ATOMIC_ACQUIRE) != expected) {
        SpinLock::relax();
    }
}

void secondary_cpu_main(CpuLocal& cpu) {
    static_cast<void>(arch::disable_interrupts()); // wait_for_event() needs them masked
    uint64_t done = __atomic_load_n(&g_work_generation, __ATOMIC_ACQUIRE);
    if (!change_state(cpu, CpuState::Starting, CpuState::Online)) {
        for (;;) { // abandoned: the boot CPU gave up on this CPU and counts it nowhere
            arch::wait_for_event();
        }
    }
    for (;;) {
        const uint64_t generation = __atomic_load_n(&g_work_generation, __ATOMIC_ACQUIRE);
        if (generation == done) {
            arch::wait_for_event();
            continue;
        }
        g_work(g_work_context, cpu.index);
        done = generation;
        __atomic_add_fetch(&g_work_done, 1, __ATOMIC_RELEASE);
    }
}

} // namespace bedrock::kernel
