// SPDX-License-Identifier: MIT
// PSCI calls (Arm DEN 0022, SMC Calling Convention): the function id in x0, arguments in x1-x3,
// the result in x0, through `hvc #0` or `smc #0` as the device tree's /psci says. Only CPU_ON is
// used. Invariant: g_conduit and g_cpu_on are set once, by the boot CPU before any CPU starts.
#include "arch/aarch64/aarch64.h"

namespace bedrock::arch::aarch64 {
namespace {

constinit kernel::PsciConduit g_conduit = kernel::PsciConduit::None;
constinit uint32_t g_cpu_on = 0;

// SMCCC 1.0 lets the callee change x0-x17; the call is ordered with the memory accesses around
// it (the CPU it starts reads memory written before).
template <kernel::PsciConduit Conduit>
int64_t call(uint64_t function, uint64_t a1, uint64_t a2, uint64_t a3) {
    register uint64_t x0 asm("x0") = function;
    register uint64_t x1 asm("x1") = a1;
    register uint64_t x2 asm("x2") = a2;
    register uint64_t x3 asm("x3") = a3;
    if constexpr (Conduit == kernel::PsciConduit::Hvc) {
        asm volatile("hvc #0"
                     : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3)
                     :
                     : "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14", "x15",
                       "x16", "x17", "memory");
    } else {
        asm volatile("smc #0"
                     : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3)
                     :
                     : "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14", "x15",
                       "x16", "x17", "memory");
    }
    return static_cast<int64_t>(x0);
}

} // namespace

void init_psci(const kernel::BootInfo& boot) {
    g_conduit = boot.psci_conduit;
    g_cpu_on = boot.psci_cpu_on;
}

bool psci_available() {
    return g_conduit != kernel::PsciConduit::None;
}

PsciStatus psci_cpu_on(uint64_t target, uint64_t entry, uint64_t context) {
    switch (g_conduit) {
    case kernel::PsciConduit::Hvc:
        return PsciStatus{call<kernel::PsciConduit::Hvc>(g_cpu_on, target, entry, context)};
    case kernel::PsciConduit::Smc:
        return PsciStatus{call<kernel::PsciConduit::Smc>(g_cpu_on, target, entry, context)};
    case kernel::PsciConduit::None:
        break;
    }
    return PsciStatus::NotSupported;
}

const char* psci_status_name(PsciStatus status) {
    switch (status) {
    case PsciStatus::Success:
        return "SUCCESS";
    case PsciStatus::NotSupported:
        return g_conduit == kernel::PsciConduit::None
                   ? "NOT_SUPPORTED (the device tree has no usable /psci)"
                   : "NOT_SUPPORTED";
    case PsciStatus::InvalidParameters:
        return "INVALID_PARAMETERS";
    case PsciStatus::Denied:
        return "DENIED";
    case PsciStatus::AlreadyOn:
        return "ALREADY_ON";
    case PsciStatus::OnPending:
        return "ON_PENDING";
    case PsciStatus::InternalFailure:
        return "INTERNAL_FAILURE";
    case PsciStatus::NotPresent:
        return "NOT_PRESENT";
    case PsciStatus::Disabled:
        return "DISABLED";
    case PsciStatus::InvalidAddress:
        return "INVALID_ADDRESS";
    }
    return "an unknown PSCI error";
}

} // namespace bedrock::arch::aarch64
