// The x86-64 bring-up steps that x86_64_entry (entry.cpp) runs in order, before kernel_main.
#pragma once

namespace bedrock::arch::x86_64 {

void init_console();    // COM1, 115200 8N1
void init_exceptions(); // IDT for the 32 CPU exception vectors
void calibrate_clock(); // TSC frequency against the PIT

} // namespace bedrock::arch::x86_64
