// The x86-64 bring-up steps that x86_64_entry (entry.cpp) runs in order, before kernel_main,
// and the boot.S data the C++ side of the arch layer shares.
#pragma once

#include <stdint.h>

extern "C" {
extern char x86_64_boot_stack_guard[];    // the kBootStackGuardSize bytes below the boot stack
extern uint64_t x86_64_tss_descriptor[2]; // the GDT's TSS slot (selector 0x18)
}

namespace bedrock::arch::x86_64 {

inline constexpr uint64_t kBootStackGuardSize = 4096; // one page, as boot.S reserves it

void init_console();    // COM1, 115200 8N1
void init_exceptions(); // TSS (double-fault stack), IDT for the 32 CPU exception vectors
void calibrate_clock(); // TSC frequency against the PIT

} // namespace bedrock::arch::x86_64
