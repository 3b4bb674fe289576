// SPDX-License-Identifier: MIT
// x86_64_entry: the first C++ on x86-64, called by boot.S in long mode with the early 0-4 GiB
// identity map. Brings up the per-CPU register, the console and exception handling first (so
// every later failure is reported), turns the boot protocol's memory description into BootInfo,
// reads the CPUs from ACPI (or, without an ACPI MADT, from the MP table), and enters the kernel.
#include <stdint.h>

#include "arch/x86_64/entry.h"
#include "arch/x86_64/local_apic.h"
#include "kernel/acpi.h"
#include "kernel/arch.h"
#include "kernel/boot_protocol_support.h"
#include "kernel/console.h"
#include "kernel/mp_table.h"
#include "kernel/multiboot2.h"
#include "kernel/pvh.h"

namespace {

// Values boot.S passes in EDI.
enum class BootProtocol : uint32_t { Unknown = 0, Pvh = 1, Multiboot2 = 2 };

// Where the ACPI specification says to search for the RSDP without a boot protocol's help: the
// first KiB of the EBDA (its segment is the BIOS data area's word at 0x40E), then the BIOS ROM.
// The BIOS data area's word at 0x413 is the base memory size in KiB (the MP table's search).
constexpr uint64_t kEbdaSegmentPointer = 0x40E;
constexpr uint64_t kBaseMemoryKib = 0x413;
constexpr uint64_t kEbdaSearchSize = 1024;
constexpr uint64_t kBiosAreaStart = 0xE0000;
constexpr uint64_t kBiosAreaSize = 0x20000;
constexpr uint64_t kLowMemoryEnd = 0xA0000;

uint16_t bios_data_area_word(uint64_t address) {
    return *reinterpret_cast<const volatile uint16_t*>(address);
}

uint64_t find_rsdp(uint64_t from_boot_protocol) {
    using namespace bedrock::kernel;
    if (acpi_rsdp_valid(from_boot_protocol)) {
        return from_boot_protocol;
    }
    const uint64_t ebda = uint64_t{bios_data_area_word(kEbdaSegmentPointer)} << 4;
    if (ebda != 0 && ebda < kLowMemoryEnd) {
        if (const uint64_t rsdp = acpi_find_rsdp(ebda, kEbdaSearchSize); rsdp != 0) {
            return rsdp;
        }
    }
    return acpi_find_rsdp(kBiosAreaStart, kBiosAreaSize);
}

bool is_ram(const bedrock::kernel::BootInfo& boot, uint64_t page) {
    for (const bedrock::PhysRange& range : boot.ram) {
        if (range.contains(page) && range.contains(page + bedrock::kPageSize - 1)) {
            return true;
        }
    }
    return false;
}

} // namespace

namespace bedrock::arch::x86_64 {
namespace {

enum class CpuList { Read, Missing };

// The boot line's note when the firmware's table names a local APIC base other than the one the
// kernel uses on every CPU (IA32_APIC_BASE's, local_apic_base()); empty otherwise.
const char* apic_base_note(uint64_t from_table) {
    return from_table == local_apic_base() ? "" : " (other local APIC base)";
}

// Without an ACPI MADT (`acpi_error` says why): the CPUs from the MP table, which the first KiB of
// the EBDA, the last KiB of base memory or the BIOS ROM holds. Prints where the CPUs came from,
// or why there are none.
CpuList read_mp_table_cpus(const char* acpi_error, kernel::BootInfo& boot) {
    const uint64_t floating_pointer = kernel::mp_find_floating_pointer(kernel::mp_search_areas(
        bios_data_area_word(kEbdaSegmentPointer), bios_data_area_word(kBaseMemoryKib)));
    const kernel::MpCpus cpus = kernel::mp_read_cpus(floating_pointer, boot);
    if (!cpus.ok() || boot.cpu_count == 0) {
        kernel::print("acpi: %s; %s; starting the boot CPU only\n", acpi_error,
                      cpus.ok() ? "the MP table lists no enabled CPU" : cpus.error);
        return CpuList::Missing;
    }
    if (cpus.default_configuration != 0) {
        kernel::print("acpi: %s; MP default configuration %u: %zu CPUs%s\n", acpi_error,
                      unsigned{cpus.default_configuration}, kernel::described_cpu_count(boot),
                      apic_base_note(cpus.local_apic_address));
    } else {
        kernel::print("acpi: %s; MP table at 0x%lx: %zu CPUs%s\n", acpi_error, cpus.table,
                      kernel::described_cpu_count(boot), apic_base_note(cpus.local_apic_address));
    }
    if (cpus.disabled != 0) {
        kernel::print("mp table: %zu more CPUs disabled: not started\n", cpus.disabled);
    }
    return CpuList::Read;
}

// The CPUs from the ACPI MADT, else (no RSDP, root table or MADT) from the MP table. Prints where
// the CPUs came from, or why there are none.
CpuList read_firmware_cpus(kernel::BootInfo& boot) {
    const kernel::AcpiCpus cpus = kernel::acpi_read_cpus(boot.acpi_rsdp, boot);
    if (!cpus.ok()) {
        return read_mp_table_cpus(cpus.error, boot);
    }
    if (boot.cpu_count == 0) {
        kernel::print("acpi: the MADT lists no usable CPU; starting the boot CPU only\n");
        return CpuList::Missing;
    }
    kernel::print("acpi: RSDP at 0x%lx, MADT: %zu CPUs%s\n", boot.acpi_rsdp,
                  kernel::described_cpu_count(boot), apic_base_note(cpus.local_apic_address));
    if (cpus.online_capable != 0) {
        kernel::print("acpi: %zu more CPUs online-capable (may be added later): not started\n",
                      cpus.online_capable);
    }
    if (cpus.disabled != 0) {
        kernel::print("acpi: %zu more CPUs disabled (neither enabled nor online-capable): not "
                      "started\n",
                      cpus.disabled);
    }
    return CpuList::Read;
}

} // namespace

void find_cpus(kernel::BootInfo& boot) {
    boot.acpi_rsdp = find_rsdp(boot.acpi_rsdp);
    if (!has_local_apic()) {
        kernel::print("smp: no local APIC (CPUID); starting the boot CPU only\n");
        boot.cpu_ids[0] = 0;
        boot.cpu_count = 1;
        return;
    }
    if (read_firmware_cpus(boot) == CpuList::Missing) {
        boot.cpu_ids[0] = local_apic_id();
        boot.cpu_count = 1;
        return;
    }
    if (boot.cpu_count > 1 && !is_ram(boot, kTrampolinePage)) {
        kernel::print("smp: the trampoline page 0x%lx is not RAM; starting the boot CPU only\n",
                      kTrampolinePage);
        boot.cpu_ids[0] = local_apic_id();
        boot.cpu_count = 1;
        return;
    }
    if (!add_reserved(boot, kTrampolinePage, kPageSize).ok()) {
        kernel::panic("memory map: too many reserved ranges adding the SMP trampoline page");
    }
}

} // namespace bedrock::arch::x86_64

extern "C" [[noreturn]] void x86_64_entry(uint32_t protocol, uint32_t boot_information);

extern "C" void x86_64_entry(uint32_t protocol, uint32_t boot_information) {
    using namespace bedrock;
    arch::x86_64::init_boot_cpu();
    arch::x86_64::init_console();
    arch::x86_64::init_exceptions();

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
    arch::x86_64::find_cpus(boot);
    arch::x86_64::calibrate_clock(boot.acpi_rsdp);
    kernel::kernel_main(boot);
}
