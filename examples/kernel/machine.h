/* SPDX-License-Identifier: MIT */
/* What each architecture's machine.c gives the example kernel's portable part (kernel.c), and
 * what it calls there once it has found the RAM. */
#ifndef EXAMPLE_MACHINE_H
#define EXAMPLE_MACHINE_H

#include <stdbool.h>
#include <stddef.h>

#include <bedrock/bedrock.h>

/* The serial console: one character. */
void machine_putc(char c);
/* Ends the run: QEMU exits with the machine's success or failure status. */
_Noreturn void machine_exit(bool success);

/* kernel.c: runs the kernel over the RAM ranges the firmware reported (in any order and
 * alignment, within what the machine can address). */
_Noreturn void kernel_run(const bedrock_phys_range* ram, size_t count);

/* The most RAM ranges the kernel takes from the firmware. */
enum { kMaxRamRanges = 16 };

#endif /* EXAMPLE_MACHINE_H */
