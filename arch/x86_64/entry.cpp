// x86_64_entry: the first C++ on x86-64, called by boot.S in long mode with the early 0-4 GiB
// identity map. Brings up the console and exception handling first (so every later failure is
// reported), turns the boot protocol's memory description into BootInfo, and enters the kernel.
#include <stdint.h>

#include "arch/x86_64/entry.h"
#include "kernel/arch.h"
#include "kernel/console.h"
#include "kernel/multiboot2.h"
#include "kernel/pvh.h"

namespace {

// Values boot.S passes in EDI.
enum class BootProtocol : uint32_t { Unknown = 0, Pvh = 1, Multiboot2 = 2 };

} // namespace

extern "C" [[noreturn]] void x86_64_entry(uint32_t protocol, uint32_t boot_information);

extern "C" void x86_64_entry(uint32_t protocol, uint32_t boot_information) {
    using namespace bedrock;
    arch::x86_64::init_console();
    arch::x86_64::init_exceptions();
    arch::x86_64::calibrate_clock();

    static kernel::BootInfo boot;
    kernel::BootParseResult result;
    switch (static_cast<BootProtocol>(protocol)) {
    case BootProtocol::Pvh:
        result = kernel::parse_pvh(boot_information, boot);
        break;
    case BootProtocol::Multiboot2:
        result = kernel::parse_multiboot2(boot_information, boot);
        break;
    default:
        kernel::panic("entered at the ELF entry point without the multiboot2 magic in EAX: boot "
                      "with PVH (QEMU -kernel) or a multiboot2 loader");
    }
    if (!result.ok()) {
        kernel::panic("boot information at 0x%x: %s", boot_information, result.error);
    }
    kernel::kernel_main(boot);
}
