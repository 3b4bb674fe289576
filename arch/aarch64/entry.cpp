// SPDX-License-Identifier: MIT
// aarch64_entry: the first C++ on AArch64, called by boot.S at EL1 with the MMU on (early map)
// and the exception vectors installed. Finds the device tree, turns it into BootInfo, sets up
// what the arch layer takes from it (PSCI for starting CPUs, the GIC's distributor and this
// CPU's interface, the timer's interrupt) and enters the kernel.
#include <stdint.h>

#include "arch/aarch64/aarch64.h"
#include "kernel/arch.h"
#include "kernel/console.h"
#include "kernel/device_tree.h"

namespace {

// Where QEMU virt places the device tree for an ELF image that does not get it in x0: the start
// of RAM (the image is linked far enough above it, see linker/aarch64.ld).
constexpr uint64_t kVirtDeviceTree = 0x40000000;
// The largest blob accepted; QEMU's are about 1 MiB at most.
constexpr uint64_t kMaxDeviceTreeSize = uint64_t{2} << 20;

} // namespace

extern "C" constinit uint32_t aarch64_secure_el1 = 0;

extern "C" [[noreturn]] void aarch64_entry(uint64_t device_tree);

extern "C" void aarch64_entry(uint64_t device_tree) {
    using namespace bedrock;
    const uint64_t blob = device_tree != 0 ? device_tree : kVirtDeviceTree;
    static kernel::BootInfo boot;
    const kernel::BootParseResult result =
        kernel::parse_device_tree(blob, kMaxDeviceTreeSize, boot);
    if (!result.ok()) {
        kernel::panic("%s%s%s (blob at 0x%lx)", result.error,
                      result.node != nullptr ? "; node " : "",
                      result.node != nullptr ? result.node : "", blob);
    }
    if (aarch64_secure_el1 != 0) {
        kernel::print("aarch64: entered at EL3: running in Secure EL1; CPUs other than MPIDR 0 "
                      "stay parked at EL3\n");
    }
    arch::aarch64::init_psci(boot);
    arch::aarch64::init_gic(boot.interrupt_controller);
    arch::aarch64::init_timer(boot);
    kernel::kernel_main(boot);
}
